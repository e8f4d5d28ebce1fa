/* Argon2id verification threads (see verify_pool.h for what the pool promises).
 *
 * Structures, all under one mutex:
 *   - a job is one verification: its dedup key, user queue, hash, password, and the tickets
 *     (waiters) of every request answered by it. A job is in `live`, where equal requests find
 *     it, from its submission until the loop has answered its waiters: a finished job stays
 *     there while it waits in `done`, because an equal request that arrives then would
 *     otherwise find neither the job nor the auth cache (the loop fills it when it answers)
 *     and start a second Argon2 computation.
 *   - one user queue (FIFO of jobs) per user with queued work, in a ring served round-robin.
 * A thread takes the next queue's first job, runs the precheck then (when needed) Argon2, wipes
 * the password, moves the job to `done` and writes one byte to a pipe watched by the loop; the
 * loop runs the callbacks of every waiter. Waiters are only touched on the loop thread (a
 * done job gains or loses waiters there too, until the loop answers them); a job's state and
 * `live` change under the mutex. Lookups scan lists: both are bounded by VERIFY_QUEUE_MAX. */
#include "verify_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "log.h"
#include "password.h"
#include "util.h"

/* Queued work is bounded: a flood of logins gets "busy" instead of growing memory and latency
 * without limit (each verification costs ~0.1 s of CPU and 64 MiB). One user's queue is bounded
 * too, so that guesses for one user cannot take every slot. */
#define VERIFY_QUEUE_MAX 2048
#define VERIFY_USER_QUEUE_MAX 64
#define VERIFY_THREADS_MAX 64
#define KEY_LEN 32
#define USER_KEY_MAX 256

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct verify_ticket {
    struct verify_ticket *next;
    struct verify_job *job;
    verify_done_cb cb;
    void *arg;
};

struct user_queue {
    struct user_queue *prev, *next; /* the ring */
    struct verify_job *head, *tail;
    size_t count;
    char user[USER_KEY_MAX];
};

struct verify_job {
    struct verify_job *next;      /* in its user queue, or in `done` */
    struct verify_job *live_next; /* in `live` while queued or running */
    enum job_state state;
    unsigned char key[KEY_LEN];
    struct user_queue *queue; /* while queued */
    char *user, *hash, *pw;
    size_t len;
    int result, prechecked;
    struct verify_ticket *waiters;
};

struct verify_pool {
    struct event_base *base;
    pthread_mutex_t lock;
    pthread_cond_t work_ready;
    struct user_queue *cursor; /* the next queue to serve; NULL: nothing queued */
    size_t queued;
    struct verify_job *live;
    struct verify_job *done_head, *done_tail;
    int stopping;
    pthread_t *threads;
    int n_threads;
    int wake_pipe[2]; /* [0] read end watched by wake_event, [1] written by the threads */
    struct event *wake_event;
    verify_precheck_fn precheck;
    void *precheck_arg;
    unsigned char mac_key[KEY_LEN];
    struct verify_stats stats;
};

/* ---- jobs and queues (callers hold the lock) ---- */

static void append_job(struct verify_job **head, struct verify_job **tail, struct verify_job *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

static void job_free(struct verify_job *j)
{
    free(j->user);
    mg_free_secret(&j->hash);
    if (j->pw)
        mg_wipe(j->pw, j->len);
    free(j->pw);
    mg_wipe(j, sizeof *j);
    free(j);
}

static void lower_copy(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < size; i++)
        dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] + ('a' - 'A')) : src[i];
    dst[i] = '\0';
}

static struct user_queue *find_queue(struct verify_pool *vp, const char *user_key)
{
    struct user_queue *q = vp->cursor;
    if (!q)
        return NULL;
    do {
        if (strcmp(q->user, user_key) == 0)
            return q;
        q = q->next;
    } while (q != vp->cursor);
    return NULL;
}

/* A new queue joins the ring just before the cursor: served at the end of the current round. */
static struct user_queue *add_queue(struct verify_pool *vp, const char *user_key)
{
    struct user_queue *q = mg_calloc(1, sizeof *q);
    mg_strlcpy(q->user, user_key, sizeof q->user);
    if (!vp->cursor) {
        q->prev = q->next = q;
        vp->cursor = q;
    } else {
        q->next = vp->cursor;
        q->prev = vp->cursor->prev;
        q->prev->next = q;
        vp->cursor->prev = q;
    }
    return q;
}

