/*
 * Concurrency through the C ABI: worker threads pick and release (pool and per-thread
 * pickers, with exclusions and failures) while another thread refreshes a changing list;
 * then pairs of threads race to release the same pick. Afterwards every counter is back at
 * zero and every pick is accounted for exactly once.
 * Prints "N checks passed" on success.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#define WORKERS 4
#define ROUNDS 20000
#define RACES 2000

/* The list alternates between {A, B, C} and {B, C, D}: A and D come and go. */
static const char *const hosts[] = {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned generation;
static int workers_done;

static lc_status alternating(void *userdata, lc_upstream_list *list) {
    unsigned first, i;
    (void)userdata;
    pthread_mutex_lock(&lock);
    first = generation++ % 2;
    pthread_mutex_unlock(&lock);
    for (i = first; i < first + 3; i++) {
        lc_upstream u = upstream(hosts[i]);
        u.weight = 1 + i % 2;
        u.tag = (void *)(uintptr_t)(i + 1);
        CHECK_OK(lc_upstream_list_push(list, &u));
    }
    return LC_OK;
}

struct worker {
    lc_pool *pool;
    unsigned id;
    unsigned long picks[4]; /* per host, from the pick's tag */
};

static void count(struct worker *w, const lc_pick *p) {
    uintptr_t tag = (uintptr_t)p->tag;
    CHECK(tag >= 1 && tag <= 4);
    CHECK(strcmp(p->address, hosts[tag - 1]) == 0);
    w->picks[tag - 1]++;
}

static void *work(void *arg) {
    struct worker *w = (struct worker *)arg;
    lc_picker *picker = NULL;
    lc_pick held[3];
    unsigned i;
    memset(held, 0, sizeof held);
    CHECK_OK(lc_picker_new(w->pool, 1 + w->id, &picker));
    for (i = 0; i < ROUNDS; i++) {
        lc_pick *p = &held[i % 3];
        if (p->reservation != NULL) {
            CHECK_OK(lc_pick_release(p, i % 7 == 0 ? LC_OUTCOME_FAILURE : LC_OUTCOME_SUCCESS));
        }
        if (i % 2 == 0) {
            CHECK_OK(lc_picker_select(picker, NULL, 0, p));
        } else {
            /* A retry: never the host of the previous pick (B and C are always listed). */
            const lc_pick *prev = &held[(i + 2) % 3];
            uint64_t exclude = prev->reservation != NULL ? prev->host_id : 0;
            CHECK_OK(lc_pool_select(w->pool, &exclude, 1, p));
            CHECK(p->host_id != exclude);
        }
        count(w, p);
    }
    for (i = 0; i < 3; i++) {
        if (held[i].reservation != NULL) CHECK_OK(lc_pick_release(&held[i], LC_OUTCOME_SUCCESS));
    }
    lc_picker_free(picker);
    return NULL;
}

static void *refresh(void *arg) {
    lc_pool *pool = (lc_pool *)arg;
    int done = 0;
    unsigned long refreshes = 0;
    while (!done) {
        lc_refresh_report report;
        CHECK_OK(lc_pool_refresh(pool, &report));
        CHECK(report.upstreams == 3);
        refreshes++;
        pthread_mutex_lock(&lock);
        done = workers_done;
        pthread_mutex_unlock(&lock);
    }
    CHECK(refreshes > 0);
    return NULL;
}

/* Two threads release the same pick at once; exactly one wins. */
struct race {
    pthread_barrier_t start, end;
    lc_pick pick;
    unsigned ok, already;
};

static void *racer(void *arg) {
    struct race *r = (struct race *)arg;
    unsigned i;
    for (i = 0; i < RACES; i++) {
        lc_status s;
        pthread_barrier_wait(&r->start);
        s = lc_pick_release(&r->pick, LC_OUTCOME_SUCCESS);
        CHECK(s == LC_OK || s == LC_ERR_ALREADY_RELEASED);
        pthread_mutex_lock(&lock);
        if (s == LC_OK) r->ok++; else r->already++;
        pthread_mutex_unlock(&lock);
        pthread_barrier_wait(&r->end);
    }
    return NULL;
}

struct totals {
    unsigned long in_flight, picks, hosts;
};

static void sum(void *userdata, const char *address, const lc_host_stats *s) {
    struct totals *t = (struct totals *)userdata;
    (void)address;
    t->in_flight += s->in_flight;
    t->picks += s->picks;
    t->hosts++;
}

int main(void) {
    lc_pool_config config;
    lc_source *source = NULL;
    lc_pool *pool = NULL;
    pthread_t workers[WORKERS], refresher, racers[2];
    struct worker w[WORKERS];
    struct race race;
    struct totals totals;
    unsigned long picked[4] = {0, 0, 0, 0}, total = 0, before;
    unsigned i, j;

    CHECK_OK(lc_pool_config_default(&config));
    config.max_fails = 0; /* failures must not make the pool run out of hosts */
    CHECK_OK(lc_source_callback_new(alternating, NULL, NULL, &source));
    CHECK_OK(lc_pool_new(&config, source, &pool));

    CHECK(pthread_create(&refresher, NULL, refresh, pool) == 0);
    for (i = 0; i < WORKERS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].pool = pool;
        w[i].id = i;
        CHECK(pthread_create(&workers[i], NULL, work, &w[i]) == 0);
    }
    for (i = 0; i < WORKERS; i++) CHECK(pthread_join(workers[i], NULL) == 0);
    pthread_mutex_lock(&lock);
    workers_done = 1;
    pthread_mutex_unlock(&lock);
    CHECK(pthread_join(refresher, NULL) == 0);

    /* Every request is released: nothing in flight on any host, listed or not. */
    for (i = 0; i < WORKERS; i++) {
        for (j = 0; j < 4; j++) picked[j] += w[i].picks[j];
    }
    for (j = 0; j < 4; j++) {
        lc_host_stats s;
        lc_status st = lc_pool_host_stats(pool, hosts[j], &s);
        CHECK(st == LC_OK || st == LC_ERR_NOT_FOUND);
        if (st == LC_OK) CHECK(s.in_flight == 0);
        total += picked[j];
    }
    CHECK(total == (unsigned long)WORKERS * ROUNDS);
    CHECK(picked[1] > 0 && picked[2] > 0);

    /* Two refreshes settle the list on one shape and reclaim the idle hosts that left;
     * B and C were listed all along, so their pick counts are exact. */
    CHECK_OK(lc_pool_refresh(pool, NULL));
    CHECK_OK(lc_pool_refresh(pool, NULL));
    memset(&totals, 0, sizeof totals);
    CHECK_OK(lc_pool_stats(pool, sum, &totals));
    CHECK(totals.hosts == 3 && totals.in_flight == 0);
    {
        lc_host_stats b, c;
        CHECK_OK(lc_pool_host_stats(pool, hosts[1], &b));
        CHECK_OK(lc_pool_host_stats(pool, hosts[2], &c));
        CHECK(b.picks == picked[1] && c.picks == picked[2]);
    }

    /* Racing releases of one pick: one LC_OK per round, the pick count moves by one. */
    memset(&totals, 0, sizeof totals);
    CHECK_OK(lc_pool_stats(pool, sum, &totals));
    before = totals.picks;
    memset(&race, 0, sizeof race);
    CHECK(pthread_barrier_init(&race.start, NULL, 3) == 0);
    CHECK(pthread_barrier_init(&race.end, NULL, 3) == 0);
    for (i = 0; i < 2; i++) CHECK(pthread_create(&racers[i], NULL, racer, &race) == 0);
    for (i = 0; i < RACES; i++) {
        CHECK_OK(lc_pool_select(pool, NULL, 0, &race.pick));
        pthread_barrier_wait(&race.start);
        pthread_barrier_wait(&race.end);
        CHECK(race.pick.reservation == NULL);
    }
    for (i = 0; i < 2; i++) CHECK(pthread_join(racers[i], NULL) == 0);
    CHECK(race.ok == RACES && race.already == RACES);
    memset(&totals, 0, sizeof totals);
    CHECK_OK(lc_pool_stats(pool, sum, &totals));
    CHECK(totals.in_flight == 0 && totals.picks == before + RACES);
    pthread_barrier_destroy(&race.start);
    pthread_barrier_destroy(&race.end);

    lc_pool_free(pool);
    printf("%lu checks passed\n", checks_passed);
    return 0;
}
