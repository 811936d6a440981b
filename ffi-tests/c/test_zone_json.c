/*
 * Pools from Caddy JSON on a shared zone through the C ABI: lc_pool_new_json_in_zone().
 * A JSON pool in a forked child and, in the parent, a JSON pool and an lc_pool_new_in_zone()
 * pool of the same name share in-flight counts exactly, and the JSON max_requests holds
 * across the processes; a pool of another name shares nothing. Every refusal: its status,
 * NULL in *out, its message in the error buffer or, without one, in the log. A full zone
 * (no process record for a forked child) is refused with LC_ERR_ZONE_FULL. ASan and
 * valgrind (.ci/sanitizers.sh) see a leak on any path that loses the parsed configuration.
 * Prints "N checks passed" on success (tests/ffi.rs checks it).
 */
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "check.h"

/* A ring of 2 (max_fails 3 is refused); room for two processes' threads. */
static const lc_zone_capacity CAPS = {8, 64, 2, 4, 16};
static const char ADDRESS[] = "10.0.0.1:80";
static const char HANDLER[] =
    "{\"handler\":\"reverse_proxy\",\"upstreams\":[{\"dial\":\"10.0.0.1:80\",\"max_requests\":3}],"
    "\"load_balancing\":{\"selection_policy\":{\"policy\":\"least_conn\"}},"
    "\"health_checks\":{\"passive\":{\"fail_duration\":\"10s\",\"max_fails\":2}}}";

static lc_pool *json_pool_in(const lc_zone *zone, const char *name) {
    lc_pool *pool = NULL;
    char error[256];
    strcpy(error, "stale");
    CHECK_OK(lc_pool_new_json_in_zone(HANDLER, zone, name, &pool, error, sizeof error));
    CHECK(pool != NULL && error[0] == '\0');
    return pool;
}

static uint32_t in_flight(const lc_pool *pool) {
    return host_in_flight(pool, ADDRESS);
}

/* The child holds 2 of the 3 requests max_requests allows, from its own JSON pool; the
 * parent's JSON pool and its lc_pool_new_in_zone() pool of the same name see them, the third
 * pick fills the host for both processes, and the child's releases land on the same count.
 * The pipes order the steps; nothing sleeps. Run first, so that the child inherits no pool. */
static void shared_with_a_forked_child(const lc_zone *zone) {
    int to_child[2], to_parent[2];
    lc_pool *json, *built, *other;
    lc_upstream u = upstream(ADDRESS);
    lc_source *source = NULL;
    lc_pick pick, extra;
    pid_t pid;

    pid = fork_piped(to_parent, to_child);
    if (pid == 0) {
        lc_pick held[2];
        lc_zone *own = (lc_zone *)zone;
        json = json_pool_in(zone, "app");
        memset(held, 0, sizeof held);
        CHECK_OK(lc_pool_select(json, NULL, 0, &held[0]));
        CHECK_OK(lc_pool_select(json, NULL, 0, &held[1]));
        CHECK(in_flight(json) == 2);
        put(to_parent[1], 'h'); /* held */
        get(to_child[0], 'g'); /* the parent holds the third and was refused a fourth */
        CHECK(in_flight(json) == 3);
        CHECK_OK(lc_pick_release(&held[0], LC_OUTCOME_SUCCESS));
        CHECK_OK(lc_pick_release(&held[1], LC_OUTCOME_SUCCESS));
        CHECK(in_flight(json) == 1);
        put(to_parent[1], 'r'); /* released */
        lc_pool_free(json);
        lc_zone_free(own); /* the child's copy of the handle is the child's */
        close(to_child[0]);
        close(to_parent[1]);
        child_passed();
    }
    get(to_parent[0], 'h');
    json = json_pool_in(zone, "app");
    u.max_requests = 3;
    CHECK_OK(lc_source_static_new(&u, 1, &source));
    built = NULL;
    CHECK_OK(lc_pool_new_in_zone(NULL, zone, "app", source, &built));
    other = json_pool_in(zone, "other");
    CHECK(in_flight(json) == 2 && in_flight(built) == 2 && in_flight(other) == 0);

    memset(&pick, 0, sizeof pick);
    memset(&extra, 0, sizeof extra);
    CHECK_OK(lc_pool_select(json, NULL, 0, &pick));
    CHECK(in_flight(json) == 3 && in_flight(built) == 3 && in_flight(other) == 0);
    CHECK_STATUS(lc_pool_select(json, NULL, 0, &extra), LC_ERR_NO_UPSTREAM);
    CHECK_STATUS(lc_pool_select(built, NULL, 0, &extra), LC_ERR_NO_UPSTREAM);
    /* Another name: its own host state, not full. */
    CHECK_OK(lc_pool_select(other, NULL, 0, &extra));
    CHECK(in_flight(other) == 1 && in_flight(json) == 3);
    CHECK_OK(lc_pick_release(&extra, LC_OUTCOME_SUCCESS));

    put(to_child[1], 'g');
    get(to_parent[0], 'r');
    CHECK(in_flight(json) == 1 && in_flight(built) == 1);
    CHECK_OK(lc_pool_select(built, NULL, 0, &extra));
    CHECK(in_flight(json) == 2);
    CHECK_OK(lc_pick_release(&extra, LC_OUTCOME_SUCCESS));
    CHECK_OK(lc_pick_release(&pick, LC_OUTCOME_SUCCESS));
    CHECK(in_flight(json) == 0 && in_flight(built) == 0 && in_flight(other) == 0);
    check_child(pid);
    close(to_child[1]);
    close(to_parent[0]);
    lc_pool_free(json);
    lc_pool_free(built);
    lc_pool_free(other);
}

