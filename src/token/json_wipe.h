/* jansson keeps copies of parsed strings (access tokens among them) in memory it frees itself;
 * route it through allocators that wipe before freeing. Installed by token_client_new, i.e.
 * before the broker uses jansson for anything else (memory allocated by one allocator must not
 * be freed by the other). Idempotent. */
#ifndef MG_JSON_WIPE_H
#define MG_JSON_WIPE_H

void json_wipe_install(void);

#endif
