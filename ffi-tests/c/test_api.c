/*
 * Every function of the C ABI, and every error path: NULL for each pointer argument,
 * invalid UTF-8, empty and malformed addresses, weight 0, limits out of range, unknown enum
 * values, double release, zeroed picks, copied picks, failing callback sources.
 * Prints "version X.Y.Z" and "N checks passed" on success (tests/ffi.rs checks both).
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#define NO_EXCLUDE NULL, 0

/* ---- helpers -------------------------------------------------------------------------- */

static lc_source *static_source(const char *const *addresses, size_t n) {
    lc_upstream list[8];
    lc_source *source = NULL;
    size_t i;
    CHECK(n <= 8);
    for (i = 0; i < n; i++) {
        list[i] = upstream(addresses[i]);
    }
    CHECK_OK(lc_source_static_new(list, n, &source));
    CHECK(source != NULL);
    return source;
}

static lc_host_stats stats_of(const lc_pool *pool, const char *address) {
    lc_host_stats s;
    memset(&s, 0xAB, sizeof s);
    CHECK_OK(lc_pool_host_stats(pool, address, &s));
    return s;
}

/* A callback source whose list the test changes between refreshes. */
struct dynamic {
    const char *addresses[4];
    size_t n;
    int fail;            /* return an error (with a message) instead of a list */
    int push_invalid;    /* push an invalid upstream, then return LC_OK */
    unsigned calls;
    unsigned freed;
};

static lc_status dynamic_fetch(void *userdata, lc_upstream_list *list) {
    struct dynamic *d = (struct dynamic *)userdata;
    size_t i;
    d->calls++;
    if (d->fail) {
        CHECK_OK(lc_upstream_list_set_error(list, "registry down"));
        return LC_ERR_SOURCE_FAILED;
    }
    for (i = 0; i < d->n; i++) {
        lc_upstream u = upstream(d->addresses[i]);
        u.tag = (void *)(uintptr_t)(100 + i);
        CHECK_OK(lc_upstream_list_push(list, &u));
    }
    if (d->push_invalid) {
        lc_upstream bad = upstream("no-port");
        CHECK_STATUS(lc_upstream_list_push(list, &bad), LC_ERR_INVALID_ADDRESS);
    }
    return LC_OK;
}

static void dynamic_free(void *userdata) {
    ((struct dynamic *)userdata)->freed++;
}

static lc_source *dynamic_source(struct dynamic *d) {
    lc_source *source = NULL;
    CHECK_OK(lc_source_callback_new(dynamic_fetch, d, dynamic_free, &source));
    return source;
}

/* ---- version and status ------------------------------------------------------------- */

static void test_version_and_status(void) {
    char macros[64];
    lc_status s;
    snprintf(macros, sizeof macros, "%d.%d.%d", LC_VERSION_MAJOR, LC_VERSION_MINOR, LC_VERSION_PATCH);
    CHECK(strcmp(lc_version(), macros) == 0);
    printf("version %s\n", lc_version());

    CHECK(strcmp(lc_status_str(LC_OK), "ok") == 0);
    for (s = LC_ERR_NULL_POINTER; s <= LC_ERR_ZONE_BUSY; s++) {
        CHECK(lc_status_str(s) != NULL);
        CHECK(strcmp(lc_status_str(s), "unknown status") != 0);
    }
    CHECK(strcmp(lc_status_str(LC_ERR_ALREADY_RELEASED), "reservation already released") == 0);
    CHECK(strcmp(lc_status_str(LC_ERR_ZONE_BUSY + 1), "unknown status") == 0);
    CHECK(strcmp(lc_status_str(UINT32_MAX), "unknown status") == 0);
}

/* ---- sources ------------------------------------------------------------------------ */

static void test_static_source_validation(void) {
    lc_source *source = (lc_source *)&source; /* must come back NULL on every error */
    lc_upstream u = upstream("10.0.0.1:80");
    lc_upstream two[2];
    const char bad_utf8[] = {'\xff', '\xfe', ':', '8', '0', '\0'};
    char long_name[1100];

    CHECK_STATUS(lc_source_static_new(&u, 1, NULL), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_source_static_new(NULL, 1, &source), LC_ERR_NULL_POINTER);
    CHECK(source == NULL);

#define REJECTS(field_setup, want)                                              \
    do {                                                                        \
        u = upstream("10.0.0.1:80");                                            \
        field_setup;                                                            \
        source = (lc_source *)&source;                                          \
        CHECK_STATUS(lc_source_static_new(&u, 1, &source), want);              \
        CHECK(source == NULL);                                                  \
    } while (0)

    REJECTS(u.address = NULL, LC_ERR_NULL_POINTER);
    REJECTS(u.address = bad_utf8, LC_ERR_INVALID_UTF8);
    REJECTS(u.address = "", LC_ERR_INVALID_ADDRESS);
    REJECTS(u.address = "10.0.0.1", LC_ERR_INVALID_ADDRESS);
    REJECTS(u.address = "10.0.0.1:0", LC_ERR_INVALID_ADDRESS);
    REJECTS(u.address = "10.0.0.1:65536", LC_ERR_INVALID_ADDRESS);
    REJECTS(u.address = "::1:80", LC_ERR_INVALID_ADDRESS);
    REJECTS(u.address = "bad host:80", LC_ERR_INVALID_ADDRESS);
    REJECTS(u.address = "unix/", LC_ERR_INVALID_ADDRESS);
    memset(long_name, 'a', sizeof long_name);
    memcpy(long_name + sizeof long_name - 4, ":80", 4);
    REJECTS(u.address = long_name, LC_ERR_INVALID_ADDRESS);
    REJECTS(u.weight = 0, LC_ERR_INVALID_WEIGHT);
    REJECTS(u.weight = LC_MAX_WEIGHT + 1, LC_ERR_INVALID_WEIGHT);
    REJECTS(u.weight = UINT32_MAX, LC_ERR_INVALID_WEIGHT);
    REJECTS(u.max_requests = LC_MAX_REQUESTS_LIMIT + 1, LC_ERR_INVALID_LIMIT);
    REJECTS(u.max_requests = UINT32_MAX, LC_ERR_INVALID_LIMIT);
    REJECTS(u.tier = LC_MAX_TIER + 1, LC_ERR_INVALID_LIMIT);
    REJECTS(u.tier = UINT32_MAX, LC_ERR_INVALID_LIMIT);
#undef REJECTS

    /* The first invalid entry fails the whole list. */
    two[0] = upstream("10.0.0.1:80");
    two[1] = upstream("10.0.0.2");
    CHECK_STATUS(lc_source_static_new(two, 2, &source), LC_ERR_INVALID_ADDRESS);

    /* The limits themselves are accepted, and so are all address forms. */
    u = upstream("[fe80::1%eth0]:443");
    u.weight = LC_MAX_WEIGHT;
    u.max_requests = LC_MAX_REQUESTS_LIMIT;
    u.tier = LC_MAX_TIER;
    CHECK_OK(lc_source_static_new(&u, 1, &source));
    lc_source_free(source);
    u = upstream("unix//run/app.sock");
    CHECK_OK(lc_source_static_new(&u, 1, &source));
    lc_source_free(source);

    /* An empty list needs no array. */
    CHECK_OK(lc_source_static_new(NULL, 0, &source));
    CHECK(source != NULL);
    lc_source_free(source);
    lc_source_free(NULL);
}

