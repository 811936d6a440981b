/* Minimal assertions for the C tests: print where and why, exit non-zero. */
#ifndef LC_TEST_CHECK_H
#define LC_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#include "leastconn.h"

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

#endif
