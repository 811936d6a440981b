#include "bridge.h"

#include "_cgo_export.h"

lc_status lc_go_push(lc_upstream_list *list, const char *address, uint32_t weight,
                     uint32_t max_requests, uint32_t tier, uintptr_t tag) {
    lc_upstream u = {address, weight, max_requests, tier, (void *)tag};
    return lc_upstream_list_push(list, &u);
}

/* How many FetchFunc and LogHook calls are running on this thread. While Go runs a callback
 * from C, its goroutine stays on the calling thread, so a cgo call from the callback (a
 * Close) reads its own thread's count. */
static _Thread_local unsigned callback_depth;

int lc_go_in_callback(void) { return callback_depth > 0; }

static lc_status go_fetch(void *userdata, lc_upstream_list *list) {
    callback_depth++;
    lc_status st = leastconnGoFetch((uintptr_t)userdata, list);
    callback_depth--;
    return st;
}

static void go_free(void *userdata) { leastconnGoFreeHandle((uintptr_t)userdata); }

lc_status lc_go_callback_new(uintptr_t handle, lc_source **out) {
    return lc_source_callback_new(go_fetch, (void *)handle, go_free, out);
}

static void go_stats(void *userdata, const char *address, const lc_host_stats *stats) {
    leastconnGoStats((uintptr_t)userdata, (char *)address, (lc_host_stats *)stats);
}

lc_status lc_go_stats(const lc_pool *pool, uintptr_t handle) {
    return lc_pool_stats(pool, go_stats, (void *)handle);
}

static void go_log(void *userdata, lc_log_level level, const char *message) {
    (void)userdata;
    callback_depth++;
    leastconnGoLog(level, (char *)message);
    callback_depth--;
}

lc_status lc_go_log_set(int on, lc_log_level max_level) {
    return lc_log_set_callback(on ? go_log : NULL, NULL, max_level);
}

/* The pick is allocated here, in C memory, and freed by lc_go_release() or
 * lc_go_pick_free(): Go never holds it in its own (movable, collected) memory. */
static lc_go_selected selected(lc_status status, lc_pick *pick) {
    if (status != LC_OK) {
        free(pick);
        pick = NULL;
    }
    lc_go_selected out = {pick, status};
    return out;
}

lc_go_selected lc_go_select(uintptr_t pool, const uint64_t *exclude, size_t exclude_len) {
    lc_pick *pick = calloc(1, sizeof *pick);
    if (pick == NULL) return selected(LC_ERR_OS, NULL);
    return selected(lc_pool_select((const lc_pool *)pool, exclude, exclude_len, pick), pick);
}

lc_go_selected lc_go_picker_select(uintptr_t picker, const uint64_t *exclude,
                                   size_t exclude_len) {
    lc_pick *pick = calloc(1, sizeof *pick);
    if (pick == NULL) return selected(LC_ERR_OS, NULL);
    return selected(lc_picker_select((lc_picker *)picker, exclude, exclude_len, pick), pick);
}

/* Releases and frees the pick (through `picker` unless it is NULL), also on
 * LC_ERR_NOT_IN_FLIGHT (the library consumed it); on another error the pick still holds its
 * reservation and is kept. */
lc_status lc_go_release(lc_picker *picker, lc_pick *pick, lc_outcome outcome) {
    lc_status st = picker != NULL ? lc_picker_release(picker, pick, outcome)
                                  : lc_pick_release(pick, outcome);
    if (st == LC_OK || st == LC_ERR_NOT_IN_FLIGHT) free(pick);
    return st;
}

void lc_go_pick_free(lc_pick *pick) { free(pick); }


/* The benchmark's reference: the same select + release as a Go Pick does, in a C loop
 * (malloc'd pick included, as lc_go_select does), with no cgo crossing per operation.
 * With a picker when `picker` is not NULL. */
lc_status lc_go_bench_c(const lc_pool *pool, lc_picker *picker, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        lc_go_selected sel =
            picker != NULL ? lc_go_picker_select((uintptr_t)picker, NULL, 0)
                           : lc_go_select((uintptr_t)pool, NULL, 0);
        if (sel.status != LC_OK) return sel.status;
        lc_status st = lc_go_release(NULL, sel.pick, LC_OUTCOME_SUCCESS);
        if (st != LC_OK) return st;
    }
    return LC_OK;
}

/* An empty function: the cost of one cgo crossing, for the benchmark. */
void lc_go_noop(void) {}

void lc_go_set_tag(void **slot, uintptr_t tag) { *slot = (void *)tag; }

/* For the tests: releases a copy of `pick` made at another address (a stack struct), which
 * the library must refuse with LC_ERR_PICK_MOVED, leaving the original's reservation. */
lc_status lc_go_release_copy(const lc_pick *pick, lc_outcome outcome) {
    lc_pick copy = *pick;
    return lc_pick_release(&copy, outcome);
}
