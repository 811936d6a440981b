/*
 * ngx_http_upstream_leastconn_module: upstream balancing through libleastconn.
 *
 *     upstream app {
 *         leastconn;
 *         server 10.0.0.1:8080 weight=2 max_conns=100 max_fails=3;
 *         server 10.0.0.2:8080;
 *         server 10.0.0.3:8080 backup;
 *     }
 *     location = /leastconn { leastconn_status; }
 *
 * Data flow: at configuration time (in the master) every address of every
 * `server` line becomes one `lc_upstream` whose tag points to that address's
 * sockaddr; the library validates the list, so that `nginx -t` reports bad
 * values. Each worker builds its own pool and picker from that list in
 * init_process (no library state crosses the fork, and the library starts no
 * thread), so in-flight counts are per worker, like nginx's own least_conn
 * without a `zone`. A request reserves a host in `get`, excluding the hosts it
 * already tried, and releases it in `free` with the outcome. A reload starts
 * new workers with new pools; old workers finish their requests on their old
 * pools and free them on exit.
 *
 * With `zone NAME SIZE;` in the upstream block (the standard directive, which
 * this module takes over from the upstream-zone module at init_main_conf),
 * host state lives in nginx shared memory instead: the master makes the zone
 * (or, on a reload with the same name and size, attaches to the old one, so
 * counts carry over), each worker builds its pool on it with
 * lc_pool_new_in_zone, and max_conns, max_fails/fail_timeout and down hold
 * across all workers. A 1 s timer per zone in every worker returns what dead
 * workers held (lc_zone_sweep). docs/design-zone.md, section 7.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "leastconn.h"


/* One address of one `server` line: what a pick's tag points to. */
typedef struct {
    ngx_str_t                        name;      /* as nginx prints it */
    struct sockaddr                 *sockaddr;
    socklen_t                        socklen;
    u_char                          *address;   /* library's, NUL-ended */
    ngx_uint_t                       down;      /* unsigned down:1 */
    ngx_uint_t                       failures;  /* this worker's total */
#if (NGX_HTTP_SSL)
    ngx_ssl_session_t               *ssl_session; /* this worker's, to reuse */
#endif
} ngx_http_upstream_lc_peer_t;


/* A `zone` taken over by leastconn upstreams (one per shared memory zone). */
typedef struct {
    ngx_shm_zone_t                  *shm_zone;
    ngx_cycle_t                     *cycle;     /* the cycle being configured */
    lc_zone                         *zone;      /* made or attached in init */
    ngx_uint_t                       keys;      /* addresses over its upstreams */
    ngx_uint_t                       upstreams; /* leastconn upstreams on it */
    size_t                           longest;   /* longest key: name NUL address */
    ngx_uint_t                       max_fails; /* largest over its upstreams */
    ngx_event_t                      sweep;     /* each worker's 1 s timer */
} ngx_http_upstream_lc_zone_t;


typedef struct {
    ngx_str_t                        name;      /* the upstream block's */
    ngx_uint_t                       used;      /* `leastconn` in the block */
    u_char                          *cname;     /* name, NUL-ended */
    ngx_http_upstream_lc_zone_t     *zone;      /* NULL without `zone` */
    ngx_http_upstream_lc_peer_t     *peers;
    lc_upstream                     *upstreams; /* tags: &peers[i] */
    ngx_uint_t                       npeers;
    lc_pool_config                   config;

    /* This worker's pool, made in init_process and freed in exit_process. */
    lc_pool                         *pool;
    lc_picker                       *picker;
} ngx_http_upstream_lc_srv_conf_t;


typedef struct {
    ngx_array_t                      upstreams; /* srv_conf_t pointers */
} ngx_http_upstream_lc_main_conf_t;


/* Per request. */
typedef struct {
    ngx_http_upstream_lc_srv_conf_t *conf;
    lc_pick                          pick;
    ngx_http_upstream_lc_peer_t     *peer;      /* picked, or NULL */
    uint64_t                        *tried;     /* host ids tried */
    ngx_uint_t                       ntried;
} ngx_http_upstream_lc_peer_data_t;


