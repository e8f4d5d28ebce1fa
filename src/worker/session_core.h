/* What the two halves of the session core share: session.c (the connection's lifecycle:
 * client I/O events, TLS, closing, the relay, creation) and session_login.c (a login attempt:
 * the broker request, the upstream login, refused tokens, the failure delay, the login line).
 * Protocols use session.h only. */
#ifndef MG_SESSION_CORE_H
#define MG_SESSION_CORE_H

#include <event2/util.h>

#include "session.h"

struct event;

/* session.c */
void session_arm_timer(struct event *ev, uint64_t ms);
/* Gives the protocol the commands waiting in the client's input (after a login attempt, or
 * once the client read our replies). */
void session_resume_commands(struct session *s);

/* session_login.c */
/* Logs the current login attempt's line and sends its audit record (once per attempt).
 * reason: the details; cause: the outcome as one fixed word of the login audit (ipc.h). */
void session_log_login(struct session *s, const char *result, const char *reason,
                       const char *cause);
void session_wipe_token(struct session *s);
/* The failure delay's timer (s->delay_timer): the held failure is answered. */
void session_delay_cb(evutil_socket_t fd, short what, void *arg);

#endif
