/* `mailgate serve`: process supervision around the broker.
 *
 * Start: load the config with secrets, open the store, start the broker, fork+exec one worker
 * per [gateway] workers, and wait on the loop until each reported it accepts. The listening
 * sockets and the config bytes are the generation's (generation.h): bound and read here once. A
 * worker that dies (or 15 s without all of them ready) means the gateway cannot serve as
 * configured: stop everything and exit 1. Running: a worker that dies is restarted after 1 s,
 * doubling up to 30 s while it keeps dying within 10 s of its start. SIGTERM/SIGINT: SIGTERM to
 * every worker, SIGKILL to those still there 10 s later, free everything, exit 0. SIGHUP: reload
 * (new generation, new workers; the old ones drain: docs/design.md "reload"). Only one gateway
 * per state_dir (pidfile.h): a second one exits 1 before it opens the store or binds. */
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "broker.h"
#include "config.h"
#include "generation.h"
#include "harden.h"
#include "log.h"
#include "pidfile.h"
#include "privdrop.h"
#include "secretbox.h"
#include "store.h"
#include "token_store.h"
#include "util.h"

#define STARTUP_TIMEOUT_MS 15000
#define STOP_TIMEOUT_MS 10000
#define RESTART_DELAY_MIN_MS 1000
#define RESTART_DELAY_MAX_MS 30000
#define QUICK_DEATH_MS 10000 /* dying sooner than this after start doubles the restart delay */
#define FD_SWEEP_MAX 65536   /* fallback close-on-exec sweep when close_range is missing */

enum phase { PHASE_STARTING, PHASE_RUNNING, PHASE_STOPPING };

struct serve;

struct worker_proc {
    struct serve *s;
    int index;  /* unique for the broker's life: the IPC link's name */
    int gen_no; /* the configuration generation it serves; older ones drain and are not restarted */
    int draining; /* told to stop accepting (SIGUSR1) */
    pid_t pid;    /* 0: not running */
    int ready;
    uint64_t started_ms;
    uint64_t restart_delay_ms; /* 0 until the first unexpected death */
    struct event *restart_timer;
};

struct serve {
    const char *config_path;
    struct generation *gen; /* the configuration new and restarted workers get */
    struct config *cfg;     /* gen->cfg */
    int gen_no;
    struct pidfile *pidfile; /* one gateway per state_dir, taken before anything is opened */
    struct store *st;
    struct secretbox *box; /* secrets at rest: sealed tokens in the store */
    struct token_store *token_store;
    struct event_base *base;
    struct broker *broker;
    struct worker_proc **procs; /* the current generation's, then older ones still draining */
    int n_procs;
    int n_current; /* procs of gen_no */
    int next_index;
    int n_ready;
    enum phase phase;
    int exit_code;
    int reloading; /* a new generation's workers are starting; the older ones still accept */
    struct event *startup_timer;
    struct event *stop_timer;
    struct event *signal_events[4];
    struct event *reload_event; /* SIGHUP */
    int fd_sweep_limit;
};

