/* The protocol log's files (src/broker/protolog_writer.c): created at the first batch, appended,
 * rotated before a batch would pass protocol_log_max, at most PROTOLOG_KEEP old files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "protolog_writer.h"
#include "util.h"

static char state_dir[] = "/tmp/mg-protolog-writer-XXXXXX";

static off_t file_size(const char *name)
{
    char *path = mg_printf("%s/%s/%s", state_dir, PROTOLOG_DIR, name);
    struct stat st;
    off_t size = stat(path, &st) == 0 ? st.st_size : -1;
    free(path);
    return size;
}

static int count_files(void)
{
    char *path = mg_printf("%s/%s", state_dir, PROTOLOG_DIR);
    DIR *d = opendir(path);
    free(path);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_append_and_rotate(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(state_dir));
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.gateway.state_dir = state_dir;
    cfg.gateway.protocol_log_max = 1000;
    struct protolog_writer *pw = protolog_writer_new(&cfg);
    char batch[300];
    memset(batch, 'x', sizeof batch);
    batch[sizeof batch - 1] = '\n';
    for (int i = 0; i < 3; i++)
        protolog_writer_append(pw, batch, sizeof batch);
    assert_int_equal(file_size(PROTOLOG_FILE), 900);
    assert_int_equal(file_size(PROTOLOG_FILE ".1"), -1);
    protolog_writer_append(pw, batch, sizeof batch); /* 1200 > 1000: rotate first */
    assert_int_equal(file_size(PROTOLOG_FILE), 300);
    assert_int_equal(file_size(PROTOLOG_FILE ".1"), 900);
    for (int i = 0; i < 60; i++)
        protolog_writer_append(pw, batch, sizeof batch);
    assert_int_equal(count_files(), 1 + PROTOLOG_KEEP);
    assert_int_equal(file_size(PROTOLOG_FILE ".5"), 900);
    assert_int_equal(file_size(PROTOLOG_FILE ".6"), -1);
    /* a reload with a larger size applies to the next batch */
    cfg.gateway.protocol_log_max = 100000;
    protolog_writer_set_config(pw, &cfg);
    off_t before = file_size(PROTOLOG_FILE);
    protolog_writer_append(pw, batch, sizeof batch);
    protolog_writer_append(pw, batch, sizeof batch);
    protolog_writer_append(pw, batch, sizeof batch);
    assert_int_equal(file_size(PROTOLOG_FILE), before + 900);
    protolog_writer_free(&pw);
    assert_null(pw);
    char *cmd = mg_printf("rm -rf '%s'", state_dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_rotate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
