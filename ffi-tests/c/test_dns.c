/*
 * The DNS sources through the C ABI: the configuration defaults, every error path of the two
 * constructors, and a multi of a static list, two `a` sources of IP literals (no DNS needed)
 * and an `srv` source whose name server is down (logged and skipped), behind the `first`
 * policy. The DNS behaviour itself is tested against a real server in tests/dns.rs.
 * Prints "N checks passed" on success (tests/ffi.rs checks it).
 */
#include <stdint.h>
#include <string.h>

#include "check.h"

static lc_dns_a_config a_config(const char *name) {
    lc_dns_a_config config;
    CHECK_OK(lc_dns_a_config_default(&config));
    config.name = name;
    return config;
}

static lc_dns_srv_config srv_config(const char *service, const char *proto, const char *name) {
    lc_dns_srv_config config;
    CHECK_OK(lc_dns_srv_config_default(&config));
    config.service = service;
    config.proto = proto;
    config.name = name;
    return config;
}

/* Expects lc_source_dns_a_new to fail with `want` and leave NULL in *out. */
static void a_fails(const lc_dns_a_config *config, lc_status want) {
    lc_source *source = (lc_source *)&errors_logged; /* not NULL: must be overwritten */
    CHECK_STATUS(lc_source_dns_a_new(config, &source), want);
    CHECK(source == NULL);
}

static void srv_fails(const lc_dns_srv_config *config, lc_status want) {
    lc_source *source = (lc_source *)&errors_logged;
    CHECK_STATUS(lc_source_dns_srv_new(config, &source), want);
    CHECK(source == NULL);
}

static void defaults_and_errors(void) {
    lc_dns_a_config a;
    lc_dns_srv_config s;
    lc_source *source = NULL;
    const char *not_an_ip[] = {"ns.example:53"};
    const char *null_entry[] = {NULL};
    const char *bad_utf8[] = {"\xff"};

    CHECK_STATUS(lc_dns_a_config_default(NULL), LC_ERR_NULL_POINTER);
    CHECK_OK(lc_dns_a_config_default(&a));
    CHECK(a.name == NULL && a.port == 80 && a.versions == LC_IP_BOTH && a.refresh_ms == 60000);
    CHECK(a.resolvers == NULL && a.resolvers_len == 0 && a.timeout_ms == 0);
    CHECK(a.retries == LC_DNS_RETRIES_DEFAULT);
    CHECK(a.weight == 1 && a.max_requests == 0 && a.tier == 0 && a.tag == NULL);

    CHECK_STATUS(lc_dns_srv_config_default(NULL), LC_ERR_NULL_POINTER);
    CHECK_OK(lc_dns_srv_config_default(&s));
    CHECK(s.service == NULL && s.proto == NULL && s.name == NULL);
    CHECK(s.refresh_ms == 60000 && s.grace_period_ms == 0 && s.resolvers == NULL);
    CHECK(s.resolvers_len == 0 && s.timeout_ms == 0 && s.retries == LC_DNS_RETRIES_DEFAULT);
    CHECK(s.weight == 1 && s.max_requests == 0 && s.tier == 0 && s.tag == NULL);

    /* a: NULL arguments, then one bad field at a time. */
    a = a_config("api.internal");
    CHECK_STATUS(lc_source_dns_a_new(&a, NULL), LC_ERR_NULL_POINTER);
    a_fails(NULL, LC_ERR_NULL_POINTER);
    a.name = NULL;
    a_fails(&a, LC_ERR_NULL_POINTER);
    a = a_config("\xff.internal");
    a_fails(&a, LC_ERR_INVALID_UTF8);
    a = a_config("not a name");
    a_fails(&a, LC_ERR_INVALID_ADDRESS);
    a = a_config("api.internal");
    a.port = 0;
    a_fails(&a, LC_ERR_INVALID_ADDRESS);
    a = a_config("api.internal");
    a.versions = 3;
    a_fails(&a, LC_ERR_INVALID_ARGUMENT);
    a = a_config("2001:db8::7");
    a.versions = LC_IP_V4;
    a_fails(&a, LC_ERR_INVALID_ARGUMENT);
    a = a_config("api.internal");
    a.resolvers_len = 1;
    a_fails(&a, LC_ERR_NULL_POINTER);
    a.resolvers = null_entry;
    a_fails(&a, LC_ERR_NULL_POINTER);
    a.resolvers = bad_utf8;
    a_fails(&a, LC_ERR_INVALID_UTF8);
    a.resolvers = not_an_ip;
    a_fails(&a, LC_ERR_INVALID_ADDRESS);
    a = a_config("api.internal");
    a.retries = -2;
    a_fails(&a, LC_ERR_INVALID_LIMIT);
    a = a_config("api.internal");
    a.weight = 0;
    a_fails(&a, LC_ERR_INVALID_WEIGHT);
    a = a_config("api.internal");
    a.max_requests = LC_MAX_REQUESTS_LIMIT + 1;
    a_fails(&a, LC_ERR_INVALID_LIMIT);
    a = a_config("api.internal");
    CHECK_OK(lc_source_dns_a_new(&a, &source)); /* nothing is looked up yet */
    CHECK(source != NULL);
    lc_source_free(source);

    /* srv */
    s = srv_config("api", "tcp", "internal");
    CHECK_STATUS(lc_source_dns_srv_new(&s, NULL), LC_ERR_NULL_POINTER);
    srv_fails(NULL, LC_ERR_NULL_POINTER);
    s.name = NULL;
    srv_fails(&s, LC_ERR_NULL_POINTER);
    s = srv_config("api", NULL, "internal");
    srv_fails(&s, LC_ERR_INVALID_ARGUMENT);
    s = srv_config("", "tcp", "internal");
    srv_fails(&s, LC_ERR_INVALID_ARGUMENT);
    s = srv_config("api", "\xff", "internal");
    srv_fails(&s, LC_ERR_INVALID_UTF8);
    s = srv_config(NULL, NULL, "10.0.0.1");
    srv_fails(&s, LC_ERR_INVALID_ADDRESS);
    s = srv_config("api", "tcp", "internal");
    s.resolvers = not_an_ip;
    s.resolvers_len = 1;
    srv_fails(&s, LC_ERR_INVALID_ADDRESS);
    s = srv_config("api", "tcp", "internal");
    s.tier = LC_MAX_TIER + 1;
    srv_fails(&s, LC_ERR_INVALID_LIMIT);
    s = srv_config(NULL, NULL, "_api._tcp.internal");
    CHECK_OK(lc_source_dns_srv_new(&s, &source));
    CHECK(source != NULL);
    lc_source_free(source);
}