static void test_callback_source_arguments(void) {
    lc_source *source = (lc_source *)&source;
    struct dynamic d;
    lc_upstream u = upstream("10.0.0.1:80");
    memset(&d, 0, sizeof d);

    CHECK_STATUS(lc_source_callback_new(NULL, &d, dynamic_free, &source), LC_ERR_NULL_POINTER);
    CHECK(source == NULL);
    CHECK(d.freed == 0); /* a failed constructor leaves userdata to the caller */
    CHECK_STATUS(lc_source_callback_new(dynamic_fetch, &d, dynamic_free, NULL), LC_ERR_NULL_POINTER);
    CHECK(d.freed == 0);

    /* free_userdata runs once, when the source is dropped; the callback never ran. */
    source = dynamic_source(&d);
    lc_source_free(source);
    CHECK(d.freed == 1 && d.calls == 0);

    /* No free function is fine. */
    CHECK_OK(lc_source_callback_new(dynamic_fetch, &d, NULL, &source));
    lc_source_free(source);
    CHECK(d.freed == 1);

    CHECK_STATUS(lc_upstream_list_push(NULL, &u), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_upstream_list_set_error(NULL, "x"), LC_ERR_NULL_POINTER);
}

/* Invoked as a source: checks the NULL/UTF-8 paths of the list functions on a live list. */
static lc_status list_argument_checks(void *userdata, lc_upstream_list *list) {
    const char bad_utf8[] = {'o', 'k', '\xc3', '\0'};
    lc_upstream u = upstream("10.0.0.7:80");
    (void)userdata;
    CHECK_STATUS(lc_upstream_list_set_error(list, NULL), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_upstream_list_set_error(list, bad_utf8), LC_ERR_INVALID_UTF8);
    CHECK_OK(lc_upstream_list_push(list, &u));
    return LC_OK;
}

static lc_status list_push_null(void *userdata, lc_upstream_list *list) {
    lc_upstream u = upstream("10.0.0.8:80");
    (void)userdata;
    CHECK_OK(lc_upstream_list_push(list, &u));
    CHECK_STATUS(lc_upstream_list_push(list, NULL), LC_ERR_NULL_POINTER);
    return LC_OK; /* ignored: a failed push fails the fetch */
}

static lc_status fails_without_message(void *userdata, lc_upstream_list *list) {
    (void)userdata;
    (void)list;
    return LC_ERR_NOT_FOUND;
}

static void test_callback_source_results(void) {
    lc_source *source = NULL;
    lc_pool *pool = NULL;
    lc_refresh_report report;
    struct dynamic d;
    memset(&d, 0, sizeof d);

    CHECK_OK(lc_source_callback_new(list_argument_checks, NULL, NULL, &source));
    CHECK_OK(lc_pool_new(NULL, source, &pool));
    CHECK_OK(lc_pool_refresh(pool, &report));
    CHECK(report.upstreams == 1);
    lc_pool_free(pool);

    /* A failed push fails the fetch even when the callback then returns LC_OK. */
    CHECK_OK(lc_source_callback_new(list_push_null, NULL, NULL, &source));
    errors_logged = 0;
    warnings_logged = 0;
    CHECK_OK(lc_pool_new(NULL, source, &pool)); /* the first refresh fails: logged, pool empty */
    CHECK(errors_logged == 1 && warnings_logged == 0); /* once, not twice */
    CHECK(strstr(last_error, "invalid upstream after 1 valid ones") != NULL);
    CHECK_STATUS(lc_pool_refresh(pool, NULL), LC_ERR_SOURCE_FAILED);
    CHECK_STATUS(lc_pool_host_stats(pool, "10.0.0.8:80", &(lc_host_stats){0}), LC_ERR_NOT_FOUND);
    lc_pool_free(pool);

    /* A failure without a message is described by its status. */
    CHECK_OK(lc_source_callback_new(fails_without_message, NULL, NULL, &source));
    CHECK_OK(lc_pool_new(NULL, source, &pool));
    CHECK_STATUS(lc_pool_refresh(pool, NULL), LC_ERR_SOURCE_FAILED);
    CHECK(strstr(last_error, "callback returned status 7 (no host with that address)") != NULL);
    lc_pool_free(pool);

    /* A failing refresh keeps the current list; an invalid push fails it the same way. */
    d.addresses[0] = "10.0.0.1:80";
    d.addresses[1] = "10.0.0.2:80";
    d.n = 2;
    CHECK_OK(lc_pool_new(NULL, dynamic_source(&d), &pool));
    CHECK(d.calls == 1);
    d.fail = 1;
    errors_logged = 0;
    CHECK_STATUS(lc_pool_refresh(pool, &report), LC_ERR_SOURCE_FAILED);
    CHECK(errors_logged == 1);
    CHECK(strstr(last_error, "registry down") != NULL);
    d.fail = 0;
    d.push_invalid = 1;
    CHECK_STATUS(lc_pool_refresh(pool, &report), LC_ERR_SOURCE_FAILED);
    CHECK(stats_of(pool, "10.0.0.1:80").listed && stats_of(pool, "10.0.0.2:80").listed);
    d.push_invalid = 0;
    CHECK_OK(lc_pool_refresh(pool, &report));
    CHECK(report.upstreams == 2 && report.generation == 2);
    CHECK(d.freed == 0);
    lc_pool_free(pool);
    CHECK(d.freed == 1);
}

static const char *stats_order[8];
static size_t stats_count;

static void collect_stats(void *userdata, const char *address, const lc_host_stats *stats) {
    CHECK(userdata == &stats_count);
    CHECK(stats != NULL && stats->listed);
    CHECK(stats_count < 8);
    /* Addresses are valid only during the call: keep a static copy of known ones. */
    if (strcmp(address, "10.0.0.1:80") == 0) stats_order[stats_count++] = "10.0.0.1:80";
    else if (strcmp(address, "10.0.0.2:80") == 0) stats_order[stats_count++] = "10.0.0.2:80";
    else if (strcmp(address, "10.0.0.3:80") == 0) stats_order[stats_count++] = "10.0.0.3:80";
    else stats_order[stats_count++] = "?";
}

