/* The worker's sandbox (sandbox.h). A worker exploit should get the network side and nothing
 * else: no file (chroot into an empty directory it cannot write, from a user namespace of its
 * own), no root and no capability (the broker started it as [gateway] user), no ptrace of
 * the broker (not dumpable, and ptrace is not allowed), no new program (no execve, no new
 * privileges), no core file with the TLS key or a token in it.
 *
 * The seccomp allowlist is what the event loop needs: socket I/O (libevent, OpenSSL through
 * bufferevents), accept, upstream connects and evdns over UDP (AF_INET/AF_INET6 only), memory
 * (malloc, and the sanitizers' allocator in the test build), time, randomness (OpenSSL),
 * signals (libevent's SIGTERM handling, raise() for an abort), and the teardown after a
 * graceful stop (evhttp's web listeners, src/http, need nothing beyond this: tested) (restoring
 * signal handlers, close, exit). Calls that library code may make on a fallback path and that a
 * failure answers well (opening a file, a socket of another family, prctl) fail with an errno
 * instead of killing: they cannot succeed in the chroot or are denied anyway, and a worker killed
 * there would cost its clients. Everything else kills the whole process (SIGSYS); the broker
 * restarts it. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "config.h"
#include "log.h"
#include "privs.h"
#include "util.h"

struct rule {
    int nr;
    uint32_t action;
};

#define ALLOW(name)                                                                                \
    {                                                                                              \
        SCMP_SYS(name), SCMP_ACT_ALLOW                                                             \
    }
#define FAIL(name, err)                                                                            \
    {                                                                                              \
        SCMP_SYS(name), SCMP_ACT_ERRNO(err)                                                        \
    }

/* Allowed without conditions, or refused with an errno (see the top of the file). */
static const struct rule plain_rules[] = {
    /* socket and pipe I/O */
    ALLOW(read), ALLOW(write), ALLOW(readv), ALLOW(writev), ALLOW(recvfrom), ALLOW(sendto),
    ALLOW(recvmsg), ALLOW(sendmsg), ALLOW(close), ALLOW(shutdown), ALLOW(fcntl),
    /* the loop, accepting clients, connecting upstream (evdns: UDP) */
    ALLOW(epoll_wait), ALLOW(epoll_pwait), ALLOW(epoll_ctl), ALLOW(poll), ALLOW(ppoll),
    ALLOW(accept4), ALLOW(accept), ALLOW(connect), ALLOW(setsockopt), ALLOW(getsockopt),
    ALLOW(getsockname), ALLOW(getpeername),
    /* memory (PROT_EXEC is refused by the conditional rules below) */
    ALLOW(munmap), ALLOW(madvise), ALLOW(brk), ALLOW(mremap),
    /* time, randomness, threads' futexes (libc locks) */
    ALLOW(clock_gettime), ALLOW(clock_getres), ALLOW(gettimeofday), ALLOW(time), ALLOW(nanosleep),
    ALLOW(clock_nanosleep), ALLOW(getrandom), ALLOW(futex),
    /* signals and leaving */
    ALLOW(rt_sigreturn), ALLOW(rt_sigprocmask), ALLOW(rt_sigaction), ALLOW(sigaltstack),
    ALLOW(restart_syscall), ALLOW(exit), ALLOW(exit_group),
    /* facts about the process itself (libc, OpenSSL's fork check, the sanitizers' reports) */
    ALLOW(getpid), ALLOW(gettid), ALLOW(getuid), ALLOW(geteuid), ALLOW(getgid), ALLOW(getegid),
    ALLOW(sched_yield), ALLOW(fstat), ALLOW(newfstatat), ALLOW(lseek), ALLOW(getrlimit),
    ALLOW(uname),
    /* fallback paths of library code: nothing to open in the chroot */
    FAIL(open, EACCES), FAIL(openat, EACCES), FAIL(stat, EACCES), FAIL(lstat, EACCES),
    FAIL(access, EACCES), FAIL(faccessat, EACCES), FAIL(readlink, EACCES), FAIL(readlinkat, EACCES),
    FAIL(prctl, EPERM), FAIL(prlimit64, EPERM)};

static int add_plain_rules(scmp_filter_ctx f)
{
    for (size_t i = 0; i < sizeof plain_rules / sizeof plain_rules[0]; i++)
        if (seccomp_rule_add(f, plain_rules[i].action, plain_rules[i].nr, 0) != 0)
            return -1;
    return 0;
}

/* Rules that look at arguments: sockets of the families a worker uses (another family fails
 * as unsupported, as glibc's resolver fallback may try AF_UNIX/AF_NETLINK), no executable
 * memory, ioctl only for FIONREAD (libevent's read size), signals only to itself. */
