/*
 * Pools on a shared zone through the C ABI: lc_pool_new_in_zone()'s refusals (each with its
 * status, the zone's explained and logged, the source consumed every time: ASan and valgrind
 * see a leak otherwise); two pools with one name share in-flight counts exactly and a pool
 * with another name does not; max_requests 1 holds across a parent and a forked child, the
 * steps ordered by pipes; lc_picker_release() and lc_pick_release() both return the counts
 * to 0, for zone and heap picks. Prints "N checks passed" on success (tests/ffi.rs checks
 * it). lc_zone_sweep() returns a SIGKILLed child's picks; lc_zone_stats() shows each
 * process with what it holds before the kill (into an array too small, then big enough) and
 * the sweep's counters after. lc_zone_hosts() shows one host's shared view (in flight, doubt,
 * failures ever, listers) over two processes, before and after one is killed and swept.
 */
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "check.h"

/* A ring of 2 (max_fails 3 is refused); room for two processes' threads and pickers. */
static const lc_zone_capacity CAPS = {8, 64, 2, 4, 16};
static const char ADDRESS[] = "10.0.0.1:80";

static lc_source *source_of(uint32_t max_requests) {
    lc_upstream u = upstream(ADDRESS);
    lc_source *s = NULL;
    u.max_requests = max_requests;
    CHECK_OK(lc_source_static_new(&u, 1, &s));
    return s;
}

static lc_pool *pool_in(const lc_zone *zone, const char *name, uint32_t max_requests) {
    lc_pool *pool = NULL;
    CHECK_OK(lc_pool_new_in_zone(NULL, zone, name, source_of(max_requests), &pool));
    CHECK(pool != NULL);
    return pool;
}

static uint32_t in_flight(const lc_pool *pool) {
    return host_in_flight(pool, ADDRESS);
}

/* Each refusal gets a fresh source: a refusal that did not consume it leaks. */
static void refusals(const lc_zone *zone) {
    lc_pool_config config;
    lc_pool *pool = (lc_pool *)&errors_logged;
    const char not_utf8[] = {'a', (char)0xff, 0};

    CHECK_STATUS(lc_pool_new_in_zone(NULL, NULL, "app", source_of(0), &pool), LC_ERR_NULL_POINTER);
    CHECK(pool == NULL);
    CHECK_STATUS(lc_pool_new_in_zone(NULL, zone, NULL, source_of(0), &pool), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_pool_new_in_zone(NULL, zone, "app", NULL, &pool), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_pool_new_in_zone(NULL, zone, "app", source_of(0), NULL), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_pool_new_in_zone(NULL, zone, not_utf8, source_of(0), &pool), LC_ERR_INVALID_UTF8);
    CHECK(pool == NULL);

    CHECK_OK(lc_pool_config_default(&config));
    config.max_fails = 3;
    errors_logged = 0;
    pool = (lc_pool *)&errors_logged;
    CHECK_STATUS(lc_pool_new_in_zone(&config, zone, "app", source_of(0), &pool), LC_ERR_ZONE_INCOMPATIBLE);
    CHECK(pool == NULL);
    CHECK(errors_logged == 1);
    CHECK(strcmp(last_error, "lc_pool_new_in_zone: max_fails 3 is above the zone's fail_ring 2") == 0);
    /* lc_pool_new's configuration checks, with its statuses, unlogged. */
    config.max_fails = 1;
    config.policy = 99;
    errors_logged = 0;
    CHECK_STATUS(lc_pool_new_in_zone(&config, zone, "app", source_of(0), &pool), LC_ERR_INVALID_ARGUMENT);
    config.policy = LC_POLICY_LEAST_CONN;
    config.fail_duration_ms = 0;
    CHECK_STATUS(lc_pool_new_in_zone(&config, zone, "app", source_of(0), &pool), LC_ERR_INVALID_LIMIT);
    CHECK(pool == NULL && errors_logged == 0);
    /* The ring's own size fits. */
    config.max_fails = 2;
    config.fail_duration_ms = 1000;
    CHECK_OK(lc_pool_new_in_zone(&config, zone, "app", source_of(0), &pool));
    lc_pool_free(pool);
}

/* max_requests 1 across two processes: the child holds the host, the parent is refused until
 * the child releases. The pipes order the steps; nothing sleeps. */
