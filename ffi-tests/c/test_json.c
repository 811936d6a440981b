/*
 * Caddy JSON and the etcd source through the C ABI: lc_pool_new_json() and
 * lc_source_new_json(), their error paths (status, error buffer, truncation, the log when
 * there is no buffer), a multi of JSON sources (two `a` literals and an `etcd` source whose
 * cluster is down: logged and skipped) behind the `first` policy, and lc_source_etcd_new()
 * with its defaults and error paths. The etcd behaviour itself is tested against a real
 * server in tests/etcd.rs. Prints "N checks passed" on success (tests/ffi.rs checks it).
 */
#include <string.h>

#include "check.h"

static const char BAD_PORT[] =
    "{\"dynamic_upstreams\":{\"source\":\"multi\",\"sources\":["
    "{\"source\":\"a\",\"name\":\"10.0.0.1\"},{\"source\":\"a\",\"name\":\"10.0.0.2\",\"port\":8080}]}}";
static const char BAD_PORT_MESSAGE[] = "dynamic_upstreams.sources[1].port: expected a string";

static void pool_from_handler(void) {
    lc_pool *pool = NULL;
    lc_host_stats stats;
    char error[256];
    const char *handler =
        "{\"handler\":\"reverse_proxy\",\"transport\":{\"protocol\":\"http\"},"
        "\"upstreams\":[{\"dial\":\"10.0.0.1:80\",\"max_requests\":7},{\"dial\":\"10.0.0.2:80\"}],"
        "\"load_balancing\":{\"selection_policy\":{\"policy\":\"first\"},\"retries\":2}}";

    strcpy(error, "stale");
    CHECK_OK(lc_pool_new_json(handler, &pool, error, sizeof error));
    CHECK(pool != NULL && error[0] == '\0');
    check_pick(pool, "10.0.0.1:80");
    CHECK_OK(lc_pool_host_stats(pool, "10.0.0.1:80", &stats));
    CHECK(stats.max_requests == 7);
    lc_pool_free(pool);

    /* A malformed handler: the status, the exact message, NULL in *out. */
    pool = (lc_pool *)&errors_logged;
    CHECK_STATUS(lc_pool_new_json(BAD_PORT, &pool, error, sizeof error), LC_ERR_INVALID_CONFIG);
    CHECK(pool == NULL);
    CHECK(strcmp(error, BAD_PORT_MESSAGE) == 0);
    CHECK(strcmp(lc_status_str(LC_ERR_INVALID_CONFIG), "invalid configuration") == 0);

    /* A small buffer gets the start of the message, NUL-terminated. */
    memset(error, 'x', sizeof error);
    CHECK_STATUS(lc_pool_new_json(BAD_PORT, &pool, error, 10), LC_ERR_INVALID_CONFIG);
    CHECK(strcmp(error, "dynamic_u") == 0 && error[10] == 'x');
    CHECK_STATUS(lc_pool_new_json("{", &pool, error, 1), LC_ERR_INVALID_CONFIG);
    CHECK(error[0] == '\0');

    /* Without a buffer the message goes to the log. */
    CHECK_OK(lc_log_set_callback(capture_log, &errors_logged, LC_LOG_ERROR));
    errors_logged = 0;
    CHECK_STATUS(lc_pool_new_json("{\"upstreams\":[{\"dial\":\"h:1\",\"colour\":1}]}", &pool, NULL, 0),
                 LC_ERR_INVALID_CONFIG);
    CHECK(errors_logged == 1);
    CHECK(strcmp(last_error, "lc_pool_new_json: upstreams[0].colour: unknown field") == 0);
    CHECK_OK(lc_log_set_callback(NULL, NULL, LC_LOG_OFF));

    /* NULL and non-UTF-8 arguments. */
    CHECK_STATUS(lc_pool_new_json(NULL, &pool, error, sizeof error), LC_ERR_NULL_POINTER);
    CHECK(pool == NULL);
    CHECK_STATUS(lc_pool_new_json(handler, NULL, error, sizeof error), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_pool_new_json("\xff", &pool, error, sizeof error), LC_ERR_INVALID_UTF8);
}