static void test_multi_and_grace(void) {
    const char *first[] = {"10.0.0.1:80", "10.0.0.2:80"};
    const char *last[] = {"10.0.0.3:80"};
    lc_source *multi = (lc_source *)&multi, *other = NULL, *grace = (lc_source *)&grace;
    lc_pool *pool = NULL;
    lc_refresh_report report;
    struct dynamic failing, flaky;
    memset(&failing, 0, sizeof failing);
    memset(&flaky, 0, sizeof flaky);
    failing.fail = 1;

    CHECK_STATUS(lc_source_multi_new(NULL), LC_ERR_NULL_POINTER);
    CHECK_OK(lc_source_multi_new(&multi));

    /* NULL on either side; the source is consumed even then (valgrind sees no leak). */
    CHECK_STATUS(lc_source_multi_add(NULL, static_source(first, 2)), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_source_multi_add(multi, NULL), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_source_multi_add(multi, multi), LC_ERR_INVALID_ARGUMENT); /* nothing consumed */
    other = static_source(first, 2);
    CHECK_STATUS(lc_source_multi_add(other, static_source(last, 1)), LC_ERR_INVALID_ARGUMENT);
    lc_source_free(other);

    /* multi: static, failing callback, static; results appended in order. */
    CHECK_OK(lc_source_multi_add(multi, static_source(first, 2)));
    CHECK_OK(lc_source_multi_add(multi, dynamic_source(&failing)));
    CHECK_OK(lc_source_multi_add(multi, static_source(last, 1)));
    errors_logged = 0;
    CHECK_OK(lc_pool_new(NULL, multi, &pool));
    check_one_error("multi: source 1 failed: registry down; skipping");
    CHECK_OK(lc_pool_refresh(pool, &report));
    CHECK(report.upstreams == 3 && report.hosts == 3 && report.generation == 2);
    CHECK(failing.calls == 2);

    CHECK_STATUS(lc_pool_stats(NULL, collect_stats, &stats_count), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_pool_stats(pool, NULL, &stats_count), LC_ERR_NULL_POINTER);
    stats_count = 0;
    CHECK_OK(lc_pool_stats(pool, collect_stats, &stats_count));
    CHECK(stats_count == 3);
    CHECK(strcmp(stats_order[0], "10.0.0.1:80") == 0);
    CHECK(strcmp(stats_order[1], "10.0.0.2:80") == 0);
    CHECK(strcmp(stats_order[2], "10.0.0.3:80") == 0);
    lc_pool_free(pool);
    CHECK(failing.freed == 1);

    /* grace: a failing source's last good list is served within the period. */
    CHECK_STATUS(lc_source_grace_new(NULL, 1000, &grace), LC_ERR_NULL_POINTER);
    CHECK(grace == NULL);
    CHECK_STATUS(lc_source_grace_new(dynamic_source(&flaky), 1000, NULL), LC_ERR_NULL_POINTER);
    CHECK(flaky.freed == 1); /* consumed even on error */
    flaky.freed = 0;
    flaky.addresses[0] = "10.0.0.5:80";
    flaky.n = 1;
    CHECK_OK(lc_source_grace_new(dynamic_source(&flaky), 3600 * 1000, &grace));
    CHECK_OK(lc_pool_new(NULL, grace, &pool));
    flaky.fail = 1;
    warnings_logged = 0;
    CHECK_OK(lc_pool_refresh(pool, &report));
    CHECK(report.upstreams == 1 && warnings_logged == 1);
    CHECK(stats_of(pool, "10.0.0.5:80").listed);
    lc_pool_free(pool);
    CHECK(flaky.freed == 1);
}

/* ---- pool ---------------------------------------------------------------------------- */

static void test_pool_config(void) {
    const char *two[] = {"10.0.0.1:80", "10.0.0.2:80"};
    lc_pool_config config;
    lc_pool *pool = (lc_pool *)&pool;

    CHECK_STATUS(lc_pool_config_default(NULL), LC_ERR_NULL_POINTER);
    CHECK_OK(lc_pool_config_default(&config));
    CHECK(config.policy == LC_POLICY_LEAST_CONN);
    CHECK(config.max_fails == 1 && config.fail_duration_ms == 10000);

    CHECK_STATUS(lc_pool_new(&config, NULL, &pool), LC_ERR_NULL_POINTER);
    CHECK(pool == NULL);
    CHECK_STATUS(lc_pool_new(&config, static_source(two, 2), NULL), LC_ERR_NULL_POINTER);

#define REJECTS(setup, want)                                                 \
    do {                                                                     \
        CHECK_OK(lc_pool_config_default(&config));                           \
        setup;                                                               \
        pool = (lc_pool *)&pool;                                             \
        CHECK_STATUS(lc_pool_new(&config, static_source(two, 2), &pool), want); \
        CHECK(pool == NULL);                                                 \
    } while (0)

    REJECTS(config.policy = 3, LC_ERR_INVALID_ARGUMENT);
    REJECTS(config.policy = UINT32_MAX, LC_ERR_INVALID_ARGUMENT);
    REJECTS(config.max_fails = LC_MAX_FAILS_LIMIT + 1, LC_ERR_INVALID_LIMIT);
    REJECTS(config.max_fails = UINT32_MAX, LC_ERR_INVALID_LIMIT);
    REJECTS(config.fail_duration_ms = 0, LC_ERR_INVALID_LIMIT);
#undef REJECTS

    /* Passive health off needs no window; a huge window is accepted. */
    CHECK_OK(lc_pool_config_default(&config));
    config.max_fails = 0;
    config.fail_duration_ms = 0;
    CHECK_OK(lc_pool_new(&config, static_source(two, 2), &pool));
    lc_pool_free(pool);
    config.max_fails = LC_MAX_FAILS_LIMIT;
    config.fail_duration_ms = UINT64_MAX;
    CHECK_OK(lc_pool_new(&config, static_source(two, 2), &pool));
    lc_pool_free(pool);
    lc_pool_free(NULL);

    CHECK_STATUS(lc_pool_refresh(NULL, NULL), LC_ERR_NULL_POINTER);
}