static void *ngx_http_upstream_lc_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_upstream_lc_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_upstream_leastconn(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_upstream_leastconn_status(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_upstream_init_lc(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_upstream_init_lc_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_upstream_get_lc_peer(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_upstream_free_lc_peer(ngx_peer_connection_t *pc,
    void *data, ngx_uint_t state);
#if (NGX_HTTP_SSL)
static ngx_int_t ngx_http_upstream_lc_set_session(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_upstream_lc_save_session(ngx_peer_connection_t *pc,
    void *data);
#endif
static ngx_int_t ngx_http_upstream_lc_init_process(ngx_cycle_t *cycle);
static void ngx_http_upstream_lc_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_upstream_lc_status_handler(ngx_http_request_t *r);
#if (NGX_HTTP_UPSTREAM_ZONE)
static ngx_int_t ngx_http_upstream_lc_take_zone(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us, ngx_http_upstream_lc_srv_conf_t *lcf);
static ngx_int_t ngx_http_upstream_lc_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
#endif


static ngx_command_t  ngx_http_upstream_lc_commands[] = {

    { ngx_string("leastconn"),
      NGX_HTTP_UPS_CONF|NGX_CONF_NOARGS,
      ngx_http_upstream_leastconn,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("leastconn_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_upstream_leastconn_status,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_upstream_lc_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_upstream_lc_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_upstream_lc_create_srv_conf,  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_upstream_leastconn_module = {
    NGX_MODULE_V1,
    &ngx_http_upstream_lc_module_ctx,      /* module context */
    ngx_http_upstream_lc_commands,         /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_upstream_lc_init_process,     /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_upstream_lc_exit_process,     /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_upstream_lc_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_upstream_lc_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_upstream_lc_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&lmcf->upstreams, cf->pool, 4,
                       sizeof(ngx_http_upstream_lc_srv_conf_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return lmcf;
}


static void *
ngx_http_upstream_lc_create_srv_conf(ngx_conf_t *cf)
{
    /* Zeroed: pool, picker and peers stay NULL unless `leastconn` is used. */
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_upstream_lc_srv_conf_t));
}


static char *
ngx_http_upstream_leastconn(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_upstream_srv_conf_t  *uscf;

    uscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module);

    if (uscf->peer.init_upstream) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "load balancing method redefined");
    }

    uscf->peer.init_upstream = ngx_http_upstream_init_lc;
    ((ngx_http_upstream_lc_srv_conf_t *) conf)->used = 1;

    uscf->flags = NGX_HTTP_UPSTREAM_CREATE
                  |NGX_HTTP_UPSTREAM_WEIGHT
                  |NGX_HTTP_UPSTREAM_MAX_CONNS
                  |NGX_HTTP_UPSTREAM_MAX_FAILS
                  |NGX_HTTP_UPSTREAM_FAIL_TIMEOUT
                  |NGX_HTTP_UPSTREAM_DOWN
                  |NGX_HTTP_UPSTREAM_BACKUP;

    return NGX_CONF_OK;
}


/*
 * The library's dial address for an nginx address: the same text for IP
 * addresses (`1.2.3.4:80`, `[::1]:80`), `unix/PATH` for nginx's `unix:PATH`.
 */
static u_char *
ngx_http_upstream_lc_address(ngx_pool_t *pool, ngx_str_t *name)
{
    u_char  *p, *dst;
    size_t   skip;

    skip = 0;
    if (name->len > 5 && ngx_strncmp(name->data, "unix:", 5) == 0) {
        skip = 5;
    }

    dst = ngx_pnalloc(pool, name->len + 1);
    if (dst == NULL) {
        return NULL;
    }

    p = dst;
    if (skip) {
        p = ngx_cpymem(p, "unix/", 5);
    }

    p = ngx_cpymem(p, name->data + skip, name->len - skip);
    *p = '\0';

    return dst;
}


static ngx_int_t
ngx_http_upstream_init_lc(ngx_conf_t *cf, ngx_http_upstream_srv_conf_t *us)
{
    size_t                            len;
    ngx_uint_t                        i, j, n;
    lc_status                         rc;
    lc_source                        *source;
    lc_pool                          *pool;
    lc_upstream                      *u;
    ngx_http_upstream_server_t       *server, *first;
    ngx_http_upstream_lc_peer_t      *peer;
    ngx_http_upstream_lc_srv_conf_t  *lcf, **slot;
    ngx_http_upstream_lc_main_conf_t *lmcf;

    lcf = ngx_http_conf_upstream_srv_conf(us,
                                          ngx_http_upstream_leastconn_module);
    lcf->name = us->host;

    if (us->servers == NULL || us->servers->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "leastconn: no servers in upstream \"%V\"",
                           &us->host);
        return NGX_ERROR;
    }

    lcf->cname = ngx_pnalloc(cf->pool, us->host.len + 1);
    if (lcf->cname == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(lcf->cname, us->host.data, us->host.len) = '\0';

#if (NGX_HTTP_UPSTREAM_ZONE)
    if (us->shm_zone && ngx_http_upstream_lc_take_zone(cf, us, lcf)
                        != NGX_OK)
    {
        return NGX_ERROR;
    }
#endif

    server = us->servers->elts;

    n = 0;
    for (i = 0; i < us->servers->nelts; i++) {
        n += server[i].naddrs;
    }

    if (n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "leastconn: no addresses in upstream \"%V\"",
                           &us->host);
        return NGX_ERROR;
    }

    lcf->peers = ngx_pcalloc(cf->pool,
                             n * sizeof(ngx_http_upstream_lc_peer_t));
    lcf->upstreams = ngx_pcalloc(cf->pool, n * sizeof(lc_upstream));
    if (lcf->peers == NULL || lcf->upstreams == NULL) {
        return NGX_ERROR;
    }

    /*
     * Passive health is one setting per pool in the library, one per server
     * in nginx: when the servers disagree, the first server's values apply.
     */
    first = &server[0];
    for (i = 1; i < us->servers->nelts; i++) {
        if (server[i].max_fails != first->max_fails
            || server[i].fail_timeout != first->fail_timeout)
        {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "leastconn: servers of upstream \"%V\" differ "
                               "in max_fails or fail_timeout; the first "
                               "server's (max_fails=%ui fail_timeout=%Ts) "
                               "apply to all", &us->host,
                               first->max_fails, first->fail_timeout);
            break;
        }
    }

    if (first->max_fails > LC_MAX_FAILS_LIMIT) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "leastconn: max_fails=%ui in upstream \"%V\" is "
                           "above %d", first->max_fails, &us->host,
                           LC_MAX_FAILS_LIMIT);
        return NGX_ERROR;
    }

    for (i = 0; i < us->servers->nelts; i++) {
        if (server[i].weight > LC_MAX_WEIGHT
            || server[i].max_conns > LC_MAX_REQUESTS_LIMIT)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "leastconn: server \"%V\" in upstream \"%V\" "
                               "has weight above %d or max_conns above %d",
                               &server[i].name, &us->host, LC_MAX_WEIGHT,
                               LC_MAX_REQUESTS_LIMIT);
            return NGX_ERROR;
        }
    }

    if (lc_pool_config_default(&lcf->config) != LC_OK) {
        return NGX_ERROR;
    }

    lcf->config.policy = LC_POLICY_LEAST_CONN;
    lcf->config.max_fails = (uint32_t) first->max_fails;
    lcf->config.fail_duration_ms = (uint64_t) first->fail_timeout * 1000;
    if (lcf->config.fail_duration_ms == 0) {
        /* fail_timeout=0: no window to count failures in: no passive health */
        lcf->config.max_fails = 0;
    }

    n = 0;
    for (i = 0; i < us->servers->nelts; i++) {
        for (j = 0; j < server[i].naddrs; j++) {
            peer = &lcf->peers[n];
            u = &lcf->upstreams[n];

            peer->name = server[i].addrs[j].name;
            peer->sockaddr = server[i].addrs[j].sockaddr;
            peer->socklen = server[i].addrs[j].socklen;
            peer->down = server[i].down;
            peer->address = ngx_http_upstream_lc_address(cf->pool, &peer->name);
            if (peer->address == NULL) {
                return NGX_ERROR;
            }

            u->address = (const char *) peer->address;
            u->weight = (uint32_t) server[i].weight;
            u->max_requests = (uint32_t) server[i].max_conns;
            u->tier = server[i].backup ? 1 : 0;
            u->tag = peer;

            n++;
        }
    }

    lcf->npeers = n;

    if (lcf->zone) {
        lcf->zone->keys += n;
        lcf->zone->upstreams++;
        if (first->max_fails > lcf->zone->max_fails) {
            lcf->zone->max_fails = first->max_fails;
        }

        for (i = 0; i < n; i++) {
            len = us->host.len + 1
                  + ngx_strlen(lcf->peers[i].address);
            if (len > lcf->zone->longest) {
                lcf->zone->longest = len;
            }
        }
    }

    /*
     * Validate everything now, so that `nginx -t` and a reload with a bad
     * value fail in the master instead of in every worker. The library starts
     * no thread for this.
     */
    rc = lc_source_static_new(lcf->upstreams, lcf->npeers, &source);
    if (rc == LC_OK) {
        rc = lc_pool_new(&lcf->config, source, &pool);
        if (rc == LC_OK) {
            lc_pool_free(pool);
        }
    }

    if (rc != LC_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "leastconn: invalid upstream \"%V\": %s",
                           &us->host, lc_status_str(rc));
        return NGX_ERROR;
    }

    us->peer.init = ngx_http_upstream_init_lc_peer;

    lmcf = ngx_http_conf_get_module_main_conf(cf,
                                          ngx_http_upstream_leastconn_module);
    slot = ngx_array_push(&lmcf->upstreams);
    if (slot == NULL) {
        return NGX_ERROR;
    }

    *slot = lcf;

    return NGX_OK;
}

