/* mailgate: one binary for the daemon and the admin CLI.
 *
 *   mailgate [-c FILE] COMMAND [ARGS]      (-c may also follow the command)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "cli.h"
#include "config.h"
#include "serve.h"
#include "worker.h"

#ifndef MAILGATE_VERSION
#define MAILGATE_VERSION "unknown"
#endif

/* Removes every "-c FILE" / "--config FILE" / "--config=FILE" from argv (wherever it stands, so
 * that "mailgate serve -c FILE" and "mailgate -c FILE serve" both work) and returns the path. */
static const char *take_config_option(int *argc, char **argv, int *bad)
{
    const char *path = NULL;
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "mailgate: %s needs a file name\n", a);
                *bad = 1;
                return NULL;
            }
            path = argv[++i];
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0) {
            path = a + 9;
            continue;
        }
        argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    return path;
}

static int run_worker(const char *config_path, int argc, char **argv)
{
    /* Internal: "mailgate __worker IPC_FD INDEX CONFIG_FD LISTEN_FD...", started by serve with
     * those descriptors inherited (docs/design.md, "Worker start"). */
    if (argc < 5) {
        fprintf(stderr, "mailgate: __worker is internal\n");
        return 2;
    }
    /* Started through /proc/self/exe (so broker and workers are always the same binary), which
     * would show up as "exe" in ps and top. */
    prctl(PR_SET_NAME, "mailgate-worker", 0, 0, 0);
    struct worker_start start = {.config_path = config_path,
                                 .ipc_fd = atoi(argv[2]),
                                 .index = atoi(argv[3]),
                                 .config_fd = atoi(argv[4]),
                                 .n_listen = (size_t)(argc - 5)};
    int fds[argc - 4];
    for (int i = 5; i < argc; i++)
        fds[i - 5] = atoi(argv[i]);
    start.listen_fds = fds;
    return worker_main(&start);
}

int main(int argc, char **argv)
{
    int bad = 0;
    const char *config_path = take_config_option(&argc, argv, &bad);
    if (bad)
        return 2;
    if (!config_path)
        config_path = getenv("MAILGATE_CONFIG") ? getenv("MAILGATE_CONFIG") : MG_DEFAULT_CONFIG;
    if (argc < 2) {
        cli_usage();
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return argc == 2 ? serve_main(config_path) : (cli_usage(), 2);
    if (strcmp(cmd, "check-config") == 0)
        return argc == 2 ? cli_check_config(config_path) : (cli_usage(), 2);
    if (strcmp(cmd, "user") == 0)
        return cli_user(config_path, argc - 1, argv + 1);
    if (strcmp(cmd, "token") == 0)
        return cli_token(config_path, argc - 1, argv + 1);
    if (strcmp(cmd, "grant") == 0)
        return cli_grant(config_path, argc - 1, argv + 1);
    if (strcmp(cmd, "audit") == 0)
        return cli_audit(config_path, argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0)
        return cli_report(config_path, argc - 1, argv + 1);
    if (strcmp(cmd, "dns") == 0)
        return cli_dns(config_path, argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return cli_check(config_path, argc - 1, argv + 1);
    if (strcmp(cmd, "tlsrpt") == 0)
        return cli_tlsrpt(config_path, argc - 1, argv + 1);
    if (strcmp(cmd, "secrets") == 0)
        return cli_secrets(config_path, argc - 1, argv + 1);
    if (strcmp(cmd, "__worker") == 0)
        return run_worker(config_path, argc, argv);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("mailgate %s\n", MAILGATE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        cli_usage();
        return 0;
    }
    fprintf(stderr, "mailgate: unknown command '%s'\n", cmd);
    cli_usage();
    return 2;
}
