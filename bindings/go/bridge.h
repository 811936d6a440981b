/* C helpers of the Go binding: each Go operation is one cgo call, values that are not Go
 * pointers (handles, tags) cross as uintptr_t, and every lc_pick lives in C memory so that
 * it never moves between its select and its release. */
#ifndef LEASTCONN_GO_BRIDGE_H
#define LEASTCONN_GO_BRIDGE_H

#include <stdint.h>
#include <stdlib.h>

#include <leastconn.h>

lc_status lc_go_push(lc_upstream_list *list, const char *address, uint32_t weight,
                     uint32_t max_requests, uint32_t tier, uintptr_t tag);
lc_status lc_go_callback_new(uintptr_t handle, lc_source **out);
/* Whether the calling thread is inside a FetchFunc or a LogHook called by the library. */
int lc_go_in_callback(void);
lc_status lc_go_stats(const lc_pool *pool, uintptr_t handle);
lc_status lc_go_log_set(int on, lc_log_level max_level);
/* A select's result, returned by value so that Go passes no pointer for it. */
typedef struct lc_go_selected {
    lc_pick *pick; /* NULL unless status is LC_OK */
    lc_status status;
} lc_go_selected;

/* The pool and the picker cross as integers: cgo boxes a pointer to an incomplete C type
 * into an interface for its pointer check, an allocation on every select. */
lc_go_selected lc_go_select(uintptr_t pool, const uint64_t *exclude, size_t exclude_len);
lc_go_selected lc_go_picker_select(uintptr_t picker, const uint64_t *exclude,
                                   size_t exclude_len);
lc_status lc_go_release(lc_picker *picker, lc_pick *pick, lc_outcome outcome);
void lc_go_pick_free(lc_pick *pick);
lc_status lc_go_bench_c(const lc_pool *pool, lc_picker *picker, uint64_t n);
void lc_go_noop(void);
/* For the tests: releases a copy of the pick made at another address. */
lc_status lc_go_release_copy(const lc_pick *pick, lc_outcome outcome);
/* Stores an integer tag into a void * field of a struct in C memory. */
void lc_go_set_tag(void **slot, uintptr_t tag);

#endif