/* static, then a (IPv4 literal), then a (IPv6 literal, backup tag), then srv (server down). */
static void multi_of_static_a_and_srv(void) {
    static int a4_tag, a6_tag;
    const char *dead[] = {"127.0.0.1:9"}; /* nothing answers DNS on the discard port */
    lc_upstream primary;
    lc_source *multi = NULL, *source = NULL;
    lc_dns_a_config a;
    lc_dns_srv_config s;
    lc_pool_config config;
    lc_pool *pool = NULL;
    lc_host_stats stats;

    CHECK_OK(lc_log_set_callback(capture_log, &errors_logged, LC_LOG_ERROR));
    CHECK_OK(lc_source_multi_new(&multi));

    primary = upstream("10.0.0.1:80");
    CHECK_OK(lc_source_static_new(&primary, 1, &source));
    CHECK_OK(lc_source_multi_add(multi, source));

    a = a_config("192.0.2.7");
    a.port = 8080;
    a.max_requests = 10;
    a.tag = &a4_tag;
    CHECK_OK(lc_source_dns_a_new(&a, &source));
    CHECK_OK(lc_source_multi_add(multi, source));

    a = a_config("[2001:db8::7]");
    a.port = 8443;
    a.tag = &a6_tag;
    CHECK_OK(lc_source_dns_a_new(&a, &source));
    CHECK_OK(lc_source_multi_add(multi, source));

    s = srv_config("api", "tcp", "internal");
    s.resolvers = dead;
    s.resolvers_len = 1;
    s.timeout_ms = 200;
    s.retries = 0;
    CHECK_OK(lc_source_dns_srv_new(&s, &source));
    CHECK_OK(lc_source_multi_add(multi, source));

    CHECK_OK(lc_pool_config_default(&config));
    config.policy = LC_POLICY_FIRST;
    errors_logged = 0;
    CHECK_OK(lc_pool_new(&config, multi, &pool)); /* the first refresh runs here */
    check_one_error("multi: source 3 failed: SRV lookup of _api._tcp.internal failed");

    /* first: list order is static, a (IPv4), a (IPv6). */
    CHECK(check_pick(pool, "10.0.0.1:80") == NULL);
    CHECK_OK(lc_pool_set_down(pool, "10.0.0.1:80", true));
    CHECK(check_pick(pool, "192.0.2.7:8080") == &a4_tag);
    CHECK_OK(lc_pool_host_stats(pool, "192.0.2.7:8080", &stats));
    CHECK(stats.max_requests == 10 && stats.in_flight == 0 && stats.picks == 1);
    CHECK_OK(lc_pool_set_down(pool, "192.0.2.7:8080", true));
    CHECK(check_pick(pool, "[2001:db8::7]:8443") == &a6_tag);

    CHECK_OK(lc_log_set_callback(NULL, NULL, LC_LOG_OFF));
    lc_pool_free(pool);
}

int main(void) {
    defaults_and_errors();
    multi_of_static_a_and_srv();
    printf("%lu checks passed\n", checks_passed);
    return 0;
}