static void max_requests_across_a_fork(const lc_zone *zone) {
    int to_child[2], to_parent[2];
    lc_pick pick;
    lc_pool *pool;
    pid_t pid;

    pid = fork_piped(to_parent, to_child);
    if (pid == 0) {
        lc_picker *picker = NULL;
        lc_zone *own = (lc_zone *)zone;
        pool = pool_in(zone, "app", 1);
        CHECK_OK(lc_picker_new(pool, 1, &picker));
        memset(&pick, 0, sizeof pick);
        CHECK_OK(lc_picker_select(picker, NULL, 0, &pick));
        CHECK(strcmp(pick.address, ADDRESS) == 0 && in_flight(pool) == 1);
        put(to_parent[1], 'h'); /* held */
        get(to_child[0], 'g'); /* the parent was refused */
        CHECK_OK(lc_picker_release(picker, &pick, LC_OUTCOME_SUCCESS));
        CHECK(in_flight(pool) == 0);
        put(to_parent[1], 'r'); /* released */
        get(to_child[0], 'x'); /* the parent is done */
        lc_picker_free(picker);
        lc_pool_free(pool);
        lc_zone_free(own); /* the child's copy of the handle is the child's */
        close(to_child[0]);
        close(to_parent[1]);
        child_passed();
    }
    get(to_parent[0], 'h');
    pool = pool_in(zone, "app", 1);
    CHECK(in_flight(pool) == 1); /* the child's request, seen here */
    memset(&pick, 0, sizeof pick);
    CHECK_STATUS(lc_pool_select(pool, NULL, 0, &pick), LC_ERR_NO_UPSTREAM);
    put(to_child[1], 'g');
    get(to_parent[0], 'r');
    CHECK(in_flight(pool) == 0);
    CHECK_OK(lc_pool_select(pool, NULL, 0, &pick));
    CHECK(in_flight(pool) == 1);
    CHECK_OK(lc_pick_release(&pick, LC_OUTCOME_SUCCESS));
    CHECK(in_flight(pool) == 0);
    put(to_child[1], 'x');
    check_child(pid);
    close(to_child[1]);
    close(to_parent[0]);
    lc_pool_free(pool);
}

/* Process `pid`'s entry among the `n` of `procs` (NULL if absent). */
static const lc_zone_process *process_of(const lc_zone_process *procs, uint32_t n, pid_t pid) {
    uint32_t i;
    for (i = 0; i < n; i++) {
        if (procs[i].pid == (uint32_t)pid) return &procs[i];
    }
    return NULL;
}

/* A child that holds 2 picks is killed with SIGKILL (blocked in read(), outside any pick or
 * release): lc_zone_sweep returns exactly what it held, nothing in doubt. The child reads a
 * pipe the parent never writes: should a check of the parent fail (exit) before the kill, the
 * read ends and so does the child, instead of hanging the harness on the stdout it shares. */
static void killed_child_is_swept(const lc_zone *zone) {
    int to_parent[2], to_child[2];
    lc_zone_sweep_report report;
    lc_zone_statistics stats;
    lc_zone_process procs[3];
    uint64_t sweeps, recovered;
    lc_pick pick;
    lc_pool *pool;
    pid_t pid;
    int status = 0;

    pid = fork_piped(to_parent, to_child);
    if (pid == 0) {
        lc_pick held[2];
        pool = pool_in(zone, "app", 0);
        memset(held, 0, sizeof held);
        CHECK_OK(lc_pool_select(pool, NULL, 0, &held[0]));
        CHECK_OK(lc_pool_select(pool, NULL, 0, &held[1]));
        hold_until_killed(to_parent[1], to_child[0]);
    }
    get(to_parent[0], 'h');
    pool = pool_in(zone, "app", 0);
    memset(&pick, 0, sizeof pick);
    CHECK_OK(lc_pool_select(pool, NULL, 0, &pick));
    CHECK(in_flight(pool) == 3);

    /* lc_zone_stats: each process with what it holds; the caller's array, too small or not. */
    memset(&stats, 0, sizeof stats);
    CHECK_STATUS(lc_zone_stats(NULL, &stats), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_zone_stats(zone, NULL), LC_ERR_NULL_POINTER);
    stats.processes_cap = 1;
    CHECK_STATUS(lc_zone_stats(zone, &stats), LC_ERR_NULL_POINTER);
    stats.processes_cap = 0;
    CHECK_OK(lc_zone_stats(zone, &stats));
    CHECK(stats.hosts == CAPS.hosts && stats.hosts_used == 1 && stats.processes_len == 2);
    CHECK(stats.processes == NULL && stats.processes_cap == 0 && stats.in_doubt == 0);
    memset(procs, 0xff, sizeof procs);
    stats.processes = procs;
    stats.processes_cap = 1;
    CHECK_OK(lc_zone_stats(zone, &stats));
    CHECK(stats.processes_len == 2 && stats.processes == procs && stats.processes_cap == 1);
    CHECK(procs[0].pid == (uint32_t)getpid() || procs[0].pid == (uint32_t)pid);
    CHECK(procs[1].pid == UINT32_MAX); /* beyond the cap: untouched */
    stats.processes_cap = 3;
    CHECK_OK(lc_zone_stats(zone, &stats));
    CHECK(stats.processes_len == 2);
    CHECK(process_of(procs, 2, getpid()) && process_of(procs, 2, getpid())->in_flight == 1);
    CHECK(process_of(procs, 2, pid) && process_of(procs, 2, pid)->in_flight == 2);
    sweeps = stats.sweeps;
    recovered = stats.recovered;

    CHECK(kill(pid, SIGKILL) == 0);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(to_child[1]);

    memset(&report, 0xff, sizeof report);
    CHECK_STATUS(lc_zone_sweep(NULL, &report), LC_ERR_NULL_POINTER);
    CHECK(report.processes == 0 && report.recovered == 0 && report.in_doubt == 0);
    CHECK_OK(lc_zone_sweep(zone, &report));
    CHECK(report.processes == 1 && report.recovered == 2 && report.in_doubt == 0);
    CHECK(in_flight(pool) == 1);
    CHECK_OK(lc_zone_stats(zone, &stats));
    CHECK(stats.processes_len == 1 && procs[0].pid == (uint32_t)getpid() && procs[0].in_flight == 1);
    CHECK(stats.sweeps == sweeps + 1 && stats.recovered == recovered + 2 && stats.in_doubt == 0);
    CHECK(stats.hosts_used == 1);
    CHECK_OK(lc_zone_sweep(zone, NULL)); /* nothing left to sweep */
    CHECK_OK(lc_zone_sweep(zone, &report));
    CHECK(report.processes == 0 && report.recovered == 0 && report.in_doubt == 0);
    CHECK_OK(lc_pick_release(&pick, LC_OUTCOME_SUCCESS));
    CHECK(in_flight(pool) == 0);
    close(to_parent[0]);
    lc_pool_free(pool);
}