static void test_select_and_release(void) {
    lc_upstream list[2];
    lc_source *source = NULL;
    lc_pool *pool = NULL;
    lc_pick a, b, c, zeroed;
    uint64_t both[2];
    lc_host_stats before, after;
    const char *a_address, *b_address;

    list[0] = upstream("10.0.0.1:80");
    list[0].tag = (void *)(uintptr_t)11;
    list[1] = upstream("10.0.0.2:80");
    list[1].tag = (void *)(uintptr_t)22;
    CHECK_OK(lc_source_static_new(list, 2, &source));
    CHECK_OK(lc_pool_new(NULL, source, &pool));
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    memset(&zeroed, 0, sizeof zeroed);

    CHECK_STATUS(lc_pool_select(NULL, NO_EXCLUDE, &a), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_pool_select(pool, NO_EXCLUDE, NULL), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_pool_select(pool, NULL, 1, &a), LC_ERR_NULL_POINTER);

    /* least_conn: the second pick goes to the other host. */
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &a));
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &b));
    CHECK(strcmp(a.address, b.address) != 0);
    CHECK(a.host_id != 0 && b.host_id != 0 && a.host_id != b.host_id);
    CHECK(a.reservation != NULL);
    CHECK((uintptr_t)a.tag == (a.index == 0 ? 11u : 22u));
    CHECK(strcmp(a.address, a.index == 0 ? "10.0.0.1:80" : "10.0.0.2:80") == 0);
    CHECK(stats_of(pool, a.address).in_flight == 1);

    /* A pick still holding a reservation is refused, so that it is never lost. */
    CHECK_STATUS(lc_pool_select(pool, NO_EXCLUDE, &a), LC_ERR_INVALID_ARGUMENT);
    CHECK(stats_of(pool, a.address).in_flight == 1);

    /* Exclusions: both hosts excluded leaves none; one excluded gives the other. */
    both[0] = a.host_id;
    both[1] = b.host_id;
    CHECK_STATUS(lc_pool_select(pool, both, 2, &c), LC_ERR_NO_UPSTREAM);
    CHECK(c.reservation == NULL);
    CHECK_OK(lc_pool_select(pool, both, 1, &c));
    CHECK(c.host_id == b.host_id);
    CHECK_OK(lc_pick_release(&c, LC_OUTCOME_SUCCESS));

    /* Release: NULL, unknown outcome (nothing released), zeroed pick, double release. */
    CHECK_STATUS(lc_pick_release(NULL, LC_OUTCOME_SUCCESS), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_pick_release(&a, 2), LC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(lc_pick_release(&a, UINT32_MAX), LC_ERR_INVALID_ARGUMENT);
    CHECK(stats_of(pool, a.address).in_flight == 1);
    CHECK_STATUS(lc_pick_release(&zeroed, LC_OUTCOME_SUCCESS), LC_ERR_ALREADY_RELEASED);

    a_address = a.index == 0 ? "10.0.0.1:80" : "10.0.0.2:80";
    b_address = b.index == 0 ? "10.0.0.1:80" : "10.0.0.2:80";
    before = stats_of(pool, a_address);
    CHECK(before.in_flight == 1 && before.picks == 1);
    CHECK_OK(lc_pick_release(&a, LC_OUTCOME_SUCCESS));
    CHECK(a.reservation == NULL);
    after = stats_of(pool, a_address);
    CHECK(after.in_flight == 0 && after.picks == 1);
    CHECK_STATUS(lc_pick_release(&a, LC_OUTCOME_SUCCESS), LC_ERR_ALREADY_RELEASED);
    CHECK_STATUS(lc_pick_release(&a, LC_OUTCOME_FAILURE), LC_ERR_ALREADY_RELEASED);
    after = stats_of(pool, a_address);
    CHECK(after.in_flight == 0 && after.picks == 1 && after.recent_failures == 0 && !after.unhealthy);

    /* A released pick can be selected into again. */
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &a));
    CHECK_OK(lc_pick_release(&a, LC_OUTCOME_SUCCESS));

    /* A failure (max_fails 1 by default) makes the host unavailable. */
    CHECK_OK(lc_pick_release(&b, LC_OUTCOME_FAILURE));
    after = stats_of(pool, b_address);
    CHECK(after.unhealthy && after.recent_failures == 1 && after.in_flight == 0);
    {
        int i;
        for (i = 0; i < 5; i++) {
            CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &c));
            CHECK(c.host_id != b.host_id);
            CHECK_OK(lc_pick_release(&c, LC_OUTCOME_SUCCESS));
        }
    }
    lc_pool_free(pool);
}

/* Issue 10, point 2: copies of a pick. Every case ends with the host's counters exact. */
static void test_copied_picks(void) {
    struct dynamic d;
    lc_upstream one = upstream("10.0.0.1:80");
    lc_source *source = NULL;
    lc_pool *pool = NULL;
    lc_pick a, b, copy, saved;
    lc_host_stats s;
    lc_refresh_report report;
    unsigned errors_before;

    /* The reproduction: select a and b on one host, copy a, release a, the copy, then b. */
    CHECK_OK(lc_pool_new(NULL, static_source(&one.address, 1), &pool));
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &a));
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &b));
    copy = a;
    CHECK_OK(lc_pick_release(&a, LC_OUTCOME_SUCCESS));
    CHECK_STATUS(lc_pick_release(&copy, LC_OUTCOME_SUCCESS), LC_ERR_PICK_MOVED);
    CHECK_STATUS(lc_pick_release(&copy, LC_OUTCOME_FAILURE), LC_ERR_PICK_MOVED);
    s = stats_of(pool, "10.0.0.1:80");
    CHECK(s.in_flight == 1 && s.picks == 2 && s.recent_failures == 0);
    CHECK_OK(lc_pick_release(&b, LC_OUTCOME_SUCCESS));
    s = stats_of(pool, "10.0.0.1:80");
    CHECK(s.in_flight == 0 && s.picks == 2 && !s.down && !s.full && !s.unhealthy);
    /* A copy of a live pick is refused too, and the original still releases. */
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &a));
    copy = a;
    CHECK_STATUS(lc_pick_release(&copy, LC_OUTCOME_SUCCESS), LC_ERR_PICK_MOVED);
    CHECK(stats_of(pool, "10.0.0.1:80").in_flight == 1);
    CHECK_OK(lc_pick_release(&a, LC_OUTCOME_SUCCESS));
    CHECK(stats_of(pool, "10.0.0.1:80").in_flight == 0);

    /* A copy memcpy'd back after the release cannot be told from the original: with nothing
     * in flight on the host, its second release is refused, logged, and changes nothing. */
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &a));
    memcpy(&saved, &a, sizeof a);
    CHECK_OK(lc_pick_release(&a, LC_OUTCOME_SUCCESS));
    memcpy(&a, &saved, sizeof a);
    errors_before = errors_logged;
    CHECK_STATUS(lc_pick_release(&a, LC_OUTCOME_FAILURE), LC_ERR_NOT_IN_FLIGHT);
    CHECK(errors_logged == errors_before + 1);
    CHECK(strstr(last_error, "release of 10.0.0.1:80 refused: it had nothing in flight") == last_error);
    CHECK(a.reservation == NULL); /* consumed */
    CHECK_STATUS(lc_pick_release(&a, LC_OUTCOME_SUCCESS), LC_ERR_ALREADY_RELEASED);
    s = stats_of(pool, "10.0.0.1:80");
    CHECK(s.in_flight == 0 && s.picks == 4 && s.recent_failures == 0 && !s.unhealthy);
    /* ... and with another request in flight it ends that one, whose own release is then
     * the one refused (documented): the counters still end exact. */
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &a));
    memcpy(&saved, &a, sizeof a);
    CHECK_OK(lc_pick_release(&a, LC_OUTCOME_SUCCESS));
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &b));
    memcpy(&a, &saved, sizeof a);
    CHECK_OK(lc_pick_release(&a, LC_OUTCOME_SUCCESS));
    CHECK(stats_of(pool, "10.0.0.1:80").in_flight == 0);
    CHECK_STATUS(lc_pick_release(&b, LC_OUTCOME_SUCCESS), LC_ERR_NOT_IN_FLIGHT);
    s = stats_of(pool, "10.0.0.1:80");
    CHECK(s.in_flight == 0 && s.picks == 6 && !s.down && !s.full);
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &a));
    CHECK_OK(lc_pick_release(&a, LC_OUTCOME_SUCCESS));
    lc_pool_free(pool);

    /* Late duplicate release after reuse (documented rule: do not select into a pick until
     * every release of it has returned): the late call ends the new reservation, so a
     * max_requests = 1 host admits a second request. */
    one.max_requests = 1;
    CHECK_OK(lc_source_static_new(&one, 1, &source));
    CHECK_OK(lc_pool_new(NULL, source, &pool));
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &a));
    CHECK_OK(lc_pick_release(&a, LC_OUTCOME_SUCCESS));
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &a));                 /* reuse */
    CHECK_OK(lc_pick_release(&a, LC_OUTCOME_SUCCESS));                 /* the late duplicate */
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &b));                   /* a second request */
    CHECK_STATUS(lc_pick_release(&a, LC_OUTCOME_SUCCESS), LC_ERR_ALREADY_RELEASED);
    s = stats_of(pool, "10.0.0.1:80");
    CHECK(s.in_flight == 1 && s.picks == 3 && s.full);
    CHECK_OK(lc_pick_release(&b, LC_OUTCOME_SUCCESS));
    lc_pool_free(pool);

    /* The reproduction with a refresh that removes the host in between (used to free it
     * while b's reservation was outstanding): b's release must land on a live host. */
    memset(&d, 0, sizeof d);
    d.addresses[0] = "10.0.0.1:80";
    d.n = 1;
    CHECK_OK(lc_pool_new(NULL, dynamic_source(&d), &pool));
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &a));
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &b));
    copy = a;
    CHECK_OK(lc_pick_release(&a, LC_OUTCOME_SUCCESS));
    CHECK_STATUS(lc_pick_release(&copy, LC_OUTCOME_SUCCESS), LC_ERR_PICK_MOVED);
    d.addresses[0] = "10.0.0.2:80";
    CHECK_OK(lc_pool_refresh(pool, &report));
    CHECK(report.reclaimed == 0);
    s = stats_of(pool, "10.0.0.1:80");
    CHECK(!s.listed && s.in_flight == 1 && s.picks == 2);
    CHECK(strcmp(b.address, "10.0.0.1:80") == 0);
    CHECK_OK(lc_pick_release(&b, LC_OUTCOME_SUCCESS));
    CHECK_OK(lc_pool_refresh(pool, &report));
    CHECK(report.reclaimed == 1);
    lc_pool_free(pool);
}

