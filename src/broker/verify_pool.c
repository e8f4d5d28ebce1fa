/* Argon2id verification threads.
 *
 * Jobs go into a FIFO protected by a mutex + condition variable; N threads take them, run
 * password_verify and move them to a "done" list. A thread that finishes a job writes one byte
 * to a pipe whose read end is watched by an event on the loop; the loop drains the pipe and runs
 * the callbacks of every finished job. The pipe works whether or not libevent's thread support
 * is enabled, and a full pipe is harmless (it is already readable). */
#include "verify_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "password.h"
#include "util.h"

/* Queued work is bounded: a flood of logins gets "busy" instead of growing memory and latency
 * without limit (each verification costs ~0.1 s of CPU and 64 MiB). */
#define VERIFY_QUEUE_MAX 2048
#define VERIFY_THREADS_MAX 64

struct verify_job {
    struct verify_job *next;
    char *hash;
    char *pw;
    size_t len;
    int result;
    verify_done_cb cb;
    void *arg;
};

struct job_fifo {
    struct verify_job *head, *tail;
    size_t count;
};

struct verify_pool {
    struct event_base *base;
    pthread_mutex_t lock;
    pthread_cond_t work_ready;
    struct job_fifo queued; /* waiting for a thread */
    struct job_fifo done;   /* verified, callback not yet run */
    size_t running;
    int stopping;
    pthread_t *threads;
    int n_threads;
    int wake_pipe[2]; /* [0] read end watched by wake_event, [1] written by the threads */
    struct event *wake_event;
};

static void fifo_push(struct job_fifo *f, struct verify_job *j)
{
    j->next = NULL;
    if (f->tail)
        f->tail->next = j;
    else
        f->head = j;
    f->tail = j;
    f->count++;
}

static struct verify_job *fifo_pop(struct job_fifo *f)
{
    struct verify_job *j = f->head;
    if (!j)
        return NULL;
    f->head = j->next;
    if (!f->head)
        f->tail = NULL;
    f->count--;
    j->next = NULL;
    return j;
}

static void job_free(struct verify_job *j)
{
    mg_free_secret(&j->hash);
    mg_wipe(j->pw, j->len);
    free(j->pw);
    mg_wipe(j, sizeof *j);
    free(j);
}

static void fifo_free_all(struct job_fifo *f)
{
    struct verify_job *j;
    while ((j = fifo_pop(f)))
        job_free(j);
}

static void wake_loop(struct verify_pool *vp)
{
    static const char byte = 1;
    ssize_t n;
    do {
        n = write(vp->wake_pipe[1], &byte, 1);
    } while (n < 0 && errno == EINTR);
    /* EAGAIN: the pipe is full, so the loop will wake up anyway. */
}

static void *verify_thread(void *arg)
{
    struct verify_pool *vp = arg;
    pthread_mutex_lock(&vp->lock);
    for (;;) {
        while (!vp->stopping && !vp->queued.head)
            pthread_cond_wait(&vp->work_ready, &vp->lock);
        if (vp->stopping)
            break;
        struct verify_job *j = fifo_pop(&vp->queued);
        vp->running++;
        pthread_mutex_unlock(&vp->lock);

        j->result = password_verify(j->hash, j->pw, j->len);
        /* The password is not needed any more: wipe it now rather than when the loop runs. */
        mg_wipe(j->pw, j->len);

        pthread_mutex_lock(&vp->lock);
        vp->running--;
        fifo_push(&vp->done, j);
        pthread_mutex_unlock(&vp->lock);
        wake_loop(vp);
        pthread_mutex_lock(&vp->lock);
    }
    pthread_mutex_unlock(&vp->lock);
    return NULL;
}

static void drain_pipe(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

/* On the loop thread: run the callbacks of finished jobs, one at a time, taking each under the
 * lock so that the threads can keep adding to the list meanwhile. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct verify_pool *vp = arg;
    drain_pipe(fd);
    for (;;) {
        pthread_mutex_lock(&vp->lock);
        struct verify_job *j = fifo_pop(&vp->done);
        pthread_mutex_unlock(&vp->lock);
        if (!j)
            break;
        verify_done_cb cb = j->cb;
        void *cb_arg = j->arg;
        int result = j->result;
        job_free(j);
        cb(result, cb_arg);
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
    pthread_mutex_init(&vp->lock, NULL);
    pthread_cond_init(&vp->work_ready, NULL);
    if (open_wake_pipe(vp) != 0 || start_threads(vp, threads) != 0) {
        verify_pool_free(&vp);
        return NULL;
    }
    return vp;
}

int verify_pool_submit(struct verify_pool *vp, const char *encoded_hash, const char *pw, size_t len,
                       verify_done_cb cb, void *arg)
{
    if (!vp || !encoded_hash || (!pw && len) || !cb)
        return -1;
    struct verify_job *j = mg_calloc(1, sizeof *j);
    j->hash = mg_strdup(encoded_hash);
    j->pw = mg_malloc(len + 1);
    if (len)
        memcpy(j->pw, pw, len);
    j->pw[len] = '\0';
    j->len = len;
    j->cb = cb;
    j->arg = arg;

    pthread_mutex_lock(&vp->lock);
    int accepted = vp->queued.count < VERIFY_QUEUE_MAX;
    if (accepted) {
        fifo_push(&vp->queued, j);
        pthread_cond_signal(&vp->work_ready);
    }
    pthread_mutex_unlock(&vp->lock);
    if (!accepted) {
        job_free(j);
        return -1;
    }
    return 0;
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
    fifo_free_all(&vp->queued);
    fifo_free_all(&vp->done);
    if (vp->wake_event)
        event_free(vp->wake_event);
    for (int i = 0; i < 2; i++)
        if (vp->wake_pipe[i] >= 0)
            close(vp->wake_pipe[i]);
    pthread_cond_destroy(&vp->work_ready);
    pthread_mutex_destroy(&vp->lock);
    free(vp);
    *vpp = NULL;
}
