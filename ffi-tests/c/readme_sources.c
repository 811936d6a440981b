#include <stdio.h>

#include <leastconn.h>

/* A static list, the Docker containers labelled com.example.role=web or =api, then the keys
 * under /services/api/ in etcd, whose last list is served for 30 s while etcd is down.
 * Nothing is contacted here: the sources run in the pool's refreshes. On success *out is
 * the multi, owned by the caller (give it to lc_pool_new()); on error it is NULL. */
static lc_status api_sources(lc_source **out) {
    lc_upstream backends[] = {{"10.0.0.1:8080", 1, 0, 0, NULL}, {"10.0.0.2:8080", 1, 0, 0, NULL}};
    lc_docker_label roles[] = {{"com.example.role", "web"}, {"com.example.role", "api"}};
    const char *endpoints[] = {"http://10.0.0.5:2379", "http://10.0.0.6:2379"};
    lc_source *multi = NULL, *source = NULL, *graced = NULL;
    lc_docker_config d;
    lc_etcd_config e;

    *out = NULL;
    lc_status st = lc_source_multi_new(&multi);
    if (st != LC_OK) return st;
    st = lc_source_static_new(backends, 2, &source);
    if (st == LC_OK) st = lc_source_multi_add(multi, source); /* consumes source */

    lc_docker_config_default(&d);
    d.host = "unix:///run/podman/podman.sock"; /* NULL: DOCKER_HOST, else /var/run/docker.sock */
    d.port = 8080;                             /* 0: each container's port label */
    d.labels = roles;                          /* keys ANDed, values of one key ORed */
    d.labels_len = 2;
    if (st == LC_OK) st = lc_source_docker_new(&d, &source);
    if (st == LC_OK) st = lc_source_multi_add(multi, source);

    lc_etcd_config_default(&e);
    e.endpoints = endpoints;
    e.endpoints_len = 2;
    e.prefix = "/services/api/";
    e.timeout_ms = 2000;
    if (st == LC_OK) st = lc_source_etcd_new(&e, &source);
    if (st == LC_OK) st = lc_source_grace_new(source, 30000, &graced); /* consumes source */
    if (st == LC_OK) st = lc_source_multi_add(multi, graced);

    if (st != LC_OK) {
        lc_source_free(multi); /* and every source added to it */
        return st;
    }
    *out = multi;
    return LC_OK;
}

/* The same etcd source from its Caddy JSON, grace period included; NULL on error, which
 * `error` describes with its place (e.g. "endpoints[0]: expected a string"). */
static lc_source *etcd_from_json(void) {
    char error[256];
    lc_source *source = NULL;
    if (lc_source_new_json("{\"source\":\"etcd\",\"endpoints\":[\"http://10.0.0.5:2379\"],"
                           "\"key\":\"/services/api/\",\"timeout\":\"2s\",\"grace\":\"30s\"}",
                           &source, error, sizeof error) != LC_OK)
        fprintf(stderr, "etcd source: %s\n", error);
    return source;
}
