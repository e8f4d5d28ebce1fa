/* Microsoft Entra ID error codes ("AADSTS7000215: Invalid client secret provided ...") and what
 * an administrator does about each, in one sentence. Pure: no I/O, no allocation. */
#ifndef MG_AADSTS_H
#define MG_AADSTS_H

#include <stddef.h>

/* The number of the first "AADSTS<digits>" in text (at most len bytes, stops at a NUL), or 0
 * when there is none. Digits beyond 9 make it not a code (0). */
long aadsts_find(const char *text, size_t len);

/* The fix for a code, one sentence ending in '.', or NULL for codes not in the table. */
const char *aadsts_hint(long code);

/* Convenience: the hint for the first code in a NUL-terminated text, or NULL. */
const char *aadsts_hint_for_text(const char *text);

#endif
