/*
 * Minimal assertions for the C tests: print where and why, exit non-zero; a watchdog for
 * deadlocks. Then the setup the tests share: a log callback that captures errors, an upstream
 * with the defaults, and a checked select-and-release.
 */
#ifndef LC_TEST_CHECK_H
#define LC_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "leastconn.h"

/*
 * A deadlock fails the test instead of hanging CI: SIGALRM ends the program after 15 minutes
 * (every test takes seconds, valgrind included). Several tests pin "refused, never waits"
 * rules whose regression would be a deadlock.
 */
__attribute__((constructor)) static void check_watchdog(void) {
    alarm(15 * 60);
}

/* Counted atomically: the thread tests check from several threads. */
static unsigned long checks_passed;
#define COUNT_CHECK() __atomic_fetch_add(&checks_passed, 1, __ATOMIC_RELAXED)

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
            exit(1);                                                                  \
        }                                                                             \
        COUNT_CHECK();                                                                \
    } while (0)

#define CHECK_STATUS(expr, want)                                                      \
    do {                                                                              \
        lc_status got_ = (expr);                                                      \
        lc_status want_ = (want);                                                     \
        if (got_ != want_) {                                                          \
            fprintf(stderr, "%s:%d: %s returned %u (%s), want %u (%s)\n", __FILE__,   \
                    __LINE__, #expr, (unsigned)got_, lc_status_str(got_),             \
                    (unsigned)want_, lc_status_str(want_));                           \
            exit(1);                                                                  \
        }                                                                             \
        COUNT_CHECK();                                                                \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, LC_OK)

/*
 * Log capture: lc_log_set_callback(capture_log, &errors_logged, level). Counts errors and
 * warnings and keeps the last error; a test zeroes the counters before what it checks.
 */
static char last_error[2048];
static unsigned errors_logged, warnings_logged;

static inline void capture_log(void *userdata, lc_log_level level, const char *message) {
    CHECK(userdata == &errors_logged && message != NULL);
    if (level == LC_LOG_ERROR) {
        errors_logged++;
        snprintf(last_error, sizeof last_error, "%s", message);
    } else if (level == LC_LOG_WARN) {
        warnings_logged++;
    }
}

/* Exactly one error since errors_logged was zeroed, and it starts with `prefix`. */
static inline void check_one_error(const char *prefix) {
    CHECK(errors_logged == 1);
    CHECK(strncmp(last_error, prefix, strlen(prefix)) == 0);
}

/* An upstream with the defaults: weight 1, no max_requests, tier 0, no tag. */
static inline lc_upstream upstream(const char *address) {
    lc_upstream u;
    u.address = address;
    u.weight = 1;
    u.max_requests = 0;
    u.tier = 0;
    u.tag = NULL;
    return u;
}

/* Selects from `pool` (nothing excluded), checks the address, releases as a success; returns
 * the pick's tag. */
static inline void *check_pick(const lc_pool *pool, const char *want_address) {
    lc_pick pick;
    void *tag;
    memset(&pick, 0, sizeof pick);
    CHECK_OK(lc_pool_select(pool, NULL, 0, &pick));
    if (strcmp(pick.address, want_address) != 0) {
        fprintf(stderr, "picked %s, want %s\n", pick.address, want_address);
        exit(1);
    }
    COUNT_CHECK();
    tag = pick.tag;
    CHECK_OK(lc_pick_release(&pick, LC_OUTCOME_SUCCESS));
    return tag;
}

/* The requests in flight on `address` of `pool` (checked to be listed). */
static inline uint32_t host_in_flight(const lc_pool *pool, const char *address) {
    lc_host_stats s;
    CHECK_OK(lc_pool_host_stats(pool, address, &s));
    return s.in_flight;
}

/*
 * Forked children (the zone tests): a child reports by its exit status, and pipes order the
 * steps of parent and child (one byte a step), never sleeps.
 */

/* A child's success: its copy of the log callback goes first, so that valgrind's leak check
 * of the child finds nothing held. */
static inline void child_passed(void) {
    CHECK_OK(lc_log_set_callback(NULL, NULL, LC_LOG_OFF));
    exit(0);
}

/* Waits for child `pid`; its checks passed iff it exited with 0. */
static inline void check_child(pid_t pid) {
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child %d ended with status %#x\n", (int)pid, (unsigned)status);
        exit(1);
    }
    COUNT_CHECK();
}

/* Writes step `c` to the pipe end `fd`. */
static inline void put(int fd, char c) {
    CHECK(write(fd, &c, 1) == 1);
}

/* Reads a step from the pipe end `fd` and checks that it is `want`. */
static inline void get(int fd, char want) {
    char c = 0;
    CHECK(read(fd, &c, 1) == 1);
    CHECK(c == want);
}

/* Forks a child joined to the parent by two pipes, `to_parent` and `to_child`, each process
 * left with only its own ends open (the child writes to_parent[1] and reads to_child[0];
 * the parent the other two), so that either side sees end of file when the other ends.
 * Returns fork()'s pid. */
static inline pid_t fork_piped(int to_parent[2], int to_child[2]) {
    pid_t pid;
    CHECK(pipe(to_parent) == 0 && pipe(to_child) == 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(to_parent[0]);
        close(to_child[1]);
    } else {
        close(to_parent[1]);
        close(to_child[0]);
    }
    return pid;
}

/* In a forked child that holds what the parent will find after killing it: says 'h' on
 * `to_parent` and waits until the parent's SIGKILL (or end of file on `from_parent` if the
 * parent exited first). Never returns. */
static inline void hold_until_killed(int to_parent, int from_parent) {
    char c;
    put(to_parent, 'h');
    while (read(from_parent, &c, 1) < 0) {
    }
    _exit(1);
}

#endif