/* What lc_zone_hosts() reported of pool "view"'s host, and how often it was called. */
typedef struct {
    lc_zone_host host;
    unsigned seen, others;
} view_t;

static void view_of(void *userdata, const char *pool, const char *address, const lc_zone_host *host) {
    view_t *v = userdata;
    if (strcmp(pool, "view") == 0 && strcmp(address, ADDRESS) == 0) {
        v->host = *host;
        v->seen++;
    } else {
        v->others++;
    }
}

static view_t view(const lc_zone *zone) {
    view_t v;
    memset(&v, 0xff, sizeof v);
    v.seen = v.others = 0;
    CHECK_OK(lc_zone_hosts(zone, view_of, &v));
    CHECK(v.seen == 1);
    return v;
}

/* lc_zone_hosts: the shared view of one host over two processes: in flight over both, the
 * failures either recorded, both listing it; after the child's SIGKILL (outside any pick or
 * release) and a sweep, what it held and its listing are gone and nothing is in doubt. The
 * failures count stays: it never goes back. (A unit in doubt needs a kill inside a pick's
 * few instructions: tests/zone_crash_points.rs and src/zone/stats.rs show it exactly.) */
static void zone_hosts_show_the_shared_view(const lc_zone *zone) {
    int to_parent[2], to_child[2];
    lc_pool_config config;
    lc_pick pick;
    lc_pool *pool = NULL;
    view_t v;
    pid_t pid;
    int status = 0;

    CHECK_STATUS(lc_zone_hosts(NULL, view_of, &v), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_zone_hosts(zone, NULL, &v), LC_ERR_NULL_POINTER);
    CHECK_OK(lc_pool_config_default(&config));
    config.max_fails = 2; /* one failure leaves the host healthy; the zone's ring holds 2 */
    config.fail_duration_ms = 3600 * 1000;
    pid = fork_piped(to_parent, to_child);
    if (pid == 0) {
        lc_pick held[2];
        CHECK_OK(lc_pool_new_in_zone(&config, zone, "view", source_of(0), &pool));
        memset(held, 0, sizeof held);
        CHECK_OK(lc_pool_select(pool, NULL, 0, &held[0]));
        CHECK_OK(lc_pool_select(pool, NULL, 0, &held[1]));
        CHECK_OK(lc_pick_release(&held[1], LC_OUTCOME_FAILURE));
        hold_until_killed(to_parent[1], to_child[0]);
    }
    get(to_parent[0], 'h');
    CHECK_OK(lc_pool_new_in_zone(&config, zone, "view", source_of(0), &pool));
    memset(&pick, 0, sizeof pick);
    CHECK_OK(lc_pool_select(pool, NULL, 0, &pick));
    v = view(zone);
    CHECK(v.host.in_flight == 2 && v.host.doubt == 0 && v.host.failures == 1);
    CHECK(v.host.listers == 2 && !v.host.listers_in_doubt);

    CHECK(kill(pid, SIGKILL) == 0);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(to_child[1]);
    CHECK_OK(lc_zone_sweep(zone, NULL));
    v = view(zone);
    CHECK(v.host.in_flight == 1 && v.host.doubt == 0 && v.host.failures == 1);
    CHECK(v.host.listers == 1 && !v.host.listers_in_doubt);
    CHECK_OK(lc_pick_release(&pick, LC_OUTCOME_FAILURE));
    v = view(zone);
    CHECK(v.host.in_flight == 0 && v.host.doubt == 0 && v.host.failures == 2 && v.host.listers == 1);
    close(to_parent[0]);
    lc_pool_free(pool);
}