static void test_set_down(void) {
    const char *two[] = {"10.0.0.1:80", "10.0.0.2:80"};
    const char bad_utf8[] = {'\xff', ':', '8', '0', '\0'};
    lc_pool *pool = NULL;
    lc_pick p;
    int i;
    memset(&p, 0, sizeof p);
    CHECK_OK(lc_pool_new(NULL, static_source(two, 2), &pool));

    CHECK_STATUS(lc_pool_set_down(NULL, "10.0.0.1:80", true), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_pool_set_down(pool, NULL, true), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_pool_set_down(pool, bad_utf8, true), LC_ERR_INVALID_UTF8);
    CHECK_STATUS(lc_pool_set_down(pool, "10.0.0.3:80", true), LC_ERR_NOT_FOUND);
    CHECK_STATUS(lc_pool_set_down(pool, "", true), LC_ERR_NOT_FOUND);

    CHECK_OK(lc_pool_set_down(pool, "10.0.0.1:80", true));
    CHECK(stats_of(pool, "10.0.0.1:80").down);
    for (i = 0; i < 10; i++) {
        CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &p));
        CHECK(strcmp(p.address, "10.0.0.2:80") == 0);
        CHECK_OK(lc_pick_release(&p, LC_OUTCOME_SUCCESS));
    }
    CHECK_OK(lc_pool_set_down(pool, "10.0.0.2:80", true));
    CHECK_STATUS(lc_pool_select(pool, NO_EXCLUDE, &p), LC_ERR_NO_UPSTREAM);
    CHECK_OK(lc_pool_set_down(pool, "10.0.0.1:80", false));
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &p));
    CHECK(strcmp(p.address, "10.0.0.1:80") == 0);
    CHECK_OK(lc_pick_release(&p, LC_OUTCOME_SUCCESS));
    lc_pool_free(pool);
}

static void test_stats_and_removal(void) {
    struct dynamic d;
    lc_pool *pool = NULL;
    lc_pick p;
    lc_host_stats s;
    lc_refresh_report report;
    const char bad_utf8[] = {'\xff', '\0'};
    memset(&d, 0, sizeof d);
    memset(&p, 0, sizeof p);
    d.addresses[0] = "10.0.0.1:80";
    d.n = 1;
    CHECK_OK(lc_pool_new(NULL, dynamic_source(&d), &pool));

    CHECK_STATUS(lc_pool_host_stats(NULL, "10.0.0.1:80", &s), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_pool_host_stats(pool, NULL, &s), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_pool_host_stats(pool, "10.0.0.1:80", NULL), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_pool_host_stats(pool, bad_utf8, &s), LC_ERR_INVALID_UTF8);
    CHECK_STATUS(lc_pool_host_stats(pool, "10.0.0.9:80", &s), LC_ERR_NOT_FOUND);

    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &p));
    CHECK((uintptr_t)p.tag == 100);
    s = stats_of(pool, "10.0.0.1:80");
    CHECK(s.host_id == p.host_id && s.in_flight == 1 && s.picks == 1 && s.listed && !s.full);
    CHECK(!s.down && !s.unhealthy && s.max_requests == 0 && s.recent_failures == 0);

    /* The host leaves the list with a request in flight: its state drains, then goes. */
    d.addresses[0] = "10.0.0.2:80";
    CHECK_OK(lc_pool_refresh(pool, &report));
    CHECK(report.upstreams == 1 && report.hosts == 2 && report.reclaimed == 0);
    s = stats_of(pool, "10.0.0.1:80");
    CHECK(!s.listed && s.in_flight == 1);
    CHECK(strcmp(p.address, "10.0.0.1:80") == 0); /* still valid: not released */
    CHECK_OK(lc_pick_release(&p, LC_OUTCOME_SUCCESS));
    CHECK_OK(lc_pool_refresh(pool, &report));
    CHECK(report.hosts == 1 && report.reclaimed == 1);
    CHECK_STATUS(lc_pool_host_stats(pool, "10.0.0.1:80", &s), LC_ERR_NOT_FOUND);
    lc_pool_free(pool);
}

