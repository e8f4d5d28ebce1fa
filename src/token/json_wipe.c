/* jansson allocators that wipe what they free (see json_wipe.h). */
#include "json_wipe.h"

#include <stddef.h>
#include <stdlib.h>

#include <jansson.h>

#include "util.h"

union alloc_header {
    size_t size;
    max_align_t align;
};

static void *wiping_malloc(size_t size)
{
    union alloc_header *h = malloc(sizeof *h + size);
    if (!h)
        return NULL;
    h->size = size;
    return h + 1;
}

static void wiping_free(void *p)
{
    if (!p)
        return;
    union alloc_header *h = (union alloc_header *)p - 1;
    mg_wipe(p, h->size);
    free(h);
}

void json_wipe_install(void)
{
    static int installed;
    if (!installed) {
        json_set_alloc_funcs(wiping_malloc, wiping_free);
        installed = 1;
    }
}
