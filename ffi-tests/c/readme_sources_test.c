/* Compiles the README's multi-source C block (readme_sources.c, which tests/ffi.rs checks
 * equal to that block) and runs what it builds: nothing in it contacts Docker or etcd, so
 * this runs anywhere; the multi is freed unrefreshed. */
#include "readme_sources.c"

int main(void) {
    lc_source *multi = NULL, *etcd = NULL;
    lc_status st = api_sources(&multi);
    if (st != LC_OK || multi == NULL) {
        fprintf(stderr, "api_sources: %s\n", lc_status_str(st));
        return 1;
    }
    /* A multi accepts more sources: it is one. */
    etcd = etcd_from_json();
    if (etcd == NULL) return 1;
    st = lc_source_multi_add(multi, etcd);
    if (st != LC_OK) {
        fprintf(stderr, "lc_source_multi_add: %s\n", lc_status_str(st));
        return 1;
    }
    lc_source_free(multi);
    printf("built the multi of static, docker, etcd and etcd from JSON\n");
    return 0;
}