#if (NGX_HTTP_UPSTREAM_ZONE)

/*
 * `zone NAME SIZE;` in a leastconn upstream: the upstream-zone module parsed
 * it (its directive comes first) and made the shared memory with its own init
 * and noreuse; take it over (docs/design-zone.md, section 7). Runs at
 * init_main_conf, after parsing and before the cycle creates the zones.
 */
static ngx_int_t
ngx_http_upstream_lc_take_zone(ngx_conf_t *cf,
    ngx_http_upstream_srv_conf_t *us, ngx_http_upstream_lc_srv_conf_t *lcf)
{
    ngx_uint_t                        i;
    ngx_shm_zone_t                   *shm_zone;
    ngx_http_upstream_lc_zone_t      *ctx;
    ngx_http_upstream_lc_srv_conf_t  *other;
    ngx_http_upstream_srv_conf_t  **uscfp;
    ngx_http_upstream_main_conf_t  *umcf;

    shm_zone = us->shm_zone;

    if (shm_zone->shm.size == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "leastconn: zone \"%V\" of upstream \"%V\" has no "
                           "size", &shm_zone->shm.name, &us->host);
        return NGX_ERROR;
    }

    /*
     * Our init would leave another balancer's peers out of the zone. (Not
     * peer.init_upstream: `keepalive` replaces it with its own.)
     */
    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    uscfp = umcf->upstreams.elts;
    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if (uscfp[i]->shm_zone != shm_zone) {
            continue;
        }

        other = uscfp[i]->srv_conf
                ? ngx_http_conf_upstream_srv_conf(uscfp[i],
                                          ngx_http_upstream_leastconn_module)
                : NULL;
        if (other == NULL || !other->used) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "leastconn: zone \"%V\" of upstream \"%V\" is "
                               "also used by upstream \"%V\", which does not "
                               "use leastconn", &shm_zone->shm.name,
                               &us->host, &uscfp[i]->host);
            return NGX_ERROR;
        }
    }

    if (shm_zone->init == ngx_http_upstream_lc_init_zone) {
        /* Another leastconn upstream took it over: share its context. */
        ctx = shm_zone->data;

    } else {
        ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_upstream_lc_zone_t));
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        ctx->shm_zone = shm_zone;
        ctx->cycle = cf->cycle;
        shm_zone->init = ngx_http_upstream_lc_init_zone;
        shm_zone->data = ctx;
        shm_zone->noreuse = 0;
    }

    lcf->zone = ctx;

    /*
     * NULL keeps the upstream-zone module (and round robin) away from this
     * upstream, whose peers are not round-robin peers.
     */
    us->shm_zone = NULL;

    return NGX_OK;
}