static void remove_queue(struct verify_pool *vp, struct user_queue *q)
{
    if (q->next == q) {
        vp->cursor = NULL;
    } else {
        q->prev->next = q->next;
        q->next->prev = q->prev;
        if (vp->cursor == q)
            vp->cursor = q->next;
    }
    free(q);
}

static void unlink_live(struct verify_pool *vp, struct verify_job *j)
{
    for (struct verify_job **p = &vp->live; *p; p = &(*p)->live_next) {
        if (*p == j) {
            *p = j->live_next;
            break;
        }
    }
    j->live_next = NULL;
}

/* Takes the first job of the cursor's queue and moves the cursor on (round-robin). */
static struct verify_job *take_next(struct verify_pool *vp)
{
    struct user_queue *q = vp->cursor;
    struct verify_job *j = q->head;
    q->head = j->next;
    if (!q->head)
        q->tail = NULL;
    q->count--;
    vp->queued--;
    j->next = NULL;
    j->queue = NULL;
    j->state = JOB_RUNNING;
    vp->cursor = q->next;
    if (q->count == 0)
        remove_queue(vp, q);
    return j;
}

/* Drops a queued job nobody waits for any more. */
static void drop_queued(struct verify_pool *vp, struct verify_job *j)
{
    struct user_queue *q = j->queue;
    for (struct verify_job **p = &q->head; *p; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            if (q->tail == j) {
                q->tail = NULL;
                for (struct verify_job *t = q->head; t; t = t->next)
                    q->tail = t;
            }
            break;
        }
    }
    q->count--;
    vp->queued--;
    if (q->count == 0)
        remove_queue(vp, q);
    unlink_live(vp, j);
    vp->stats.dropped++;
    job_free(j);
}

/* ---- threads ---- */

static void wake_loop(struct verify_pool *vp)
{
    static const char byte = 1;
    ssize_t n;
    do {
        n = write(vp->wake_pipe[1], &byte, 1);
    } while (n < 0 && errno == EINTR);
    /* EAGAIN: the pipe is full, so the loop will wake up anyway. */
}

static void run_job(struct verify_pool *vp, struct verify_job *j)
{
    if (vp->precheck && vp->precheck(j->user, j->hash, j->pw, j->len, vp->precheck_arg)) {
        j->result = 1;
        j->prechecked = 1;
    } else {
        j->result = password_verify(j->hash, j->pw, j->len);
    }
    /* The password is not needed any more: wipe it now rather than when the loop runs. */
    mg_wipe(j->pw, j->len);
}

static void *verify_thread(void *arg)
{
    struct verify_pool *vp = arg;
    pthread_mutex_lock(&vp->lock);
    for (;;) {
        while (!vp->stopping && !vp->cursor)
            pthread_cond_wait(&vp->work_ready, &vp->lock);
        if (vp->stopping)
            break;
        struct verify_job *j = take_next(vp);
        pthread_mutex_unlock(&vp->lock);

        run_job(vp, j);

        pthread_mutex_lock(&vp->lock);
        if (j->prechecked)
            vp->stats.prechecked++;
        else
            vp->stats.computations++;
        j->state = JOB_DONE; /* still live: see the top of the file */
        append_job(&vp->done_head, &vp->done_tail, j);
        pthread_mutex_unlock(&vp->lock);
        wake_loop(vp);
        pthread_mutex_lock(&vp->lock);
    }
    pthread_mutex_unlock(&vp->lock);
    return NULL;
}

/* ---- the loop side ---- */