static void sources_from_json(void) {
    lc_source *multi = NULL, *source = NULL;
    lc_pool_config config;
    lc_pool *pool = NULL;
    lc_host_stats stats;
    char error[256];

    source = (lc_source *)&errors_logged;
    CHECK_STATUS(lc_source_new_json("{\"source\":\"consul\"}", &source, error, sizeof error),
                 LC_ERR_INVALID_CONFIG);
    CHECK(source == NULL);
    CHECK(strcmp(error, "source: unknown source \"consul\" (known: multi, static, a, srv, docker, etcd)") == 0);
    CHECK_STATUS(lc_source_new_json(NULL, &source, NULL, 0), LC_ERR_NULL_POINTER);
    CHECK_STATUS(lc_source_new_json("{}", NULL, NULL, 0), LC_ERR_NULL_POINTER);
    source = (lc_source *)&errors_logged;
    CHECK_STATUS(lc_source_new_json("\xff", &source, error, sizeof error), LC_ERR_INVALID_UTF8);
    CHECK(source == NULL);

    CHECK_OK(lc_source_multi_new(&multi));
    CHECK_OK(lc_source_new_json("{\"source\":\"a\",\"name\":\"192.0.2.7\",\"port\":\"8080\",\"max_requests\":3}",
                                &source, error, sizeof error));
    CHECK_OK(lc_source_multi_add(multi, source));
    /* Port 1 on loopback refuses at once: the etcd source fails, multi logs and skips it. */
    CHECK_OK(lc_source_new_json("{\"source\":\"etcd\",\"endpoints\":[\"http://127.0.0.1:1\"],"
                                "\"key\":\"/services/api/\",\"timeout\":\"2s\"}",
                                &source, error, sizeof error));
    CHECK_OK(lc_source_multi_add(multi, source));
    CHECK_OK(lc_source_new_json("{\"source\":\"a\",\"name\":\"::1\",\"port\":\"8443\",\"tier\":1}", &source,
                                error, sizeof error));
    CHECK_OK(lc_source_multi_add(multi, source));

    CHECK_OK(lc_log_set_callback(capture_log, &errors_logged, LC_LOG_ERROR));
    errors_logged = 0;
    CHECK_OK(lc_pool_config_default(&config));
    config.policy = LC_POLICY_FIRST;
    CHECK_OK(lc_pool_new(&config, multi, &pool)); /* the first refresh runs here */
    check_one_error("multi: source 1 failed: connecting to etcd at 127.0.0.1:1");
    check_pick(pool, "192.0.2.7:8080");
    CHECK_OK(lc_pool_host_stats(pool, "192.0.2.7:8080", &stats));
    CHECK(stats.max_requests == 3);
    CHECK_OK(lc_pool_set_down(pool, "192.0.2.7:8080", true));
    check_pick(pool, "[::1]:8443");
    CHECK_OK(lc_log_set_callback(NULL, NULL, LC_LOG_OFF));
    lc_pool_free(pool);
}

/* Expects lc_source_etcd_new to fail with `want` and leave NULL in *out. */
static void etcd_fails(const lc_etcd_config *config, lc_status want) {
    lc_source *source = (lc_source *)&errors_logged; /* not NULL: must be overwritten */
    CHECK_STATUS(lc_source_etcd_new(config, &source), want);
    CHECK(source == NULL);
}

static void etcd_source(void) {
    static int tag;
    const char *endpoints[] = {"http://127.0.0.1:1"};
    const char *bad_scheme[] = {"https://127.0.0.1:2379"};
    const char *null_entry[] = {NULL};
    const char *bad_utf8[] = {"\xff"};
    lc_etcd_config c;
    lc_source *source = NULL;
    lc_pool *pool = NULL;

    CHECK_STATUS(lc_etcd_config_default(NULL), LC_ERR_NULL_POINTER);
    CHECK_OK(lc_etcd_config_default(&c));
    CHECK(c.endpoints == NULL && c.endpoints_len == 0 && c.prefix == NULL && c.version_key == NULL);
    CHECK(c.timeout_ms == 0 && c.resync_ms == 0);
    CHECK(c.weight == 1 && c.max_requests == 0 && c.tier == 0 && c.tag == NULL);

    etcd_fails(NULL, LC_ERR_NULL_POINTER);
    etcd_fails(&c, LC_ERR_NULL_POINTER); /* no prefix */
    c.prefix = "/services/api/";
    etcd_fails(&c, LC_ERR_INVALID_ARGUMENT); /* no endpoints */
    c.endpoints_len = 1;
    etcd_fails(&c, LC_ERR_NULL_POINTER); /* NULL array with a length */
    c.endpoints = null_entry;
    etcd_fails(&c, LC_ERR_NULL_POINTER);
    c.endpoints = bad_utf8;
    etcd_fails(&c, LC_ERR_INVALID_UTF8);
    c.endpoints = bad_scheme;
    etcd_fails(&c, LC_ERR_INVALID_ARGUMENT);
    c.endpoints = endpoints;
    c.weight = 0;
    etcd_fails(&c, LC_ERR_INVALID_WEIGHT);
    c.weight = 1;
    c.tier = LC_MAX_TIER + 1;
    etcd_fails(&c, LC_ERR_INVALID_LIMIT);
    c.tier = 0;
    c.version_key = "\xff";
    etcd_fails(&c, LC_ERR_INVALID_UTF8);
    c.version_key = "/deploy/api";
    CHECK_STATUS(lc_source_etcd_new(&c, NULL), LC_ERR_NULL_POINTER);

    /* A cluster that refuses: the pool builds, empty, and the refresh reports the failure. */
    c.timeout_ms = 2000;
    c.tag = &tag;
    CHECK_OK(lc_source_etcd_new(&c, &source));
    CHECK_OK(lc_pool_new(NULL, source, &pool));
    CHECK_STATUS(lc_pool_refresh(pool, NULL), LC_ERR_SOURCE_FAILED);
    lc_pool_free(pool);

    CHECK_OK(lc_source_etcd_new(&c, &source));
    lc_source_free(source); /* never refreshed: no thread was started */
}

int main(void) {
    pool_from_handler();
    sources_from_json();
    etcd_source();
    printf("%lu checks passed\n", checks_passed);
    return 0;
}