/* A refusal: `status`, NULL in *out, and `message` in the error buffer. */
static void check_refused(const char *json, const lc_zone *zone, const char *name, lc_status status,
                          const char *message) {
    lc_pool *pool = (lc_pool *)&errors_logged;
    char error[256];
    strcpy(error, "stale");
    CHECK_STATUS(lc_pool_new_json_in_zone(json, zone, name, &pool, error, sizeof error), status);
    CHECK(pool == NULL);
    CHECK(strcmp(error, message) == 0);
}

static void refusals(const lc_zone *zone) {
    const char not_utf8[] = {'a', (char)0xff, 0};
    const char *max_fails_3 =
        "{\"upstreams\":[{\"dial\":\"10.0.0.1:80\"}],"
        "\"health_checks\":{\"passive\":{\"fail_duration\":\"10s\",\"max_fails\":3}}}";
    char error[8];
    lc_pool *pool;

    /* Pointer and string arguments: no message, the buffer emptied. */
    check_refused(NULL, zone, "app", LC_ERR_NULL_POINTER, "");
    check_refused(HANDLER, NULL, "app", LC_ERR_NULL_POINTER, "");
    check_refused(HANDLER, zone, NULL, LC_ERR_NULL_POINTER, "");
    check_refused(not_utf8, zone, "app", LC_ERR_INVALID_UTF8, "");
    check_refused(HANDLER, zone, not_utf8, LC_ERR_INVALID_UTF8, "");
    CHECK_STATUS(lc_pool_new_json_in_zone(HANDLER, zone, "app", NULL, NULL, 0), LC_ERR_NULL_POINTER);

    /* The document, as lc_pool_new_json() reports it. */
    check_refused("{", zone, "app", LC_ERR_INVALID_CONFIG, "invalid JSON: EOF while parsing an object at line 1 column 1");
    check_refused("{\"upstreams\":[{\"dial\":\"h:1\",\"colour\":1}]}", zone, "app", LC_ERR_INVALID_CONFIG,
                  "upstreams[0].colour: unknown field");
    /* The zone: max_fails above its fail_ring, as lc_pool_new_in_zone() refuses it. */
    check_refused(max_fails_3, zone, "app", LC_ERR_ZONE_INCOMPATIBLE, "max_fails 3 is above the zone's fail_ring 2");

    /* A small buffer gets the start of the message; without one it goes to the log. */
    pool = (lc_pool *)&errors_logged;
    memset(error, 'x', sizeof error);
    CHECK_STATUS(lc_pool_new_json_in_zone(max_fails_3, zone, "app", &pool, error, 5), LC_ERR_ZONE_INCOMPATIBLE);
    CHECK(pool == NULL && strcmp(error, "max_") == 0 && error[5] == 'x');
    errors_logged = 0;
    CHECK_STATUS(lc_pool_new_json_in_zone(max_fails_3, zone, "app", &pool, NULL, 0), LC_ERR_ZONE_INCOMPATIBLE);
    check_one_error("lc_pool_new_json_in_zone: max_fails 3 is above the zone's fail_ring 2");
    errors_logged = 0;
    CHECK_STATUS(lc_pool_new_json_in_zone("[]", zone, "app", &pool, NULL, 0), LC_ERR_INVALID_CONFIG);
    check_one_error("lc_pool_new_json_in_zone: expected an object");
    errors_logged = 0;
}

/* A zone with one process record, taken by this process: a forked child cannot register, so
 * its JSON pool is refused with LC_ERR_ZONE_FULL and the zone's explanation. The child frees
 * what it inherited (`mine` unused, both zone handles), so that valgrind sees no leak. */
static void full_zone(const lc_zone *inherited) {
    lc_zone_capacity one = CAPS;
    lc_zone *zone = NULL;
    lc_pool *mine;
    pid_t pid;

    one.processes = 1;
    CHECK_OK(lc_zone_new_anonymous(&one, &zone));
    mine = json_pool_in(zone, "app"); /* registers this process: the only record */
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        lc_pool *pool = (lc_pool *)&errors_logged;
        char error[256];
        CHECK_STATUS(lc_pool_new_json_in_zone(HANDLER, zone, "app", &pool, error, sizeof error), LC_ERR_ZONE_FULL);
        CHECK(pool == NULL);
        CHECK(strcmp(error, "zone full: all 1 process records are taken") == 0);
        lc_pool_free(mine); /* the parent's, inherited: freed unused */
        lc_zone_free(zone);
        lc_zone_free((lc_zone *)inherited);
        child_passed();
    }
    check_child(pid);
    lc_pool_free(mine);
    lc_zone_free(zone);
}

int main(void) {
    lc_zone *zone = NULL;

    CHECK_OK(lc_log_set_callback(capture_log, &errors_logged, LC_LOG_ERROR));
    CHECK_OK(lc_zone_new_anonymous(&CAPS, &zone));
    /* First, so that the child inherits no pool of the parent's. */
    shared_with_a_forked_child(zone);
    refusals(zone);
    full_zone(zone);
    lc_zone_free(zone);
    CHECK(errors_logged == 0);
    CHECK_OK(lc_log_set_callback(NULL, NULL, LC_LOG_OFF));
    printf("%lu checks passed\n", checks_passed);
    return 0;
}