static void drain_pipe(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

static struct verify_job *pop_done(struct verify_pool *vp)
{
    pthread_mutex_lock(&vp->lock);
    struct verify_job *j = vp->done_head;
    if (j) {
        vp->done_head = j->next;
        if (!vp->done_head)
            vp->done_tail = NULL;
        j->next = NULL;
    }
    pthread_mutex_unlock(&vp->lock);
    return j;
}

/* Answers every waiter of a finished job, one at a time: a callback may cancel another waiter
 * of the same job, which then simply leaves the list. */
static void answer_waiters(struct verify_job *j)
{
    size_t n = 0;
    while (j->waiters) {
        struct verify_ticket *t = j->waiters;
        j->waiters = t->next;
        verify_done_cb cb = t->cb;
        void *arg = t->arg;
        free(t);
        n++;
        cb(j->result, arg);
    }
    log_debug("verify pool: %s answered %zu login(s)",
              j->prechecked ? "an auth cache hit" : "one Argon2id verification", n);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct verify_pool *vp = arg;
    drain_pipe(fd);
    struct verify_job *j;
    while ((j = pop_done(vp))) {
        answer_waiters(j);
        pthread_mutex_lock(&vp->lock);
        unlink_live(vp, j);
        pthread_mutex_unlock(&vp->lock);
        job_free(j);
    }
}

static int open_wake_pipe(struct verify_pool *vp)
{
    if (pipe2(vp->wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        log_error("verify pool: pipe: %s", strerror(errno));
        vp->wake_pipe[0] = vp->wake_pipe[1] = -1;
        return -1;
    }
    vp->wake_event = event_new(vp->base, vp->wake_pipe[0], EV_READ | EV_PERSIST, on_wake, vp);
    if (!vp->wake_event || event_add(vp->wake_event, NULL) != 0) {
        log_error("verify pool: cannot watch the wake-up pipe");
        return -1;
    }
    return 0;
}

/* Threads start with every signal blocked so that signals are handled by the loop thread. */
static int start_threads(struct verify_pool *vp, int threads)
{
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    vp->threads = mg_calloc((size_t)threads, sizeof *vp->threads);
    int err = 0;
    for (int i = 0; i < threads && !err; i++) {
        err = pthread_create(&vp->threads[i], NULL, verify_thread, vp);
        if (!err)
            vp->n_threads++;
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (err)
        log_error("verify pool: pthread_create: %s", strerror(err));
    return err ? -1 : 0;
}

struct verify_pool *verify_pool_new(struct event_base *base, int threads)
{
    if (threads < 1)
        threads = 1;
    if (threads > VERIFY_THREADS_MAX)
        threads = VERIFY_THREADS_MAX;
    struct verify_pool *vp = mg_calloc(1, sizeof *vp);
    vp->base = base;
    mg_random_bytes(vp->mac_key, sizeof vp->mac_key);
    pthread_mutex_init(&vp->lock, NULL);
    pthread_cond_init(&vp->work_ready, NULL);
    if (open_wake_pipe(vp) != 0 || start_threads(vp, threads) != 0) {
        verify_pool_free(&vp);
        return NULL;
    }
    return vp;
}

void verify_pool_set_precheck(struct verify_pool *vp, verify_precheck_fn fn, void *arg)
{
    pthread_mutex_lock(&vp->lock);
    vp->precheck = fn;
    vp->precheck_arg = arg;
    pthread_mutex_unlock(&vp->lock);
}

/* HMAC-SHA256(pool key, user NUL hash NUL password): equal requests, equal keys. */
static int request_key(const struct verify_pool *vp, const struct verify_request *req,
                       const char *user_key, unsigned char out[KEY_LEN])
{
    size_t ulen = strlen(user_key), hlen = strlen(req->hash), n = ulen + 1 + hlen + 1 + req->len;
    unsigned char *buf = mg_malloc(n);
    memcpy(buf, user_key, ulen + 1);
    memcpy(buf + ulen + 1, req->hash, hlen + 1);
    if (req->len)
        memcpy(buf + ulen + 1 + hlen + 1, req->pw, req->len);
    unsigned int out_len = 0;
    int ok = HMAC(EVP_sha256(), vp->mac_key, KEY_LEN, buf, n, out, &out_len) && out_len == KEY_LEN;
    mg_wipe(buf, n);
    free(buf);
    return ok ? 0 : -1;
}

static struct verify_job *find_live(struct verify_pool *vp, const unsigned char key[KEY_LEN])
{
    for (struct verify_job *j = vp->live; j; j = j->live_next)
        if (CRYPTO_memcmp(j->key, key, KEY_LEN) == 0)
            return j;
    return NULL;
}

static struct verify_job *new_job(const struct verify_request *req, const unsigned char *key)
{
    struct verify_job *j = mg_calloc(1, sizeof *j);
    memcpy(j->key, key, KEY_LEN);
    j->user = mg_strdup(req->user);
    j->hash = mg_strdup(req->hash);
    j->pw = mg_malloc(req->len + 1);
    if (req->len)
        memcpy(j->pw, req->pw, req->len);
    j->pw[req->len] = '\0';
    j->len = req->len;
    return j;
}

/* Queues a new job for the request; NULL when the queues are full. Lock held. */
static struct verify_job *enqueue(struct verify_pool *vp, const struct verify_request *req,
                                  const char *user_key, const unsigned char *key)
{
    struct user_queue *q = find_queue(vp, user_key);
    if (vp->queued >= VERIFY_QUEUE_MAX || (q && q->count >= VERIFY_USER_QUEUE_MAX))
        return NULL;
    if (!q)
        q = add_queue(vp, user_key);
    struct verify_job *j = new_job(req, key);
    j->queue = q;
    append_job(&q->head, &q->tail, j);
    q->count++;
    vp->queued++;
    j->live_next = vp->live;
    vp->live = j;
    pthread_cond_signal(&vp->work_ready);
    return j;
}

struct verify_ticket *verify_pool_submit(struct verify_pool *vp, const struct verify_request *req,
                                         verify_done_cb cb, void *arg)
{
    if (!vp || !req || !req->user || !req->hash || (!req->pw && req->len) || !cb)
        return NULL;
    char user_key[USER_KEY_MAX];
    unsigned char key[KEY_LEN];
    lower_copy(user_key, sizeof user_key, req->user);
    if (request_key(vp, req, user_key, key) != 0)
        return NULL;
    pthread_mutex_lock(&vp->lock);
    struct verify_job *j = find_live(vp, key);
    if (j)
        vp->stats.shared++;
    else
        j = enqueue(vp, req, user_key, key);
    struct verify_ticket *t = NULL;
    if (j) {
        t = mg_calloc(1, sizeof *t);
        t->job = j;
        t->cb = cb;
        t->arg = arg;
        t->next = j->waiters;
        j->waiters = t;
    }
    pthread_mutex_unlock(&vp->lock);
    mg_wipe(key, sizeof key);
    return t;
}

void verify_pool_cancel(struct verify_pool *vp, struct verify_ticket *t)
{
    if (!vp || !t)
        return;
    pthread_mutex_lock(&vp->lock);
    struct verify_job *j = t->job;
    for (struct verify_ticket **p = &j->waiters; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    free(t);
    if (!j->waiters && j->state == JOB_QUEUED)
        drop_queued(vp, j);
    pthread_mutex_unlock(&vp->lock);
}

void verify_pool_stats(struct verify_pool *vp, struct verify_stats *out)
{
    pthread_mutex_lock(&vp->lock);
    *out = vp->stats;
    out->queued = vp->queued;
    pthread_mutex_unlock(&vp->lock);
}

static void free_job_with_waiters(struct verify_job *j)
{
    while (j->waiters) {
        struct verify_ticket *t = j->waiters;
        j->waiters = t->next;
        free(t);
    }
    job_free(j);
}

void verify_pool_free(struct verify_pool **vpp)
{
    if (!vpp || !*vpp)
        return;
    struct verify_pool *vp = *vpp;
    pthread_mutex_lock(&vp->lock);
    vp->stopping = 1;
    pthread_cond_broadcast(&vp->work_ready);
    pthread_mutex_unlock(&vp->lock);
    /* A thread in the middle of a verification finishes it (Argon2 cannot be interrupted);
     * its job lands in "done" and is dropped below without a callback. */
    for (int i = 0; i < vp->n_threads; i++)
        pthread_join(vp->threads[i], NULL);
    free(vp->threads);
    while (vp->cursor)
        free_job_with_waiters(take_next(vp));
    struct verify_job *j;
    while ((j = pop_done(vp)))
        free_job_with_waiters(j);
    if (vp->wake_event)
        event_free(vp->wake_event);
    for (int i = 0; i < 2; i++)
        if (vp->wake_pipe[i] >= 0)
            close(vp->wake_pipe[i]);
    pthread_cond_destroy(&vp->work_ready);
    pthread_mutex_destroy(&vp->lock);
    mg_wipe(vp->mac_key, sizeof vp->mac_key);
    free(vp);
    *vpp = NULL;
}
