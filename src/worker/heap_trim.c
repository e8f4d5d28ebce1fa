/* glibc's malloc keeps freed memory in its heap: after thousands of sessions close (their TLS
 * buffers, handshake state, evbuffers), the worker's RSS stays at its peak although nothing
 * uses it. malloc_trim(0) returns the free pages, also those between live chunks
 * (MADV_DONTNEED). It walks the heap, so it runs only when malloc holds clearly more free memory
 * than after the last trim: a burst ended. Free memory is what is measured, not a session
 * count sampled on a timer, which a burst shorter than the period would slip past. The trimmed
 * chunks stay on malloc's free lists (only their pages went back), hence the comparison with
 * the level right after the last trim. */
#include "heap_trim.h"

#include <malloc.h>
#include <stdlib.h>

#include <event2/event.h>

#include "util.h"

#define TRIM_EVERY_MS 5000
#define TRIM_MIN_FREE (4u << 20) /* bytes of newly free heap worth a walk */

struct heap_trim {
    struct event *timer;
    size_t free_after_trim;
};

int heap_trim_due(size_t free_now, size_t free_after_last_trim)
{
    return free_now >= free_after_last_trim + TRIM_MIN_FREE;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    MG_UNUSED(fd), MG_UNUSED(what);
    struct heap_trim *t = arg;
    size_t free_now = mallinfo2().fordblks;
    if (heap_trim_due(free_now, t->free_after_trim)) {
        malloc_trim(0);
        t->free_after_trim = mallinfo2().fordblks;
    } else if (free_now < t->free_after_trim) {
        t->free_after_trim = free_now; /* freed memory was taken up again */
    }
}

struct heap_trim *heap_trim_new(struct event_base *base)
{
    struct heap_trim *t = mg_calloc(1, sizeof *t);
    t->free_after_trim = mallinfo2().fordblks;
    t->timer = event_new(base, -1, EV_PERSIST, on_tick, t);
    struct timeval every = {TRIM_EVERY_MS / 1000, (TRIM_EVERY_MS % 1000) * 1000};
    if (!t->timer || event_add(t->timer, &every) != 0) {
        heap_trim_free(&t);
        return NULL;
    }
    return t;
}

void heap_trim_free(struct heap_trim **tp)
{
    struct heap_trim *t = *tp;
    if (!t)
        return;
    if (t->timer)
        event_free(t->timer);
    free(t);
    *tp = NULL;
}