static struct timeval ms_to_timeval(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static void add_timer(struct event *ev, uint64_t ms)
{
    struct timeval tv = ms_to_timeval(ms);
    evtimer_add(ev, &tv);
}

static int running_workers(const struct serve *s)
{
    int n = 0;
    for (int i = 0; i < s->n_procs; i++)
        n += s->procs[i]->pid > 0;
    return n;
}

static void signal_workers(struct serve *s, int sig)
{
    for (int i = 0; i < s->n_procs; i++)
        if (s->procs[i]->pid > 0)
            kill(s->procs[i]->pid, sig);
}

/* ---- starting a worker ---- */

/* In the child between fork and exec: async-signal-safe calls only (the broker has threads). */
__attribute__((noreturn)) static void exec_worker(char *const argv[], const int *keep,
                                                  size_t n_keep, int sweep_limit)
{
    /* Nothing the broker holds (store, token sockets, other workers' pipes) may reach the
     * worker: mark every descriptor close-on-exec, then let only the worker's own through. */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        for (int fd = 3; fd < sweep_limit; fd++)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    for (size_t i = 0; i < n_keep; i++)
        fcntl(keep[i], F_SETFD, 0);
    execv("/proc/self/exe", argv);
    static const char msg[] = "mailgate: cannot execute /proc/self/exe to start a worker\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(127);
}

static void on_worker_ready(int index, void *arg);
static int reload_on_worker_ready(struct serve *s, struct worker_proc *p);

/* The worker's command line and the descriptors it inherits (docs/design.md, "Worker start"):
 * mailgate -c PATH __worker IPC_FD INDEX CONFIG_FD LISTEN_FD... (one per [listen], in order).
 * Built before fork: the child may not allocate. */
struct worker_args {
    char **argv;
    int *keep;
    size_t n_keep;
};

static void worker_args_build(struct worker_args *a, const struct serve *s, int ipc_fd, int index)
{
    const struct generation *g = s->gen;
    size_t n = 7 + g->n_listen;
    a->argv = mg_calloc(n + 1, sizeof *a->argv);
    a->keep = mg_calloc(2 + g->n_listen, sizeof *a->keep);
    a->argv[0] = mg_strdup("mailgate");
    a->argv[1] = mg_strdup("-c");
    a->argv[2] = mg_strdup(s->config_path);
    a->argv[3] = mg_strdup("__worker");
    a->argv[4] = mg_printf("%d", ipc_fd);
    a->argv[5] = mg_printf("%d", index);
    a->argv[6] = mg_printf("%d", g->config_fd);
    a->keep[0] = ipc_fd;
    a->keep[1] = g->config_fd;
    a->n_keep = 2;
    for (size_t i = 0; i < g->n_listen; i++) {
        a->argv[7 + i] = mg_printf("%d", g->listen_fds[i]);
        a->keep[a->n_keep++] = g->listen_fds[i];
    }
}

static void worker_args_free(struct worker_args *a)
{
    for (size_t i = 0; a->argv[i]; i++)
        free(a->argv[i]);
    free(a->argv);
    free(a->keep);
}

static int spawn_worker(struct worker_proc *p)
{
    struct serve *s = p->s;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        log_error("worker %d: socketpair: %s", p->index, strerror(errno));
        return -1;
    }
    struct worker_args args;
    worker_args_build(&args, s, sv[1], p->index);
    pid_t pid = fork();
    if (pid == 0)
        exec_worker(args.argv, args.keep, args.n_keep, s->fd_sweep_limit);
    worker_args_free(&args);
    if (pid < 0) {
        log_error("worker %d: fork: %s", p->index, strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    close(sv[1]);
    p->pid = pid;
    p->ready = 0;
    p->started_ms = mg_now_ms();
    if (broker_add_worker(s->broker, sv[0], p->index, on_worker_ready, s) != 0) {
        /* Without IPC the worker is useless; it exits when it sees its end closed. */
        kill(pid, SIGTERM);
        return -1;
    }
    log_debug("worker %d started (pid %ld)", p->index, (long)pid);
    return 0;
}

/* ---- state changes ---- */

static void begin_stop(struct serve *s, int exit_code)
{
    if (s->phase == PHASE_STOPPING)
        return;
    s->phase = PHASE_STOPPING;
    s->exit_code = exit_code;
    evtimer_del(s->startup_timer);
    for (int i = 0; i < s->n_procs; i++)
        evtimer_del(s->procs[i]->restart_timer);
    evsignal_del(s->reload_event); /* a reload now would start workers */
    if (running_workers(s) == 0) {
        event_base_loopbreak(s->base);
        return;
    }
    signal_workers(s, SIGTERM);
    add_timer(s->stop_timer, STOP_TIMEOUT_MS);
}

/* login_type = plaintext is the admin's choice for a legacy device; say so at every start. */
static void warn_plaintext_listeners(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct listener_conf *l = &cfg->listeners[i];
        if (l->login_type == MG_LOGIN_PLAINTEXT && l->tls != MG_TLS_IMPLICIT)
            log_warn("listener %s (%s): login_type = plaintext: passwords are accepted without "
                     "TLS; use it only on a trusted network segment",
                     l->name, l->address);
    }
}

static void log_ready(const struct serve *s)
{
    warn_plaintext_listeners(s->cfg);
    char listeners[1024] = "";
    size_t used = 0;
    for (size_t i = 0; i < s->cfg->n_listeners && used < sizeof listeners; i++) {
        const struct listener_conf *l = &s->cfg->listeners[i];
        int n = snprintf(listeners + used, sizeof listeners - used, "%s%s=%s", i ? " " : "",
                         l->name, l->address);
        used += n > 0 ? (size_t)n : 0;
    }
    log_info("mailgate ready: %d workers, listeners: %s", s->n_current, listeners);
}

static struct worker_proc *proc_by_index(struct serve *s, int index)
{
    for (int i = 0; i < s->n_procs; i++)
        if (s->procs[i]->index == index)
            return s->procs[i];
    return NULL;
}

static void on_worker_ready(int index, void *arg)
{
    struct serve *s = arg;
    struct worker_proc *p = proc_by_index(s, index);
    if (!p || p->ready || p->pid <= 0)
        return;
    p->ready = 1;
    if (s->phase == PHASE_RUNNING) {
        if (reload_on_worker_ready(s, p))
            return;
        log_info("worker %d is serving again (pid %ld)", index, (long)p->pid);
        return;
    }
    if (s->phase == PHASE_STARTING && ++s->n_ready == s->n_current) {
        evtimer_del(s->startup_timer);
        s->phase = PHASE_RUNNING;
        log_ready(s);
    }
}

static void describe_exit(int status, char *buf, size_t size)
{
    if (WIFEXITED(status))
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "ended with wait status %#x", (unsigned)status);
}

