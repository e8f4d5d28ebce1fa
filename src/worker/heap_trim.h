/* Gives memory back to the system after a burst of sessions ends: see heap_trim.c. */
#ifndef MG_HEAP_TRIM_H
#define MG_HEAP_TRIM_H

#include <stddef.h>

struct event_base;
struct heap_trim;

/* Checks malloc's free memory on a timer for the life of the loop. */
struct heap_trim *heap_trim_new(struct event_base *base);
void heap_trim_free(struct heap_trim **t);

/* The decision, apart from the timer: trim when malloc holds this much more free memory than
 * right after the last trim. */
int heap_trim_due(size_t free_now, size_t free_after_last_trim);

#endif