/* Two pools named "app" share one host state; "other" has its own. Both releases end the
 * picks they are given, whichever made them. */
static void pools_share_by_name(const lc_zone *zone) {
    lc_pool *a = pool_in(zone, "app", 0), *b = pool_in(zone, "app", 0), *other = pool_in(zone, "other", 0);
    lc_picker *picker = NULL;
    lc_pick p1, p2, p3;

    CHECK_OK(lc_picker_new(a, 3, &picker));
    memset(&p1, 0, sizeof p1);
    memset(&p2, 0, sizeof p2);
    memset(&p3, 0, sizeof p3);
    CHECK_OK(lc_picker_select(picker, NULL, 0, &p1));
    CHECK_OK(lc_pool_select(b, NULL, 0, &p2));
    CHECK(in_flight(a) == 2 && in_flight(b) == 2 && in_flight(other) == 0);
    CHECK_OK(lc_pool_select(other, NULL, 0, &p3));
    CHECK(in_flight(a) == 2 && in_flight(b) == 2 && in_flight(other) == 1);

    CHECK_OK(lc_picker_release(picker, &p1, LC_OUTCOME_SUCCESS));
    CHECK(in_flight(a) == 1 && in_flight(b) == 1);
    CHECK_STATUS(lc_picker_release(picker, &p1, LC_OUTCOME_SUCCESS), LC_ERR_ALREADY_RELEASED);
    CHECK_OK(lc_pick_release(&p2, LC_OUTCOME_SUCCESS));
    CHECK_OK(lc_picker_release(picker, &p3, LC_OUTCOME_SUCCESS)); /* another pool's pick */
    CHECK(in_flight(a) == 0 && in_flight(b) == 0 && in_flight(other) == 0);

    /* The picker's pick released by lc_pick_release, the pool's by lc_picker_release. */
    CHECK_OK(lc_picker_select(picker, NULL, 0, &p1));
    CHECK_OK(lc_pool_select(a, NULL, 0, &p2));
    CHECK(in_flight(b) == 2);
    CHECK_OK(lc_pick_release(&p1, LC_OUTCOME_SUCCESS));
    CHECK_OK(lc_picker_release(picker, &p2, LC_OUTCOME_SUCCESS));
    CHECK(in_flight(a) == 0 && in_flight(b) == 0);

    CHECK_STATUS(lc_picker_release(NULL, &p1, LC_OUTCOME_SUCCESS), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_picker_release(picker, NULL, LC_OUTCOME_SUCCESS), LC_ERR_NULL_POINTER);
    lc_picker_free(picker);
    lc_pool_free(a);
    lc_pool_free(b);
    lc_pool_free(other);
}

/* A heap pool's picker releases as lc_pick_release does. */
static void heap_picker_release(void) {
    lc_pool *pool = NULL;
    lc_picker *picker = NULL;
    lc_pick pick;

    CHECK_OK(lc_pool_new(NULL, source_of(0), &pool));
    CHECK_OK(lc_picker_new(pool, 5, &picker));
    memset(&pick, 0, sizeof pick);
    CHECK_OK(lc_picker_select(picker, NULL, 0, &pick));
    CHECK(in_flight(pool) == 1);
    CHECK_STATUS(lc_picker_release(picker, &pick, 7), LC_ERR_INVALID_ARGUMENT);
    CHECK_OK(lc_picker_release(picker, &pick, LC_OUTCOME_SUCCESS));
    CHECK(in_flight(pool) == 0);
    lc_picker_free(picker);
    lc_pool_free(pool);
}

int main(void) {
    lc_zone *zone = NULL;

    CHECK_OK(lc_log_set_callback(capture_log, &errors_logged, LC_LOG_ERROR));
    CHECK_OK(lc_zone_new_anonymous(&CAPS, &zone));
    /* First, so that the child inherits no pool of the parent's. */
    max_requests_across_a_fork(zone);
    killed_child_is_swept(zone);
    zone_hosts_show_the_shared_view(zone);
    refusals(zone);
    pools_share_by_name(zone);
    heap_picker_release();
    lc_zone_free(zone);
    CHECK(errors_logged == 0);
    CHECK_OK(lc_log_set_callback(NULL, NULL, LC_LOG_OFF));
    printf("%lu checks passed\n", checks_passed);
    return 0;
}
