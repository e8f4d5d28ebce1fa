/* The login audit record (struct ipc_audit) as both sides see it: the worker cleans the texts it
 * got from a client before sending (audit_text_clean), and the broker judges every record it
 * receives as untrusted input (audit_rec_valid) before it reaches the store or the SIEM file. */
#ifndef MG_AUDIT_REC_H
#define MG_AUDIT_REC_H

#include <stddef.h>

#include "ipc.h"

/* The parts of a valid record the store and the JSON line want as words. */
struct audit_fields {
    const char *event;    /* "login", "end" */
    const char *protocol; /* "imap", "pop3", "smtp" */
    const char *result;   /* "ok", "fail" */
    char host[IPC_ADDR_MAX];
    unsigned port;
};

/* 1 when word is one of the fixed outcome words (README, "Login outcomes"). */
int audit_cause_known(const char *word);
/* 0 when the record may be stored: known cause that agrees with ok, texts without control
 * bytes and in UTF-8, a session id of hex digits, a client address "host:port" or
 * "[v6]:port". -1 otherwise. */
int audit_rec_valid(const struct ipc_audit *a);
/* Splits a valid record's address and names its words. 0, or -1 for an invalid address. */
int audit_rec_fields(const struct ipc_audit *a, struct audit_fields *f);
/* The audit's detail of a login outcome: for "idp error", the first AADSTS code in reason
 * ("AADSTS7000215"); "" otherwise. Only a code, never the IdP's free text. */
void audit_detail_of(const char *cause, const char *reason, char *out, size_t size);
/* Replaces every control byte and every byte that is not part of valid UTF-8 with '?', so that
 * whatever a client typed can be audited (the broker refuses such bytes). */
void audit_text_clean(char *s);

#endif