static void schedule_restart(struct worker_proc *p)
{
    int died_quickly = mg_now_ms() - p->started_ms < QUICK_DEATH_MS;
    if (!died_quickly || p->restart_delay_ms == 0)
        p->restart_delay_ms = RESTART_DELAY_MIN_MS;
    else if (p->restart_delay_ms < RESTART_DELAY_MAX_MS)
        p->restart_delay_ms *= 2;
    if (p->restart_delay_ms > RESTART_DELAY_MAX_MS)
        p->restart_delay_ms = RESTART_DELAY_MAX_MS;
    add_timer(p->restart_timer, p->restart_delay_ms);
}

static void on_restart_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker_proc *p = arg;
    if (p->s->phase != PHASE_RUNNING || p->pid > 0)
        return;
    log_info("restarting worker %d", p->index);
    if (spawn_worker(p) != 0) {
        p->started_ms = mg_now_ms(); /* counts as a quick death: back off */
        schedule_restart(p);
    }
}

static void proc_free(struct worker_proc *p)
{
    if (p->restart_timer)
        event_free(p->restart_timer);
    free(p);
}

static void drop_proc(struct serve *s, struct worker_proc *p)
{
    for (int i = 0; i < s->n_procs; i++) {
        if (s->procs[i] == p) {
            memmove(&s->procs[i], &s->procs[i + 1], (size_t)(s->n_procs - i - 1) * sizeof p);
            s->n_procs--;
            break;
        }
    }
    proc_free(p);
}

static void worker_exited(struct serve *s, struct worker_proc *p, int status)
{
    char how[96];
    describe_exit(status, how, sizeof how);
    pid_t pid = p->pid;
    int was_ready = p->ready;
    p->pid = 0;
    p->ready = 0;
    broker_remove_worker(s->broker, p->index);
    switch (s->phase) {
    case PHASE_STARTING:
        log_error("worker %d (pid %ld) %s", p->index, (long)pid, how);
        log_error("worker %d failed to start; see messages above", p->index);
        begin_stop(s, 1);
        break;
    case PHASE_RUNNING:
        if (p->gen_no != s->gen_no) {
            /* Replaced by a reload: never restarted, with the configuration it had. */
            log_info("worker %d (previous configuration, pid %ld) %s", p->index, (long)pid, how);
            drop_proc(s, p);
            break;
        }
        schedule_restart(p);
        log_error("worker %d (pid %ld) %s%s; restarting it in %llu ms", p->index, (long)pid, how,
                  was_ready ? "" : " before it was ready", (unsigned long long)p->restart_delay_ms);
        break;
    case PHASE_STOPPING:
        log_debug("worker %d (pid %ld) %s", p->index, (long)pid, how);
        if (running_workers(s) == 0)
            event_base_loopbreak(s->base);
        break;
    }
}