static void test_max_requests_is_exact(void) {
    lc_upstream u = upstream("10.0.0.1:80");
    lc_source *source = NULL;
    lc_pool *pool = NULL;
    lc_pick p[3];
    memset(p, 0, sizeof p);
    u.max_requests = 2;
    CHECK_OK(lc_source_static_new(&u, 1, &source));
    CHECK_OK(lc_pool_new(NULL, source, &pool));
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &p[0]));
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &p[1]));
    CHECK(stats_of(pool, "10.0.0.1:80").full);
    CHECK(stats_of(pool, "10.0.0.1:80").max_requests == 2);
    CHECK_STATUS(lc_pool_select(pool, NO_EXCLUDE, &p[2]), LC_ERR_NO_UPSTREAM);
    CHECK_OK(lc_pick_release(&p[0], LC_OUTCOME_SUCCESS));
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &p[2]));
    CHECK_OK(lc_pick_release(&p[1], LC_OUTCOME_SUCCESS));
    CHECK_OK(lc_pick_release(&p[2], LC_OUTCOME_SUCCESS));
    lc_pool_free(pool);
}

static void test_policies(void) {
    const char *three[] = {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"};
    lc_pool_config config;
    lc_pool *pool = NULL;
    lc_pick p[3];
    int i;
    memset(p, 0, sizeof p);

    /* first: list order, moving on only when a host is unavailable. */
    CHECK_OK(lc_pool_config_default(&config));
    config.policy = LC_POLICY_FIRST;
    CHECK_OK(lc_pool_new(&config, static_source(three, 3), &pool));
    for (i = 0; i < 3; i++) {
        CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &p[i]));
        CHECK(strcmp(p[i].address, "10.0.0.1:80") == 0);
    }
    for (i = 0; i < 3; i++) CHECK_OK(lc_pick_release(&p[i], LC_OUTCOME_SUCCESS));
    lc_pool_free(pool);

    /* p2c: of two distinct hosts the less loaded wins, so the first two picks differ and
     * no host gets a third request while another is idle. */
    config.policy = LC_POLICY_P2C;
    CHECK_OK(lc_pool_new(&config, static_source(three, 3), &pool));
    for (i = 0; i < 3; i++) CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &p[i]));
    CHECK(p[0].host_id != p[1].host_id);
    for (i = 0; i < 3; i++) CHECK(stats_of(pool, three[i]).in_flight <= 2);
    for (i = 0; i < 3; i++) CHECK_OK(lc_pick_release(&p[i], LC_OUTCOME_SUCCESS));
    lc_pool_free(pool);
}

static void test_pool_freed_with_picks_outstanding(void) {
    const char *two[] = {"10.0.0.1:80", "10.0.0.2:80"};
    lc_pool *pool = NULL;
    lc_picker *picker = NULL;
    lc_pick p, q;
    memset(&p, 0, sizeof p);
    memset(&q, 0, sizeof q);
    CHECK_OK(lc_pool_new(NULL, static_source(two, 2), &pool));
    CHECK_OK(lc_picker_new(pool, 7, &picker));
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &p));
    CHECK_OK(lc_picker_select(picker, NO_EXCLUDE, &q));
    lc_pool_free(pool);
    lc_picker_free(picker);
    /* Both hosts' states are kept alive by the reservations alone now. */
    CHECK(strncmp(p.address, "10.0.0.", 7) == 0 && strncmp(q.address, "10.0.0.", 7) == 0);
    CHECK_OK(lc_pick_release(&p, LC_OUTCOME_FAILURE));
    CHECK_OK(lc_pick_release(&q, LC_OUTCOME_SUCCESS));
    CHECK_STATUS(lc_pick_release(&p, LC_OUTCOME_SUCCESS), LC_ERR_ALREADY_RELEASED);
}

static void test_picker(void) {
    const char *two[] = {"10.0.0.1:80", "10.0.0.2:80"};
    lc_pool *pool = NULL;
    lc_picker *picker = (lc_picker *)&picker, *random = NULL;
    lc_pick a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    CHECK_OK(lc_pool_new(NULL, static_source(two, 2), &pool));

    CHECK_STATUS(lc_picker_new(NULL, 1, &picker), LC_ERR_NULL_POINTER);
    CHECK(picker == NULL); /* *out is NULL on every error, a NULL pool included */
    CHECK_STATUS(lc_picker_new(pool, 1, NULL), LC_ERR_NULL_POINTER);
    CHECK_OK(lc_picker_new(pool, 42, &picker));
    CHECK_OK(lc_picker_new(pool, 0, &random));

    CHECK_STATUS(lc_picker_select(NULL, NO_EXCLUDE, &a), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_picker_select(picker, NO_EXCLUDE, NULL), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_picker_select(picker, NULL, 3, &a), LC_ERR_NULL_POINTER);
    CHECK_OK(lc_picker_select(picker, NO_EXCLUDE, &a));
    CHECK_STATUS(lc_picker_select(picker, NO_EXCLUDE, &a), LC_ERR_INVALID_ARGUMENT);
    CHECK_OK(lc_picker_select(random, NO_EXCLUDE, &b));
    CHECK(a.host_id != b.host_id); /* pickers and the pool share the counters */
    CHECK_STATUS(lc_picker_select(picker, &a.host_id, 1, &c), LC_OK);
    CHECK(c.host_id == b.host_id);
    CHECK_OK(lc_pick_release(&c, LC_OUTCOME_SUCCESS));

    /* A picker sees refreshes: down, then excluded. */
    CHECK_OK(lc_pool_set_down(pool, b.address, true));
    CHECK_STATUS(lc_picker_select(picker, &a.host_id, 1, &c), LC_ERR_NO_UPSTREAM);

    CHECK_OK(lc_pick_release(&a, LC_OUTCOME_SUCCESS));
    CHECK_OK(lc_pick_release(&b, LC_OUTCOME_SUCCESS));
    lc_picker_free(picker);
    lc_picker_free(random);
    lc_picker_free(NULL);
    lc_pool_free(pool);
}

/* ---- refresher ----------------------------------------------------------------------- */

struct counted {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    unsigned calls;
    unsigned freed;
};

static lc_status counted_fetch(void *userdata, lc_upstream_list *list) {
    struct counted *c = (struct counted *)userdata;
    lc_upstream u = upstream("10.0.0.1:80");
    CHECK_OK(lc_upstream_list_push(list, &u));
    pthread_mutex_lock(&c->lock);
    c->calls++;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
    return LC_OK;
}

static void counted_free(void *userdata) {
    struct counted *c = (struct counted *)userdata;
    pthread_mutex_lock(&c->lock);
    c->freed++;
    pthread_mutex_unlock(&c->lock);
}

static void wait_for_calls(struct counted *c, unsigned calls) {
    pthread_mutex_lock(&c->lock);
    while (c->calls < calls) pthread_cond_wait(&c->changed, &c->lock);
    pthread_mutex_unlock(&c->lock);
}