/* The capacities this configuration needs in zone `ctx`, hosts aside. */
static void
ngx_http_upstream_lc_zone_needs(ngx_http_upstream_lc_zone_t *ctx,
    lc_zone_capacity *caps)
{
    size_t            bytes;
    ngx_uint_t        procs;
    ngx_core_conf_t  *ccf;

    ccf = (ngx_core_conf_t *) ngx_get_conf(ctx->cycle->conf_ctx,
                                           ngx_core_module);

    /* Two generations of workers during a reload, plus respawns. */
    procs = 4 * (ccf->worker_processes > 0 ? (ngx_uint_t) ccf->worker_processes
                                           : 1);
    if (procs < 32) {
        procs = 32;
    }

    bytes = ngx_align(ctx->longest + 1, 8);

    caps->hosts = 0;
    caps->address_bytes = (uint32_t) ngx_max(bytes, 64);
    caps->fail_ring = (uint32_t) ngx_max(ctx->max_fails, 1);
    caps->processes = (uint32_t) procs;
    /*
     * Thread records: each process takes one when it registers (its spare)
     * and each worker one per picker, i.e. per leastconn upstream on the zone.
     */
    caps->threads = (uint32_t) (procs * (1 + ctx->upstreams));
}


/*
 * In the master, when the cycle creates (data == NULL) or reuses (data: the
 * old cycle's context, never dereferenced) the shared memory.
 */
static ngx_int_t
ngx_http_upstream_lc_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_upstream_lc_zone_t  *ctx = shm_zone->data;

    u_char            *p, *start, *end;
    size_t             size, avail, overhead;
    lc_status          rc;
    lc_zone_capacity   need, caps;
    ngx_slab_pool_t   *shpool;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    start = shm_zone->shm.addr;
    end = start + shm_zone->shm.size;

    ngx_http_upstream_lc_zone_needs(ctx, &need);

    if (data) {
        /* Same name and size as before a reload: attach to the old zone. */
        p = shpool->data;
        if (p < start || p >= end
            || lc_zone_from_memory(p, end - p, NULL, LC_ZONE_ATTACH,
                                   &ctx->zone)
               != LC_OK)
        {
            ctx->zone = NULL;
            goto another;
        }

        if (lc_zone_capacity_of(ctx->zone, &caps) != LC_OK
            || caps.address_bytes < need.address_bytes
            || caps.fail_ring < need.fail_ring
            || caps.processes < need.processes
            || caps.threads < need.threads
            || caps.hosts < 2 * ctx->keys)
        {
            lc_zone_free(ctx->zone);
            ctx->zone = NULL;
            goto another;
        }

        return NGX_OK;
    }

    /* The slab allocator's own use: its header, a page header per page. */
    overhead = sizeof(ngx_slab_pool_t)
               + (shm_zone->shm.size / ngx_pagesize) * sizeof(ngx_slab_page_t)
               + 2 * ngx_pagesize;
    avail = shm_zone->shm.size > overhead ? shm_zone->shm.size - overhead : 0;

    caps = need;
    rc = lc_zone_capacity_fit(avail, &caps);
    if (rc != LC_OK) {
        caps.hosts = 0;
    }

    p = NULL;
    size = 0;
    while (caps.hosts > 0 && caps.hosts >= 2 * ctx->keys) {
        size = lc_zone_size(&caps);
        p = size ? ngx_slab_alloc(shpool, size) : NULL;
        if (p != NULL) {
            break;
        }

        caps.hosts -= ngx_max(caps.hosts / 16, 1);
    }

    if (p == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "leastconn: zone \"%V\" too small: %uz bytes hold "
                      "fewer than the %ui hosts its %ui addresses need "
                      "(twice as many, for reloads)", &shm_zone->shm.name,
                      shm_zone->shm.size, 2 * ctx->keys, ctx->keys);
        return NGX_ERROR;
    }

    ngx_memzero(p, size);

    rc = lc_zone_from_memory(p, size, &caps, LC_ZONE_CREATE, &ctx->zone);
    if (rc != LC_OK) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "leastconn: cannot make zone \"%V\": %s",
                      &shm_zone->shm.name, lc_status_str(rc));
        return NGX_ERROR;
    }

    shpool->data = p;

    return NGX_OK;

another:

    ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                  "leastconn: zone \"%V\" was made for another "
                  "configuration or balancer; change its size or name",
                  &shm_zone->shm.name);
    return NGX_ERROR;
}

#endif