static struct worker_proc *proc_by_pid(struct serve *s, pid_t pid)
{
    for (int i = 0; i < s->n_procs; i++)
        if (s->procs[i]->pid == pid)
            return s->procs[i];
    return NULL;
}

/* ---- signals and timers ---- */

static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct serve *s = arg;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct worker_proc *p = proc_by_pid(s, pid);
        if (p)
            worker_exited(s, p, status);
    }
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct serve *s = arg;
    if (s->phase == PHASE_STOPPING)
        return;
    log_info("stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    begin_stop(s, 0);
}

/* ---- reload (SIGHUP) ---- */

/* The new generation's workers first; then the older ones still running (they drain). */
static int make_generation_procs(struct serve *s)
{
    int n = s->cfg->gateway.workers > 0 ? s->cfg->gateway.workers : 1;
    struct worker_proc **procs = mg_calloc((size_t)(n + s->n_procs), sizeof *procs);
    int m = 0;
    for (; m < n; m++) {
        struct worker_proc *p = procs[m] = mg_calloc(1, sizeof *p);
        p->s = s;
        p->index = s->next_index++;
        p->gen_no = s->gen_no;
        p->restart_timer = evtimer_new(s->base, on_restart_timer, p);
        if (!p->restart_timer)
            return -1;
    }
    for (int i = 0; i < s->n_procs; i++) {
        struct worker_proc *old = s->procs[i];
        evtimer_del(old->restart_timer);
        if (old->pid > 0)
            procs[m++] = old;
        else
            proc_free(old); /* waiting for a restart it no longer gets */
    }
    free(s->procs);
    s->procs = procs;
    s->n_procs = m;
    s->n_current = n;
    return 0;
}

/* Once every worker of the new configuration listens, the older ones stop accepting and exit
 * when their last session ends (worker.c); until then both accept on the shared sockets. */
static int reload_on_worker_ready(struct serve *s, struct worker_proc *p)
{
    if (!s->reloading || p->gen_no != s->gen_no)
        return 0;
    for (int i = 0; i < s->n_current; i++)
        if (!s->procs[i]->ready)
            return 1;
    s->reloading = 0;
    for (int i = s->n_current; i < s->n_procs; i++) {
        struct worker_proc *old = s->procs[i];
        if (old->pid > 0 && !old->draining) {
            old->draining = 1;
            kill(old->pid, SIGUSR1);
        }
    }
    log_info("reloaded %s: %d workers with the new configuration", s->config_path, s->n_current);
    warn_plaintext_listeners(s->cfg);
    return 1;
}

static void warn_restart_only(const struct config *old, const struct config *cfg)
{
    if (strcmp(old->gateway.state_dir, cfg->gateway.state_dir) != 0 ||
        strcmp(old->gateway.secret_key_file, cfg->gateway.secret_key_file) != 0)
        log_warn("state_dir and secret_key_file changes take effect at the next start");
}

static void apply_generation(struct serve *s, struct generation *g)
{
    warn_restart_only(s->cfg, g->cfg);
    broker_set_config(s->broker, g->cfg);
    generation_free(&s->gen);
    s->gen = g;
    s->cfg = g->cfg;
    s->gen_no++;
    log_set_level(s->cfg->gateway.log_level);
    if (make_generation_procs(s) != 0) {
        log_error("reload: out of memory; stopping");
        begin_stop(s, 1);
        return;
    }
    s->reloading = 1;
    for (int i = 0; i < s->n_current; i++) {
        struct worker_proc *p = s->procs[i];
        if (spawn_worker(p) != 0) {
            p->started_ms = mg_now_ms();
            schedule_restart(p);
        }
    }
}

/* Each error line ("PATH:LINE: message") goes to the log. */
static void log_reload_errors(char *text)
{
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        log_error("reload: %s", line);
    log_error("reload failed: still running the previous configuration");
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct serve *s = arg;
    if (s->phase != PHASE_RUNNING) {
        log_warn("SIGHUP ignored: the gateway is %s",
                 s->phase == PHASE_STARTING ? "starting" : "stopping");
        return;
    }
    log_info("SIGHUP: reloading %s", s->config_path);
    char *text = NULL;
    size_t len = 0;
    FILE *errors = open_memstream(&text, &len);
    struct generation *g = errors ? generation_load(s->config_path, errors) : NULL;
    if (g && generation_listen(g, s->gen, errors) != 0)
        generation_free(&g);
    if (errors)
        fclose(errors);
    if (g)
        apply_generation(s, g);
    else
        log_reload_errors(text ? text : (char[]){"cannot collect the errors"});
    free(text);
}