static void test_refresher(void) {
    struct counted c;
    lc_source *source = NULL;
    lc_pool *pool = NULL;
    lc_refresher *refresher = (lc_refresher *)&refresher;
    lc_refresh_report report;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.changed, NULL);
    CHECK_OK(lc_source_callback_new(counted_fetch, &c, counted_free, &source));
    CHECK_OK(lc_pool_new(NULL, source, &pool));
    CHECK(c.calls == 1);

    refresher = (lc_refresher *)&refresher;
    CHECK_STATUS(lc_refresher_start(NULL, 1, &refresher), LC_ERR_NULL_POINTER);
    CHECK(refresher == NULL); /* *out is NULL on every error, a NULL pool included */
    CHECK_STATUS(lc_refresher_start(pool, 1, NULL), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_refresher_start(pool, 0, &refresher), LC_ERR_INVALID_LIMIT);
    CHECK(refresher == NULL);
    lc_refresher_stop(NULL);

    CHECK_OK(lc_refresher_start(pool, 1, &refresher));
    wait_for_calls(&c, 4);
    /* The pool may go first: the refresher keeps the source alive until it stops. */
    lc_pool_free(pool);
    wait_for_calls(&c, 6);
    CHECK(c.freed == 0);
    lc_refresher_stop(refresher);
    CHECK(c.freed == 1);

    /* A long interval: one refresh at start, then the stop wakes the thread at once. */
    c.calls = 0;
    c.freed = 0;
    CHECK_OK(lc_source_callback_new(counted_fetch, &c, counted_free, &source));
    CHECK_OK(lc_pool_new(NULL, source, &pool));
    CHECK_OK(lc_refresher_start(pool, UINT64_MAX, &refresher));
    wait_for_calls(&c, 2);
    lc_refresher_stop(refresher);
    CHECK_OK(lc_pool_refresh(pool, &report));
    CHECK(report.generation == 3);
    lc_pool_free(pool);
    CHECK(c.freed == 1);
    pthread_cond_destroy(&c.changed);
    pthread_mutex_destroy(&c.lock);
}

/* ---- log --------------------------------------------------------------------------- */

/* Issue 10, point 5: a log callback frees the pool whose refresh is logging. */
static lc_pool *pool_to_free;
static unsigned frees_from_log;

static void free_pool_on_error(void *userdata, lc_log_level level, const char *message) {
    CHECK(userdata == &pool_to_free && message != NULL);
    if (level == LC_LOG_ERROR && pool_to_free != NULL) {
        lc_pool_free(pool_to_free);
        pool_to_free = NULL;
        frees_from_log++;
    }
}

static void test_log_callback_may_free_the_refreshing_pool(void) {
    const char *one[] = {"10.0.0.1:80"};
    struct dynamic failing;
    lc_source *multi = NULL;
    lc_pool *pool = NULL;
    lc_refresh_report report;
    lc_pick p;
    memset(&failing, 0, sizeof failing);
    memset(&p, 0, sizeof p);
    memset(&report, 0, sizeof report);
    CHECK_OK(lc_source_multi_new(&multi));
    CHECK_OK(lc_source_multi_add(multi, dynamic_source(&failing)));
    CHECK_OK(lc_source_multi_add(multi, static_source(one, 1)));
    CHECK_OK(lc_pool_new(NULL, multi, &pool));
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &p));
    failing.fail = 1;
    pool_to_free = pool;
    CHECK_OK(lc_log_set_callback(free_pool_on_error, &pool_to_free, LC_LOG_ERROR));
    /* The multi logs its failing member mid-refresh; the callback frees the pool. */
    CHECK_OK(lc_pool_refresh(pool, &report));
    CHECK(frees_from_log == 1 && pool_to_free == NULL);
    CHECK(report.upstreams == 1 && report.generation == 2);
    CHECK(failing.freed == 1); /* the sources went with the pool, once the refresh returned */
    CHECK_OK(lc_log_set_callback(capture_log, &errors_logged, LC_LOG_DEBUG));
    CHECK(strcmp(p.address, "10.0.0.1:80") == 0);
    CHECK_OK(lc_pick_release(&p, LC_OUTCOME_SUCCESS));
}

/* A callback source that frees its own pool from inside the refresh of that pool. */
struct self_freeing {
    lc_pool *pool; /* freed (and set to NULL) by the next fetch */
    unsigned calls;
    unsigned freed;
    unsigned freed_during_fetch;
};

static lc_status self_freeing_fetch(void *userdata, lc_upstream_list *list) {
    struct self_freeing *s = (struct self_freeing *)userdata;
    lc_upstream u = upstream("10.0.0.1:80");
    s->calls++;
    if (s->pool != NULL) {
        lc_pool_free(s->pool);
        s->pool = NULL;
        /* The refresh still holds the pool, so this source and its userdata live on. */
        s->freed_during_fetch = s->freed;
    }
    CHECK_OK(lc_upstream_list_push(list, &u));
    return LC_OK;
}

static void self_freeing_free(void *userdata) {
    ((struct self_freeing *)userdata)->freed++;
}

static void test_callback_source_may_free_its_refreshing_pool(void) {
    struct self_freeing s;
    lc_source *source = NULL;
    lc_pool *pool = NULL;
    lc_refresh_report report;
    lc_pick p;
    memset(&s, 0, sizeof s);
    memset(&p, 0, sizeof p);
    memset(&report, 0, sizeof report);
    CHECK_OK(lc_source_callback_new(self_freeing_fetch, &s, self_freeing_free, &source));
    CHECK_OK(lc_pool_new(NULL, source, &pool)); /* the first refresh: s.pool is still NULL */
    CHECK(s.calls == 1);
    CHECK_OK(lc_pool_select(pool, NO_EXCLUDE, &p));
    s.pool = pool;
    /* The second fetch frees the pool mid-refresh; the refresh still publishes its list. */
    CHECK_OK(lc_pool_refresh(pool, &report));
    CHECK(s.calls == 2 && s.pool == NULL);
    CHECK(s.freed_during_fetch == 0);
    CHECK(report.upstreams == 1 && report.hosts == 1 && report.generation == 2);
    CHECK(s.freed == 1); /* the source went with the pool, once the refresh returned */
    CHECK(strcmp(p.address, "10.0.0.1:80") == 0);
    CHECK_OK(lc_pick_release(&p, LC_OUTCOME_SUCCESS));
}

/* A callback source that refreshes a pool (its own, or another) from inside its fetch. */
struct refreshing {
    lc_pool *target; /* refreshed by the next fetch, when not NULL */
    lc_status inner; /* what that refresh returned */
    unsigned calls;
};

static lc_status refreshing_fetch(void *userdata, lc_upstream_list *list) {
    struct refreshing *r = (struct refreshing *)userdata;
    lc_upstream u = upstream("10.0.0.1:80");
    lc_pool *target = r->target;
    r->calls++;
    if (target != NULL) {
        r->target = NULL; /* once: the refresh below may fetch from this source again */
        r->inner = lc_pool_refresh(target, NULL);
    }
    CHECK_OK(lc_upstream_list_push(list, &u));
    return LC_OK;
}

