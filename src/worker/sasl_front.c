/* The client's side of SASL before login (see sasl_front.h). Everything that held a password is
 * wiped before returning. */
#include "sasl_front.h"

#include <stdlib.h>
#include <string.h>

#include "sasl.h"
#include "util.h"

#define ANSWER_MAX 8192 /* longest answer line sasl_front_read() takes */

static int is_mech(const char *mech, size_t len, const char *name)
{
    return len == strlen(name) && mg_ascii_ncasecmp(mech, name, len) == 0;
}

static enum sasl_front_result login(struct session *s, const char *user, const char *password,
                                    size_t password_len)
{
    return session_login(s, user, password, password_len) == 0 ? SASL_FRONT_LOGIN
                                                               : SASL_FRONT_REFUSED;
}

/* Decoding in two steps tells bad base64 from a bad message (SMTP answers them differently). */
static enum sasl_front_result plain(struct session *s, const char *b64, size_t len)
{
    size_t cap = len / 4 * 3 + 3;
    unsigned char *msg = mg_malloc(cap);
    long n = b64_decode(b64, len, msg, cap);
    enum sasl_front_result r = SASL_FRONT_UNDECODABLE;
    if (n >= 0) {
        struct sasl_plain p;
        if (sasl_plain_decode(msg, (size_t)n, &p) != 0) {
            session_login_refused(s, NULL, "fail", "malformed or too long PLAIN message");
            r = SASL_FRONT_MALFORMED;
        } else if (p.authzid[0] && strcmp(p.authzid, p.authcid) != 0) {
            session_login_refused(s, p.authcid, "refused", "authorization identity differs");
            r = SASL_FRONT_OTHER_USER;
        } else
            r = login(s, p.authcid, p.passwd, p.passwd_len);
        sasl_plain_wipe(&p);
    }
    mg_wipe(msg, cap);
    free(msg);
    return r;
}

static enum sasl_front_result login_user(struct sasl_front *f, const char *b64, size_t len)
{
    if (sasl_login_decode_b64(b64, len, f->user, sizeof f->user) < 0)
        return SASL_FRONT_UNDECODABLE;
    f->step = SASL_STEP_LOGIN_PASS;
    return SASL_FRONT_CONTINUE;
}

static enum sasl_front_result login_pass(struct session *s, struct sasl_front *f, const char *b64,
                                         size_t len)
{
    char password[IPC_PASSWORD_MAX];
    long n = sasl_login_decode_b64(b64, len, password, sizeof password);
    enum sasl_front_result r =
        n < 0 ? SASL_FRONT_UNDECODABLE : login(s, f->user, password, (size_t)n);
    mg_wipe(password, sizeof password);
    return r;
}

enum sasl_front_result sasl_front_start(struct session *s, struct sasl_front *f, unsigned mechs,
                                        const char *mech, size_t mech_len, const char *ir,
                                        size_t ir_len)
{
    sasl_front_reset(f);
    if ((mechs & SASL_MECH_PLAIN) && is_mech(mech, mech_len, "PLAIN"))
        f->step = SASL_STEP_PLAIN;
    else if ((mechs & SASL_MECH_LOGIN) && is_mech(mech, mech_len, "LOGIN"))
        f->step = SASL_STEP_LOGIN_USER;
    else
        return SASL_FRONT_UNSUPPORTED;
    return ir ? sasl_front_answer(s, f, ir, ir_len) : SASL_FRONT_CONTINUE;
}

enum sasl_front_result sasl_front_answer(struct session *s, struct sasl_front *f, const char *line,
                                         size_t len)
{
    enum sasl_front_step step = f->step;
    enum sasl_front_result r = SASL_FRONT_UNDECODABLE;
    f->step = SASL_STEP_NONE;
    if (len == 1 && line[0] == '*')
        r = SASL_FRONT_CANCELED;
    else if (step == SASL_STEP_PLAIN)
        r = plain(s, line, len);
    else if (step == SASL_STEP_LOGIN_USER)
        r = login_user(f, line, len);
    else if (step == SASL_STEP_LOGIN_PASS)
        r = login_pass(s, f, line, len);
    if (r != SASL_FRONT_CONTINUE)
        sasl_front_reset(f);
    return r;
}

enum sasl_front_result sasl_front_read(struct session *s, struct sasl_front *f, size_t size)
{
    char line[ANSWER_MAX + 1];
    size_t len = 0;
    int r = session_read_line(s, line, size < sizeof line ? size : sizeof line, &len);
    if (r == 0)
        return SASL_FRONT_WAIT;
    if (r < 0) {
        sasl_front_reset(f);
        return SASL_FRONT_TOO_LONG;
    }
    enum sasl_front_result res = sasl_front_answer(s, f, line, len);
    mg_wipe(line, len);
    return res;
}

const char *sasl_front_prompt(const struct sasl_front *f)
{
    switch (f->step) {
    case SASL_STEP_LOGIN_USER:
        return "VXNlcm5hbWU6"; /* "Username:" */
    case SASL_STEP_LOGIN_PASS:
        return "UGFzc3dvcmQ6"; /* "Password:" */
    case SASL_STEP_NONE:
    case SASL_STEP_PLAIN:
        break;
    }
    return "";
}

void sasl_front_reset(struct sasl_front *f)
{
    f->step = SASL_STEP_NONE;
    mg_wipe(f->user, sizeof f->user);
}