static ngx_int_t
ngx_http_upstream_lc_build(ngx_cycle_t *cycle,
    ngx_http_upstream_lc_srv_conf_t *lcf)
{
    ngx_uint_t   i;
    lc_status    rc;
    lc_source   *source;

    rc = lc_source_static_new(lcf->upstreams, lcf->npeers, &source);
    if (rc == LC_OK && lcf->zone) {
        rc = lc_pool_new_in_zone(&lcf->config, lcf->zone->zone,
                                 (const char *) lcf->cname, source,
                                 &lcf->pool);

    } else if (rc == LC_OK) {
        rc = lc_pool_new(&lcf->config, source, &lcf->pool);
    }

    if (rc == LC_OK) {
        /* Seed 0: a random seed per worker; workers break ties differently. */
        rc = lc_picker_new(lcf->pool, 0, &lcf->picker);
    }

    for (i = 0; rc == LC_OK && i < lcf->npeers; i++) {
        if (lcf->zone) {
            /*
             * The flag is shared: set it both ways, so that a reload that
             * drops `down` brings the host back.
             */
            rc = lc_pool_set_down(lcf->pool,
                                  (const char *) lcf->peers[i].address,
                                  lcf->peers[i].down ? 1 : 0);

        } else if (lcf->peers[i].down) {
            rc = lc_pool_set_down(lcf->pool,
                                  (const char *) lcf->peers[i].address, 1);
        }
    }

    if (rc != LC_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "leastconn: cannot build the pool of upstream \"%V\": %s",
                      &lcf->name, lc_status_str(rc));
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_upstream_lc_log(void *userdata, lc_log_level level,
    const char *message)
{
    ngx_uint_t  nginx_level;

    switch (level) {
    case LC_LOG_ERROR:
        nginx_level = NGX_LOG_ERR;
        break;
    case LC_LOG_WARN:
        nginx_level = NGX_LOG_WARN;
        break;
    case LC_LOG_INFO:
        nginx_level = NGX_LOG_INFO;
        break;
    default:
        nginx_level = NGX_LOG_DEBUG;
        break;
    }

    /* Only the worker's own thread calls the library: the log is safe. */
    ngx_log_error(nginx_level, ngx_cycle->log, 0, "leastconn: %s", message);
}


/* Each worker, every second: return what dead workers held. */
static void
ngx_http_upstream_lc_sweep(ngx_event_t *ev)
{
    ngx_http_upstream_lc_zone_t  *ctx = ev->data;

    lc_status              rc;
    lc_zone_sweep_report   report;

    rc = lc_zone_sweep(ctx->zone, &report);
    if (rc != LC_OK) {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "leastconn: sweep of zone \"%V\" failed: %s",
                      &ctx->shm_zone->shm.name, lc_status_str(rc));

    } else if (report.processes) {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "leastconn: zone \"%V\": %uD dead process(es) swept, "
                      "%uL in flight recovered, %uL in doubt",
                      &ctx->shm_zone->shm.name, report.processes,
                      report.recovered, report.in_doubt);
    }

    if (!ngx_exiting) {
        ngx_add_timer(ev, 1000);
    }
}


static ngx_int_t
ngx_http_upstream_lc_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                         i;
    ngx_http_upstream_lc_zone_t       *ctx;
    ngx_http_upstream_lc_srv_conf_t  **lcfp;
    ngx_http_upstream_lc_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                          ngx_http_upstream_leastconn_module);
    if (lmcf == NULL || lmcf->upstreams.nelts == 0) {
        return NGX_OK;
    }

    if (lc_log_set_callback(ngx_http_upstream_lc_log, NULL, LC_LOG_INFO)
        != LC_OK)
    {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "leastconn: library messages will not be logged");
    }

    lcfp = lmcf->upstreams.elts;
    for (i = 0; i < lmcf->upstreams.nelts; i++) {
        if (ngx_http_upstream_lc_build(cycle, lcfp[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* One sweep timer per zone (the first upstream on it arms it). */
    for (i = 0; i < lmcf->upstreams.nelts; i++) {
        ctx = lcfp[i]->zone;
        if (ctx == NULL || ctx->sweep.handler) {
            continue;
        }

        ctx->sweep.handler = ngx_http_upstream_lc_sweep;
        ctx->sweep.data = ctx;
        ctx->sweep.log = cycle->log;
        ctx->sweep.cancelable = 1;
        ngx_add_timer(&ctx->sweep, 1000);
    }

    return NGX_OK;
}


static void
ngx_http_upstream_lc_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                         i;
    ngx_http_upstream_lc_srv_conf_t  **lcfp;
    ngx_http_upstream_lc_main_conf_t  *lmcf;
#if (NGX_HTTP_SSL)
    ngx_uint_t                         j;
#endif

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                          ngx_http_upstream_leastconn_module);
    if (lmcf == NULL) {
        return;
    }

    /* Requests have all ended; a pick still out would stay valid anyway. */
    lcfp = lmcf->upstreams.elts;
    for (i = 0; i < lmcf->upstreams.nelts; i++) {
#if (NGX_HTTP_SSL)
        for (j = 0; j < lcfp[i]->npeers; j++) {
            if (lcfp[i]->peers[j].ssl_session) {
                ngx_ssl_free_session(lcfp[i]->peers[j].ssl_session);
                lcfp[i]->peers[j].ssl_session = NULL;
            }
        }
#endif
        lc_picker_free(lcfp[i]->picker);
        lc_pool_free(lcfp[i]->pool);
        lcfp[i]->picker = NULL;
        lcfp[i]->pool = NULL;
    }
}


static ngx_int_t
ngx_http_upstream_init_lc_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_http_upstream_lc_srv_conf_t   *lcf;
    ngx_http_upstream_lc_peer_data_t  *pd;

    lcf = ngx_http_conf_upstream_srv_conf(us,
                                          ngx_http_upstream_leastconn_module);
    if (lcf->picker == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "leastconn: upstream \"%V\" has no pool in this process",
                      &lcf->name);
        return NGX_ERROR;
    }

    pd = ngx_pcalloc(r->pool, sizeof(ngx_http_upstream_lc_peer_data_t));
    if (pd == NULL) {
        return NGX_ERROR;
    }

    pd->tried = ngx_palloc(r->pool, lcf->npeers * sizeof(uint64_t));
    if (pd->tried == NULL) {
        return NGX_ERROR;
    }

    pd->conf = lcf;

    r->upstream->peer.data = pd;
    r->upstream->peer.get = ngx_http_upstream_get_lc_peer;
    r->upstream->peer.free = ngx_http_upstream_free_lc_peer;