static int add_conditional_rules(scmp_filter_ctx f)
{
    pid_t self = getpid();
    int rc = 0;
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_INET));
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_INET6));
    rc |= seccomp_rule_add(f, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                           SCMP_A0(SCMP_CMP_LT, AF_INET));
    rc |= seccomp_rule_add(f, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                           SCMP_A0(SCMP_CMP_GT, AF_INET6));
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, FIONREAD));
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1, SCMP_A0(SCMP_CMP_EQ, self));
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_EQ, self));
    return rc ? -1 : 0;
}

static int load_filter(void)
{
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!f)
        return -1;
    int rc = -1;
    if (add_plain_rules(f) == 0 && add_conditional_rules(f) == 0)
        rc = seccomp_load(f);
    seccomp_release(f);
    return rc == 0 ? 0 : -1;
}

static int write_proc_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    int rc = write(fd, text, len) == (ssize_t)len ? 0 : -1;
    close(fd);
    return rc;
}

/* The worker is already the unprivileged user (the broker dropped root before starting it),
 * so it cannot chroot as such: in a user namespace of its own, where it maps only its own ids,
 * it may. It keeps its uid and gid as seen by the rest of the system. 0: inside, 1: user
 * namespaces are not available here, -1: error. */
static int enter_own_namespace(void)
{
    /* Read before unshare: inside, until the maps are written, every id is the overflow id. */
    long uid = (long)geteuid(), gid = (long)getegid();
    char map[64];
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        return 1;
    snprintf(map, sizeof map, "%ld %ld 1\n", uid, uid);
    if (write_proc_file("/proc/self/uid_map", map) != 0 ||
        write_proc_file("/proc/self/setgroups", "deny\n") != 0)
        return -1;
    snprintf(map, sizeof map, "%ld %ld 1\n", gid, gid);
    return write_proc_file("/proc/self/gid_map", map);
}

/* chroot into the empty directory. Without user namespaces (a container may forbid them) the
 * worker serves unchrooted, with a warning: the seccomp filter still refuses every open(). */
static int enter_empty_root(const struct config *cfg)
{
    if (geteuid() == 0) {
        log_error("sandbox: a worker must not run as root (the broker drops root first)");
        return -1;
    }
    int ns = enter_own_namespace();
    if (ns < 0) {
        log_error("sandbox: cannot map the ids of a new user namespace: %s", strerror(errno));
        return -1;
    }
    if (ns > 0) {
        log_warn("sandbox: no chroot, user namespaces are unavailable (%s); files stay out of "
                 "reach through the seccomp filter only",
                 strerror(errno));
        return mg_drop_capabilities(0);
    }
    char *empty = mg_printf("%s/%s", cfg->gateway.state_dir, MG_EMPTY_ROOT_DIR);
    int rc = chroot(empty) == 0 && chdir("/") == 0 ? 0 : -1;
    if (rc != 0)
        log_error("sandbox: cannot chroot into %s: %s", empty, strerror(errno));
    free(empty);
    /* The capabilities the new namespace gave the worker, bounding set included: none left. */
    if (rc == 0 && mg_drop_capabilities(1) != 0) {
        log_error("sandbox: cannot drop capabilities: %s", strerror(errno));
        rc = -1;
    }
    return rc;
}

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer's check at exit needs /proc, a thread and ptrace: none of them exists in the
 * sandbox, and it would report a fatal error for every worker that stops. Registered after
 * the sanitizer's own atexit handler, so it runs first and leaves with the same status. */
static void leave_without_leak_check(int status, void *arg)
{
    MG_UNUSED(arg);
    _exit(status);
}
#endif

#ifdef MG_TEST_HOOKS
/* Test builds only: SIGUSR2 makes the worker call ptrace, which the filter forbids, so a test
 * can prove that a violation kills the worker (SIGSYS) and that the broker restarts it. */
static void forbidden_call(int sig)
{
    MG_UNUSED(sig);
    syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
}

static int install_test_hook(void)
{
    if (!getenv("MAILGATE_TEST_SANDBOX_HOOK"))
        return 0;
    signal(SIGUSR2, forbidden_call);
    return 1;
}
#else
static int install_test_hook(void)
{
    return 0;
}
#endif

int worker_sandbox_enter(const struct config *cfg)
{
    if (enter_empty_root(cfg) != 0)
        return -1;
    if (mg_forbid_core_dumps() != 0) {
        log_error("sandbox: cannot forbid core dumps: %s", strerror(errno));
        return -1;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        log_error("sandbox: cannot set no_new_privs: %s", strerror(errno));
        return -1;
    }
#if defined(__SANITIZE_ADDRESS__)
    on_exit(leave_without_leak_check, NULL);
#endif
    int hook = install_test_hook();
    if (load_filter() != 0) {
        log_error("sandbox: cannot load the seccomp filter");
        return -1;
    }
    log_debug("sandbox: entered (uid %ld, seccomp on%s)", (long)getuid(),
              hook ? ", test hook armed" : "");
    return 0;
}
