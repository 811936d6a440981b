#include <stdio.h>

#include <leastconn.h>

int main(void) {
    lc_upstream backends[] = {
        /* address,         weight, max_requests (0 = unlimited), tier, tag */
        {"10.0.0.1:8080", 1, 0, 0, NULL},
        {"10.0.0.2:8080", 1, 0, 0, NULL},
        {"10.0.0.9:8080", 1, 0, 1, NULL}, /* tier 1: backup */
    };
    lc_source *source = NULL;
    lc_pool *pool = NULL;
    lc_status st = lc_source_static_new(backends, 3, &source);
    if (st == LC_OK) {
        st = lc_pool_new(NULL, source, &pool); /* consumes source; NULL config: defaults */
    }
    if (st != LC_OK) {
        fprintf(stderr, "leastconn: %s\n", lc_status_str(st));
        return 1;
    }

    /* One request: pick the least-loaded host; the pick holds its reservation. */
    lc_pick first = {0};
    st = lc_pool_select(pool, NULL, 0, &first);
    if (st != LC_OK) {
        fprintf(stderr, "no upstream: %s\n", lc_status_str(st));
        lc_pool_free(pool);
        return 1;
    }
    printf("trying %s\n", first.address);

    /* Say the connection failed: retry on any other host, then report the failure. */
    lc_pick retry = {0};
    st = lc_pool_select(pool, &first.host_id, 1, &retry);
    lc_pick_release(&first, LC_OUTCOME_FAILURE);
    if (st == LC_OK) {
        printf("retrying on %s\n", retry.address);
        lc_pick_release(&retry, LC_OUTCOME_SUCCESS);
    }

    /* Both primaries are now unavailable (one failed, max_fails 1): the backup tier serves. */
    lc_pick third = {0};
    if (lc_pool_select(pool, &retry.host_id, 1, &third) == LC_OK) {
        printf("then %s\n", third.address);
        lc_pick_release(&third, LC_OUTCOME_SUCCESS);
    }

    lc_pool_free(pool);
    return 0;
}