#if (NGX_HTTP_SSL)
    /* nginx calls these unchecked when proxy_ssl_session_reuse is on. */
    r->upstream->peer.set_session = ngx_http_upstream_lc_set_session;
    r->upstream->peer.save_session = ngx_http_upstream_lc_save_session;
#endif
    /* Every try excludes one more host: at most as many tries as entries. */
    r->upstream->peer.tries = lcf->npeers;

    return NGX_OK;
}


static ngx_int_t
ngx_http_upstream_get_lc_peer(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_upstream_lc_peer_data_t  *pd = data;

    lc_status                     rc;
    ngx_http_upstream_lc_peer_t  *peer;

    pc->cached = 0;
    pc->connection = NULL;

    rc = lc_picker_select(pd->conf->picker, pd->tried, pd->ntried, &pd->pick);

    if (rc == LC_ERR_NO_UPSTREAM) {
        /* nginx logs "no live upstreams" for NGX_BUSY. */
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, pc->log, 0,
                       "leastconn: no upstream available in \"%V\" "
                       "(%ui tried)", &pd->conf->name, pd->ntried);
        pc->name = &pd->conf->name;
        return NGX_BUSY;
    }

    if (rc != LC_OK) {
        ngx_log_error(NGX_LOG_ALERT, pc->log, 0,
                      "leastconn: select in \"%V\" failed: %s",
                      &pd->conf->name, lc_status_str(rc));
        return NGX_ERROR;
    }

    peer = pd->pick.tag;
    pd->peer = peer;

    if (pd->ntried < pd->conf->npeers) {
        pd->tried[pd->ntried++] = pd->pick.host_id;
    }

    pc->sockaddr = peer->sockaddr;
    pc->socklen = peer->socklen;
    pc->name = &peer->name;

    return NGX_OK;
}


static void
ngx_http_upstream_free_lc_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state)
{
    ngx_http_upstream_lc_peer_data_t  *pd = data;

    lc_outcome  outcome;

    outcome = (state & NGX_PEER_FAILED) ? LC_OUTCOME_FAILURE
                                        : LC_OUTCOME_SUCCESS;

    if ((pd->conf->zone
         ? lc_picker_release(pd->conf->picker, &pd->pick, outcome)
         : lc_pick_release(&pd->pick, outcome)) == LC_OK
        && outcome == LC_OUTCOME_FAILURE && pd->peer != NULL)
    {
        pd->peer->failures++;
    }

    pd->peer = NULL;

    if (pc->tries) {
        pc->tries--;
    }
}


#if (NGX_HTTP_SSL)

/* TLS sessions are kept per address and per worker, as round robin does. */

static ngx_int_t
ngx_http_upstream_lc_set_session(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_upstream_lc_peer_data_t  *pd = data;

    if (pd->peer == NULL || pd->peer->ssl_session == NULL) {
        return NGX_OK;
    }

    return ngx_ssl_set_session(pc->connection, pd->peer->ssl_session);
}


static void
ngx_http_upstream_lc_save_session(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_upstream_lc_peer_data_t  *pd = data;

    ngx_ssl_session_t  *session, *old;

    if (pd->peer == NULL) {
        return;
    }

    session = ngx_ssl_get_session(pc->connection);
    if (session == NULL) {
        return;
    }

    old = pd->peer->ssl_session;
    pd->peer->ssl_session = session;

    if (old) {
        ngx_ssl_free_session(old);
    }
}

#endif


/*
 * The status page, as JSON: every leastconn upstream as this worker sees it.
 * Without a zone the counts are this worker's own and "failures" is this
 * worker's count of failed releases. With one, every worker shows the same:
 * each host's in_flight, picks, recent_failures and flags are the zone's,
 * "failures" counts the failures every worker recorded (lc_zone_hosts), and
 * "doubt" the units kept in in_flight for a worker killed inside a pick or
 * release (docs/design-zone.md 4.4); a "zone" object gives the zone-wide view.
 */

/* One host of an upstream on a zone, as lc_zone_hosts() reported it. */
typedef struct {
    u_char                           *address;  /* NUL-ended */
    lc_zone_host                      host;
} ngx_http_upstream_lc_zone_host_t;

typedef struct {
    ngx_http_request_t               *request;
    ngx_http_upstream_lc_srv_conf_t  *conf;
    ngx_chain_t                     **last;
    ngx_uint_t                        hosts;
    ngx_int_t                         rc;
    ngx_array_t                      *zone_hosts;  /* NULL without a zone */
} ngx_http_upstream_lc_status_ctx_t;