static lc_pool *refreshing_pool(struct refreshing *r) {
    lc_source *source = NULL;
    lc_pool *pool = NULL;
    memset(r, 0, sizeof *r);
    CHECK_OK(lc_source_callback_new(refreshing_fetch, r, NULL, &source));
    CHECK_OK(lc_pool_new(NULL, source, &pool)); /* the first refresh: no target yet */
    CHECK(r->calls == 1);
    return pool;
}

/* A refresh from a source of a refresh of the same pool is refused, not a self-deadlock;
 * another pool, idle, refreshes; two pools whose sources refresh each other do not deadlock. */
static void test_refresh_from_a_source_never_waits(void) {
    struct refreshing a, b;
    lc_pool *pool_a = refreshing_pool(&a);
    lc_pool *pool_b = refreshing_pool(&b);
    lc_refresh_report report;

    a.target = pool_a;
    a.inner = LC_OK;
    CHECK_OK(lc_pool_refresh(pool_a, &report));
    CHECK_STATUS(a.inner, LC_ERR_INVALID_ARGUMENT);
    CHECK(a.calls == 2 && report.generation == 2); /* the outer refresh still published */

    /* a's fetch refreshes b, whose fetch refreshes a, whose refresh is running. */
    a.target = pool_b;
    b.target = pool_a;
    CHECK_OK(lc_pool_refresh(pool_a, &report));
    CHECK_OK(a.inner);
    CHECK_STATUS(b.inner, LC_ERR_INVALID_ARGUMENT);
    CHECK(a.calls == 3 && b.calls == 2 && report.generation == 3);
    lc_pool_free(pool_a);
    lc_pool_free(pool_b);
}

/* A callback source whose fetch, while the gate is closed, waits until it opens. */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int closed;
    int waiting; /* a fetch is waiting at the gate */
};

static lc_status gated_fetch(void *userdata, lc_upstream_list *list) {
    struct gate *g = (struct gate *)userdata;
    lc_upstream u = upstream("10.0.0.2:80");
    pthread_mutex_lock(&g->lock);
    g->waiting = 1;
    pthread_cond_broadcast(&g->changed);
    while (g->closed) {
        pthread_cond_wait(&g->changed, &g->lock);
    }
    g->waiting = 0;
    pthread_mutex_unlock(&g->lock);
    CHECK_OK(lc_upstream_list_push(list, &u));
    return LC_OK;
}

static void *refresh_on_a_thread(void *pool) {
    CHECK_OK(lc_pool_refresh((const lc_pool *)pool, NULL));
    return NULL;
}

/* While b's refresh runs on another thread, a source of a's refresh that refreshes b is
 * refused at once: waiting could deadlock (lc_pool_refresh). */
static void test_refresh_from_a_source_of_a_pool_running_elsewhere_is_refused(void) {
    struct gate g;
    struct refreshing a;
    lc_source *source = NULL;
    lc_pool *pool_a, *pool_b = NULL;
    pthread_t t;

    memset(&g, 0, sizeof g);
    pthread_mutex_init(&g.lock, NULL);
    pthread_cond_init(&g.changed, NULL);
    CHECK_OK(lc_source_callback_new(gated_fetch, &g, NULL, &source));
    CHECK_OK(lc_pool_new(NULL, source, &pool_b)); /* the gate is open */
    pool_a = refreshing_pool(&a);

    g.closed = 1;
    CHECK(pthread_create(&t, NULL, refresh_on_a_thread, pool_b) == 0);
    pthread_mutex_lock(&g.lock);
    while (!g.waiting) {
        pthread_cond_wait(&g.changed, &g.lock);
    }
    pthread_mutex_unlock(&g.lock);

    a.target = pool_b;
    a.inner = LC_OK;
    CHECK_OK(lc_pool_refresh(pool_a, NULL));
    CHECK_STATUS(a.inner, LC_ERR_INVALID_ARGUMENT);
    CHECK(a.calls == 2);

    pthread_mutex_lock(&g.lock);
    g.closed = 0;
    pthread_cond_broadcast(&g.changed);
    pthread_mutex_unlock(&g.lock);
    CHECK(pthread_join(t, NULL) == 0);
    lc_pool_free(pool_a);
    lc_pool_free(pool_b);
    pthread_cond_destroy(&g.changed);
    pthread_mutex_destroy(&g.lock);
}

static void test_log_callback(void) {
    struct dynamic d;
    lc_pool *pool = NULL;
    memset(&d, 0, sizeof d);
    d.fail = 1;
    CHECK_STATUS(lc_log_set_callback(capture_log, &errors_logged, LC_LOG_TRACE + 1), LC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(lc_log_set_callback(capture_log, &errors_logged, UINT32_MAX), LC_ERR_INVALID_ARGUMENT);

    /* Level OFF, or no callback: nothing reaches the callback. */
    CHECK_OK(lc_log_set_callback(capture_log, &errors_logged, LC_LOG_OFF));
    errors_logged = 0;
    CHECK_OK(lc_pool_new(NULL, dynamic_source(&d), &pool));
    CHECK_STATUS(lc_pool_refresh(pool, NULL), LC_ERR_SOURCE_FAILED);
    CHECK_OK(lc_log_set_callback(NULL, NULL, LC_LOG_TRACE));
    CHECK_STATUS(lc_pool_refresh(pool, NULL), LC_ERR_SOURCE_FAILED);
    CHECK(errors_logged == 0);

    /* ERROR level: the failure arrives with the source's message. */
    CHECK_OK(lc_log_set_callback(capture_log, &errors_logged, LC_LOG_ERROR));
    CHECK_STATUS(lc_pool_refresh(pool, NULL), LC_ERR_SOURCE_FAILED);
    CHECK(errors_logged == 1);
    CHECK(strcmp(last_error, "refresh failed, keeping the current list: registry down") == 0);
    lc_pool_free(pool);

    CHECK_OK(lc_log_set_callback(capture_log, &errors_logged, LC_LOG_DEBUG));
}

int main(void) {
    test_version_and_status();
    test_log_callback();
    test_static_source_validation();
    test_callback_source_arguments();
    test_callback_source_results();
    test_multi_and_grace();
    test_pool_config();
    test_select_and_release();
    test_copied_picks();
    test_set_down();
    test_stats_and_removal();
    test_max_requests_is_exact();
    test_policies();
    test_pool_freed_with_picks_outstanding();
    test_picker();
    test_refresher();
    test_log_callback_may_free_the_refreshing_pool();
    test_callback_source_may_free_its_refreshing_pool();
    test_refresh_from_a_source_never_waits();
    test_refresh_from_a_source_of_a_pool_running_elsewhere_is_refused();
    CHECK_OK(lc_log_set_callback(NULL, NULL, LC_LOG_OFF));
    printf("%lu checks passed\n", checks_passed);
    return 0;
}