static void on_startup_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct serve *s = arg;
    for (int i = 0; i < s->n_current; i++) {
        if (!s->procs[i]->ready) {
            log_error("worker %d failed to start within %d s; see messages above", i,
                      STARTUP_TIMEOUT_MS / 1000);
            break;
        }
    }
    begin_stop(s, 1);
}

static void on_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct serve *s = arg;
    log_warn("%d worker(s) still running %d s after SIGTERM; killing them", running_workers(s),
             STOP_TIMEOUT_MS / 1000);
    signal_workers(s, SIGKILL);
}

/* ---- process setup ---- */

static void raise_fd_limit(struct serve *s)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            log_warn("cannot raise the open file limit from %llu: %s", (unsigned long long)old,
                     strerror(errno));
            rl.rlim_cur = old;
        }
    }
    s->fd_sweep_limit = rl.rlim_cur > FD_SWEEP_MAX ? FD_SWEEP_MAX : (int)rl.rlim_cur;
}

static int file_readable(const char *path)
{
    if (!path || access(path, R_OK) == 0)
        return 0;
    fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
    return -1;
}

/* Everything read after the start is read as the unprivileged user: the configuration and its
 * secret files by a reload, the certificates by every worker that starts. A file only root
 * can read would break the first reload or worker restart, long after the admin looked:
 * refuse now, naming the files. */
static int readable_after_drop(struct serve *s)
{
    struct generation *probe = generation_load(s->config_path, stderr);
    const struct tls_conf *t = &s->cfg->tls;
    int rc = probe ? 0 : -1;
    generation_free(&probe);
    rc |= file_readable(t->certificate) | file_readable(t->private_key);
    rc |= file_readable(t->ecdsa_certificate) | file_readable(t->ecdsa_private_key);
    for (size_t i = 0; i < s->cfg->n_providers; i++)
        rc |= file_readable(s->cfg->providers[i].ca_file);
    if (rc != 0)
        fprintf(stderr,
                "mailgate: not starting: user %s cannot read the files above (reloads and "
                "workers read them as that user); give them to it, e.g. chown %s FILE && "
                "chmod 0600 FILE\n",
                broker_user_name(), broker_user_name());
    return rc ? -1 : 0;
}

static int add_signal(struct serve *s, size_t slot, int sig, event_callback_fn cb)
{
    s->signal_events[slot] = evsignal_new(s->base, sig, cb, s);
    return s->signal_events[slot] && evsignal_add(s->signal_events[slot], NULL) == 0 ? 0 : -1;
}

static int setup_loop(struct serve *s)
{
    s->startup_timer = evtimer_new(s->base, on_startup_timeout, s);
    s->stop_timer = evtimer_new(s->base, on_stop_timeout, s);
    if (!s->startup_timer || !s->stop_timer)
        return -1;
    if (add_signal(s, 0, SIGCHLD, on_sigchld) != 0 ||
        add_signal(s, 1, SIGTERM, on_stop_signal) != 0 ||
        add_signal(s, 2, SIGINT, on_stop_signal) != 0 || add_signal(s, 3, SIGHUP, on_sighup) != 0)
        return -1;
    s->reload_event = s->signal_events[3];
    return make_generation_procs(s);
}

static void start_workers(struct serve *s)
{
    s->phase = PHASE_STARTING;
    for (int i = 0; i < s->n_current; i++) {
        if (spawn_worker(s->procs[i]) != 0) {
            log_error("worker %d failed to start; see messages above", i);
            begin_stop(s, 1);
            return;
        }
    }
    add_timer(s->startup_timer, STARTUP_TIMEOUT_MS);
}

/* Last resort after the loop: nothing may outlive the broker. */
static void reap_leftovers(struct serve *s)
{
    signal_workers(s, SIGKILL);
    for (int i = 0; i < s->n_procs; i++) {
        if (s->procs[i]->pid > 0)
            waitpid(s->procs[i]->pid, NULL, 0);
        s->procs[i]->pid = 0;
    }
}

