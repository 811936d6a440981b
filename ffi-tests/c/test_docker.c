/*
 * The docker source through the C ABI: the configuration defaults, every error path of the
 * constructor, DOCKER_HOST, and a multi of a static list and a docker source whose daemon is
 * absent (logged and skipped). The docker behaviour itself is tested against a real Podman
 * service in tests/docker.rs.
 * Prints "N checks passed" on success (tests/ffi.rs checks it).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define ABSENT "unix:///nonexistent-leastconn-test/docker.sock"

static lc_docker_config config_for(const char *host) {
    lc_docker_config config;
    CHECK_OK(lc_docker_config_default(&config));
    config.host = host;
    return config;
}

/* Expects lc_source_docker_new to fail with `want` and leave NULL in *out. */
static void docker_fails(const lc_docker_config *config, lc_status want) {
    lc_source *source = (lc_source *)&errors_logged; /* not NULL: must be overwritten */
    CHECK_STATUS(lc_source_docker_new(config, &source), want);
    CHECK(source == NULL);
}

static void docker_builds(const lc_docker_config *config) {
    lc_source *source = NULL;
    CHECK_OK(lc_source_docker_new(config, &source)); /* nothing is contacted yet */
    CHECK(source != NULL);
    lc_source_free(source);
}

static void defaults_and_errors(void) {
    lc_docker_config c;
    lc_docker_label roles[] = {{"role", "web"}, {"role", "api"}, {"env", NULL}};
    lc_docker_label null_key[] = {{NULL, "web"}};
    lc_docker_label bad_value[] = {{"role", "\xff"}};

    CHECK_STATUS(lc_docker_config_default(NULL), LC_ERR_NULL_POINTER);
    CHECK_OK(lc_docker_config_default(&c));
    CHECK(c.host == NULL && c.port == 0 && c.labels == NULL && c.labels_len == 0);
    CHECK(c.refresh_ms == 30000 && c.timeout_ms == 5000);
    CHECK(c.weight == 1 && c.max_requests == 0 && c.tier == 0 && c.tag == NULL);

    c = config_for(ABSENT);
    CHECK_STATUS(lc_source_docker_new(&c, NULL), LC_ERR_NULL_POINTER);
    docker_fails(NULL, LC_ERR_NULL_POINTER);
    c = config_for("tcp://127.0.0.1:2375");
    docker_fails(&c, LC_ERR_INVALID_ARGUMENT);
    c = config_for("unix://relative.sock");
    docker_fails(&c, LC_ERR_INVALID_ARGUMENT);
    c = config_for("unix:///\xff");
    docker_fails(&c, LC_ERR_INVALID_UTF8);
    c = config_for(ABSENT);
    c.labels_len = 1;
    docker_fails(&c, LC_ERR_NULL_POINTER);
    c.labels = null_key;
    docker_fails(&c, LC_ERR_NULL_POINTER);
    c.labels = bad_value;
    docker_fails(&c, LC_ERR_INVALID_UTF8);
    c = config_for(ABSENT);
    c.refresh_ms = 0;
    docker_fails(&c, LC_ERR_INVALID_LIMIT);
    c = config_for(ABSENT);
    c.timeout_ms = 0;
    docker_fails(&c, LC_ERR_INVALID_LIMIT);
    c = config_for(ABSENT);
    c.refresh_ms = UINT64_MAX; /* deadlines must not overflow */
    docker_fails(&c, LC_ERR_INVALID_LIMIT);
    c = config_for(ABSENT);
    c.timeout_ms = 365ULL * 24 * 3600 * 1000 + 1;
    docker_fails(&c, LC_ERR_INVALID_LIMIT);
    c = config_for(ABSENT);
    c.weight = 0;
    docker_fails(&c, LC_ERR_INVALID_WEIGHT);
    c = config_for(ABSENT);
    c.tier = LC_MAX_TIER + 1;
    docker_fails(&c, LC_ERR_INVALID_LIMIT);

    c = config_for(ABSENT);
    c.port = 8080;
    c.labels = roles;
    c.labels_len = 3;
    docker_builds(&c);

    /* host NULL: DOCKER_HOST, read by the constructor. */
    CHECK(setenv("DOCKER_HOST", "tcp://10.0.0.1:2375", 1) == 0);
    c = config_for(NULL);
    docker_fails(&c, LC_ERR_INVALID_ARGUMENT);
    CHECK(setenv("DOCKER_HOST", ABSENT, 1) == 0);
    docker_builds(&c);
    CHECK(unsetenv("DOCKER_HOST") == 0);
    docker_builds(&c); /* the default socket */
}

/* static, then docker (daemon absent: the first refresh logs it and skips it). */
static void multi_of_static_and_absent_docker(void) {
    lc_upstream primary;
    lc_source *multi = NULL, *source = NULL;
    lc_docker_config d;
    lc_pool_config config;
    lc_pool *pool = NULL;

    CHECK_OK(lc_log_set_callback(capture_log, &errors_logged, LC_LOG_ERROR));
    CHECK_OK(lc_source_multi_new(&multi));
    primary = upstream("10.0.0.1:80");
    CHECK_OK(lc_source_static_new(&primary, 1, &source));
    CHECK_OK(lc_source_multi_add(multi, source));
    d = config_for(ABSENT);
    CHECK_OK(lc_source_docker_new(&d, &source));
    CHECK_OK(lc_source_multi_add(multi, source));

    CHECK_OK(lc_pool_config_default(&config));
    errors_logged = 0;
    CHECK_OK(lc_pool_new(&config, multi, &pool)); /* the first refresh runs here */
    check_one_error("multi: source 1 failed: docker daemon at "
                    "/nonexistent-leastconn-test/docker.sock: cannot connect: ");
    check_pick(pool, "10.0.0.1:80");

    CHECK_OK(lc_log_set_callback(NULL, NULL, LC_LOG_OFF));
    lc_pool_free(pool); /* stops the docker watcher */
}

int main(void) {
    defaults_and_errors();
    multi_of_static_and_absent_docker();
    printf("%lu checks passed\n", checks_passed);
    return 0;
}