static ngx_int_t
ngx_http_upstream_lc_status_append(ngx_http_upstream_lc_status_ctx_t *ctx,
    ngx_buf_t *b)
{
    ngx_chain_t  *cl;

    cl = ngx_alloc_chain_link(ctx->request->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;
    *ctx->last = cl;
    ctx->last = &cl->next;

    return NGX_OK;
}


static ngx_int_t
ngx_http_upstream_lc_status_text(ngx_http_upstream_lc_status_ctx_t *ctx,
    const char *text, ngx_str_t *json)
{
    size_t      len, escaped;
    ngx_buf_t  *b;

    len = ngx_strlen(text);
    escaped = len + ngx_escape_json(NULL, (u_char *) text, len);

    b = ngx_create_temp_buf(ctx->request->pool,
                            escaped + (json ? json->len : 0) + 2);
    if (b == NULL) {
        return NGX_ERROR;
    }

    *b->last++ = '"';
    b->last = (u_char *) ngx_escape_json(b->last, (u_char *) text, len);
    *b->last++ = '"';
    if (json) {
        b->last = ngx_cpymem(b->last, json->data, json->len);
    }

    return ngx_http_upstream_lc_status_append(ctx, b);
}


static ngx_int_t
ngx_http_upstream_lc_status_literal(ngx_http_upstream_lc_status_ctx_t *ctx,
    const char *text)
{
    ngx_buf_t  *b;

    b = ngx_calloc_buf(ctx->request->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = (u_char *) text;
    b->last = b->pos + ngx_strlen(text);
    b->memory = 1;

    return ngx_http_upstream_lc_status_append(ctx, b);
}


static void
ngx_http_upstream_lc_status_host(void *userdata, const char *address,
    const lc_host_stats *stats)
{
    ngx_http_upstream_lc_status_ctx_t *ctx = userdata;

    u_char                            buf[512], dbuf[32];
    ngx_str_t                         json, doubt;
    ngx_uint_t                        i;
    uint64_t                          failures;
    ngx_http_upstream_lc_zone_host_t *zh;

    if (ctx->rc != NGX_OK) {
        return;
    }

    ngx_str_null(&doubt);
    failures = 0;
    if (ctx->zone_hosts) {
        /* This worker lists the host, so the zone has its slot. */
        zh = ctx->zone_hosts->elts;
        for (i = 0; i < ctx->zone_hosts->nelts; i++) {
            if (ngx_strcmp(zh[i].address, address) == 0) {
                failures = zh[i].host.failures;
                doubt.data = dbuf;
                doubt.len = ngx_snprintf(dbuf, sizeof(dbuf), ",\"doubt\":%uD",
                                         zh[i].host.doubt)
                            - dbuf;
                break;
            }
        }

    } else {
        for (i = 0; i < ctx->conf->npeers; i++) {
            if (ngx_strcmp(ctx->conf->peers[i].address, address) == 0) {
                failures += ctx->conf->peers[i].failures;
            }
        }
    }

    json.data = buf;
    json.len = ngx_snprintf(buf, sizeof(buf),
                            ",\"in_flight\":%uD,\"picks\":%uL,\"failures\":%uL%V,"
                            "\"recent_failures\":%uD,\"max_requests\":%uD,"
                            "\"down\":%s,\"unhealthy\":%s,\"full\":%s}",
                            stats->in_flight, stats->picks, failures, &doubt,
                            stats->recent_failures, stats->max_requests,
                            stats->down ? "true" : "false",
                            stats->unhealthy ? "true" : "false",
                            stats->full ? "true" : "false")
               - buf;

    if (ngx_http_upstream_lc_status_literal(ctx, ctx->hosts ? ",{\"address\":"
                                                            : "{\"address\":")
        != NGX_OK
        || ngx_http_upstream_lc_status_text(ctx, address, &json) != NGX_OK)
    {
        ctx->rc = NGX_ERROR;
        return;
    }

    ctx->hosts++;
}

/* Keeps the hosts of the upstream being shown (ctx->conf) from lc_zone_hosts(). */
static void
ngx_http_upstream_lc_status_zone_host(void *userdata, const char *pool,
    const char *address, const lc_zone_host *host)
{
    ngx_http_upstream_lc_status_ctx_t *ctx = userdata;

    size_t                             len;
    ngx_http_upstream_lc_zone_host_t  *zh;

    if (ctx->rc != NGX_OK
        || ngx_strcmp(pool, ctx->conf->cname) != 0)
    {
        return;
    }

    zh = ngx_array_push(ctx->zone_hosts);
    len = ngx_strlen(address);
    if (zh == NULL
        || (zh->address = ngx_pnalloc(ctx->request->pool, len + 1)) == NULL)
    {
        ctx->rc = NGX_ERROR;
        return;
    }

    ngx_memcpy(zh->address, address, len + 1);
    zh->host = *host;
}

/*
 * `,"zone":{...}` of an upstream on a zone: the zone-wide view that every
 * worker shares (lc_zone_stats).
 */
static ngx_int_t
ngx_http_upstream_lc_status_zone(ngx_http_upstream_lc_status_ctx_t *ctx,
    ngx_http_upstream_lc_zone_t *zone)
{
    u_char              *name, *p;
    ngx_buf_t           *b;
    ngx_str_t            json;
    ngx_uint_t           i;
    lc_zone_capacity     caps;
    lc_zone_statistics   st;
    ngx_pool_t          *pool = ctx->request->pool;

    if (lc_zone_capacity_of(zone->zone, &caps) != LC_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&st, sizeof(st));
    st.processes_cap = caps.processes;
    st.processes = ngx_palloc(pool, caps.processes * sizeof(lc_zone_process));
    if (st.processes == NULL
        || lc_zone_stats(zone->zone, &st) != LC_OK)
    {
        return NGX_ERROR;
    }

    name = ngx_pnalloc(pool, zone->shm_zone->shm.name.len + 1);
    if (name == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(name, zone->shm_zone->shm.name.data,
                zone->shm_zone->shm.name.len) = '\0';

    b = ngx_create_temp_buf(pool, sizeof(",\"size\":,\"hosts\":,"
                                         "\"hosts_used\":,\"processes\":[")
                                  + 3 * NGX_INT64_LEN
                                  + st.processes_len
                                    * (sizeof(",{\"pid\":,\"in_flight\":}")
                                       + 2 * NGX_INT64_LEN)
                                  + sizeof("],\"sweeps\":,\"recovered\":,"
                                           "\"in_doubt\":,\"reconciled\":}")
                                  + 4 * NGX_INT64_LEN);
    if (b == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(b->last, ",\"size\":%uz,\"hosts\":%uD,\"hosts_used\":%uD,"
                    "\"processes\":[", zone->shm_zone->shm.size, st.hosts,
                    st.hosts_used);
    for (i = 0; i < st.processes_len && i < st.processes_cap; i++) {
        p = ngx_sprintf(p, "%s{\"pid\":%uD,\"in_flight\":%uL}", i ? "," : "",
                        st.processes[i].pid, st.processes[i].in_flight);
    }

    b->last = ngx_sprintf(p, "],\"sweeps\":%uL,\"recovered\":%uL,"
                          "\"in_doubt\":%uL,\"reconciled\":%uL}",
                          st.sweeps, st.recovered, st.in_doubt,
                          st.reconciled);

    json.data = b->pos;
    json.len = b->last - b->pos;

    if (ngx_http_upstream_lc_status_literal(ctx, ",\"zone\":{\"name\":")
        != NGX_OK
        || ngx_http_upstream_lc_status_text(ctx, (const char *) name, &json)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_upstream_lc_status_handler(ngx_http_request_t *r)
{
    u_char                              *p;
    ngx_int_t                            rc;
    ngx_uint_t                           i;
    ngx_buf_t                           *b;
    ngx_chain_t                         *out, *cl;
    ngx_http_upstream_lc_status_ctx_t    ctx;
    ngx_http_upstream_lc_srv_conf_t    **lcfp;
    ngx_http_upstream_lc_main_conf_t    *lmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_upstream_leastconn_module);

    out = NULL;
    ngx_memzero(&ctx, sizeof(ctx));
    ctx.request = r;
    ctx.last = &out;
    ctx.rc = NGX_OK;

    b = ngx_create_temp_buf(r->pool, sizeof("{\"pid\":,\"upstreams\":[")
                                     + NGX_INT64_LEN);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_sprintf(b->last, "{\"pid\":%P,\"upstreams\":[", ngx_pid);
    if (ngx_http_upstream_lc_status_append(&ctx, b) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lcfp = lmcf->upstreams.elts;
    for (i = 0; i < lmcf->upstreams.nelts; i++) {
        ngx_str_t  open = ngx_string(",\"hosts\":[");

        ctx.conf = lcfp[i];
        ctx.hosts = 0;

        p = (u_char *) (i ? ",{\"name\":" : "{\"name\":");
        if (ngx_http_upstream_lc_status_literal(&ctx, (const char *) p)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* An upstream name from the configuration, as a C string. */
        p = ngx_pnalloc(r->pool, lcfp[i]->name.len + 1);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *ngx_cpymem(p, lcfp[i]->name.data, lcfp[i]->name.len) = '\0';

        if (ngx_http_upstream_lc_status_text(&ctx, (const char *) p, &open)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx.zone_hosts = NULL;
        if (lcfp[i]->pool != NULL && lcfp[i]->zone && lcfp[i]->zone->zone) {
            ctx.zone_hosts = ngx_array_create(r->pool, lcfp[i]->npeers,
                                sizeof(ngx_http_upstream_lc_zone_host_t));
            if (ctx.zone_hosts == NULL
                || lc_zone_hosts(lcfp[i]->zone->zone,
                                 ngx_http_upstream_lc_status_zone_host, &ctx)
                   != LC_OK
                || ctx.rc != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        if (lcfp[i]->pool != NULL
            && lc_pool_stats(lcfp[i]->pool, ngx_http_upstream_lc_status_host,
                             &ctx)
               != LC_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ctx.rc != NGX_OK
            || ngx_http_upstream_lc_status_literal(&ctx, "]") != NGX_OK
            || (lcfp[i]->zone && lcfp[i]->zone->zone
                && ngx_http_upstream_lc_status_zone(&ctx, lcfp[i]->zone)
                   != NGX_OK)
            || ngx_http_upstream_lc_status_literal(&ctx, "}") != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_http_upstream_lc_status_literal(&ctx, "]}\n") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = 0;
    for (cl = out; cl; cl = cl->next) {
        r->headers_out.content_length_n += cl->buf->last - cl->buf->pos;
        if (cl->next == NULL) {
            cl->buf->last_buf = (r == r->main) ? 1 : 0;
            cl->buf->last_in_chain = 1;
        }
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, out);
}


static char *
ngx_http_upstream_leastconn_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_upstream_lc_status_handler;

    return NGX_CONF_OK;
}