static void free_loop_objects(struct serve *s)
{
    for (int i = 0; s->procs && i < s->n_procs; i++)
        proc_free(s->procs[i]);
    free(s->procs);
    s->procs = NULL;
    for (size_t i = 0; i < MG_ARRAY_LEN(s->signal_events); i++)
        if (s->signal_events[i])
            event_free(s->signal_events[i]);
    if (s->startup_timer)
        event_free(s->startup_timer);
    if (s->stop_timer)
        event_free(s->stop_timer);
}

static int open_everything(struct serve *s)
{
    s->gen = generation_load(s->config_path, stderr);
    if (!s->gen) {
        fprintf(stderr, "mailgate: not starting: %s has errors (see above)\n", s->config_path);
        return -1;
    }
    s->cfg = s->gen->cfg;
    log_init("broker", s->cfg->gateway.log_level);
    char err[512] = "";
    /* Before the store and before the listeners are bound: a second gateway on the same
     * state_dir is told which process holds it (not just "address in use"). */
    s->pidfile = pidfile_acquire(s->cfg->gateway.state_dir, err, sizeof err);
    if (!s->pidfile) {
        fprintf(stderr, "mailgate: not starting: %s\n", err);
        return -1;
    }
    if (broker_harden(s->cfg, err, sizeof err) != 0) {
        fprintf(stderr, "mailgate: not starting: %s\n", err);
        return -1;
    }
    /* Bound once, before any worker exists; the workers inherit the sockets. */
    if (generation_listen(s->gen, NULL, stderr) != 0) {
        fprintf(stderr, "mailgate: not starting: cannot bind the listeners (see above)\n");
        return -1;
    }
    s->st = store_open(s->cfg->gateway.state_dir, err, sizeof err);
    if (!s->st) {
        fprintf(stderr, "mailgate: not starting: cannot open the store in %s: %s\n",
                s->cfg->gateway.state_dir, err);
        return -1;
    }
    s->box = secretbox_open(s->cfg->gateway.secret_key_file, err, sizeof err);
    if (!s->box) {
        fprintf(stderr, "mailgate: not starting: %s\n", err);
        return -1;
    }
    raise_fd_limit(s); /* while the hard limit may still be raised */
    if (broker_drop_root(s->cfg, err, sizeof err) != 0) {
        fprintf(stderr, "mailgate: not starting: %s\n", err);
        return -1;
    }
    if (readable_after_drop(s) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    s->base = event_base_new();
    if (!s->base) {
        fprintf(stderr, "mailgate: not starting: cannot create the event loop\n");
        return -1;
    }
    s->broker = broker_new(s->base, s->cfg, s->st);
    if (!s->broker || setup_loop(s) != 0) {
        fprintf(stderr, "mailgate: not starting: cannot set up the broker (see above)\n");
        return -1;
    }
    s->token_store = token_store_attach(broker_token_client(s->broker), s->cfg, s->st, s->box);
    broker_set_secretbox(s->broker, s->box);
    return 0;
}

static void close_everything(struct serve *s)
{
    if (s->procs)
        reap_leftovers(s);
    free_loop_objects(s);
    token_store_detach(&s->token_store);
    broker_free(&s->broker);
    secretbox_free(&s->box);
    if (s->base)
        event_base_free(s->base);
    store_close(&s->st);
    pidfile_release(&s->pidfile); /* last: every worker is gone */
    generation_free(&s->gen);
    s->cfg = NULL;
    libevent_global_shutdown();
    broker_allow_leak_check();
}

int serve_main(const char *config_path)
{
    /* Before any event base exists: the token client and verify pool share the loop with
     * threads. */
    evthread_use_pthreads();
    struct serve s = {.config_path = config_path, .exit_code = 1};
    if (open_everything(&s) == 0) {
        start_workers(&s);
        if (s.phase != PHASE_STOPPING || running_workers(&s) > 0)
            event_base_dispatch(s.base);
        if (s.phase == PHASE_STOPPING && s.exit_code == 0)
            log_info("mailgate stopped");
    }
    int code = s.exit_code;
    close_everything(&s);
    return code;
}
