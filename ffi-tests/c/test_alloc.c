/* "No allocation on the hot path", counted from C: this program defines malloc and friends
 * (interposing on the C library's for itself and libleastconn, static or shared), forwards
 * them to glibc's __libc_* entry points, and counts the calls made while measuring. The
 * program is single-threaded except for one helper thread that runs while main waits. */
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "check.h"

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *ptr);

static int measuring;
static unsigned long allocations;

static void note(void) {
    if (measuring) {
        allocations++;
    }
}

void *malloc(size_t size) {
    note();
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
    note();
    return __libc_calloc(n, size);
}

void *realloc(void *ptr, size_t size) {
    note();
    return __libc_realloc(ptr, size);
}

void free(void *ptr) {
    __libc_free(ptr);
}

int posix_memalign(void **out, size_t align, size_t size) {
    void *p;
    note();
    p = __libc_memalign(align, size);
    if (p == NULL) {
        return 12; /* ENOMEM */
    }
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t size) {
    note();
    return __libc_memalign(align, size);
}

void *memalign(size_t align, size_t size) {
    note();
    return __libc_memalign(align, size);
}

static const char *const addresses[] = {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"};

static lc_pool *make_pool(lc_policy policy) {
    lc_upstream list[4];
    lc_source *source = NULL;
    lc_pool *pool = NULL;
    lc_pool_config config;
    size_t i;
    for (i = 0; i < 4; i++) {
        list[i] = upstream(addresses[i]);
    }
    CHECK_OK(lc_source_static_new(list, 4, &source));
    CHECK_OK(lc_pool_config_default(&config));
    config.policy = policy;
    /* Above the number of failures below: no host becomes unavailable, every select works. */
    config.max_fails = LC_MAX_FAILS_LIMIT;
    CHECK_OK(lc_pool_new(&config, source, &pool));
    return pool;
}

/* `n` selects and releases (every tenth a failure); returns the allocations they made. */
static unsigned long picks(lc_pool *pool, lc_picker *picker, int n) {
    int i;
    measuring = 1;
    allocations = 0;
    for (i = 0; i < n; i++) {
        lc_pick pick;
        memset(&pick, 0, sizeof pick);
        if (picker != NULL) {
            CHECK_OK(lc_picker_select(picker, NULL, 0, &pick));
        } else {
            CHECK_OK(lc_pool_select(pool, NULL, 0, &pick));
        }
        CHECK_OK(lc_pick_release(&pick, i % 10 == 0 ? LC_OUTCOME_FAILURE : LC_OUTCOME_SUCCESS));
    }
    measuring = 0;
    return allocations;
}

/* A thread that has never selected: its first select allocates (shows the counter works). */
static void *cold_first_select(void *pool) {
    unsigned long *n = malloc(sizeof *n);
    CHECK(n != NULL);
    *n = picks(pool, NULL, 1);
    return n;
}

int main(void) {
    static const lc_policy policies[] = {LC_POLICY_LEAST_CONN, LC_POLICY_P2C, LC_POLICY_FIRST};
    lc_pool *pool = make_pool(LC_POLICY_LEAST_CONN);
    lc_picker *picker = NULL;
    pthread_t cold;
    void *result;
    size_t p;

    CHECK(pthread_create(&cold, NULL, cold_first_select, pool) == 0);
    CHECK(pthread_join(cold, &result) == 0);
    printf("cold thread's first select: %lu allocations\n", *(unsigned long *)result);
    CHECK(*(unsigned long *)result > 0);
    free(result);
    lc_pool_free(pool);

    lc_thread_warmup();
    for (p = 0; p < 3; p++) {
        unsigned long n;
        pool = make_pool(policies[p]);
        n = picks(pool, NULL, 1000);
        printf("policy %u: 1000 lc_pool_select + lc_pick_release after lc_thread_warmup: %lu allocations\n",
               (unsigned)policies[p], n);
        CHECK(n == 0);
        CHECK_OK(lc_picker_new(pool, 7, &picker));
        n = picks(pool, picker, 1000);
        printf("policy %u: 1000 lc_picker_select + lc_pick_release: %lu allocations\n", (unsigned)policies[p], n);
        CHECK(n == 0);
        lc_picker_free(picker);
        lc_pool_free(pool);
    }
    printf("%lu checks passed\n", checks_passed);
    return 0;
}
