// The C ABI from C++17 through leastconn.hpp: RAII handles, exceptions, a callable source,
// per-thread pickers, shared zones. Prints "N checks passed" on success.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "leastconn.hpp"

static std::atomic<unsigned long> checks{0};

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            std::exit(1);                                                             \
        }                                                                             \
        checks++;                                                                     \
    } while (0)

using namespace leastconn;

static void errors_are_exceptions() {
    try {
        static_source({{"10.0.0.1", 1, 0, 0}});
        CHECK(false);
    } catch (const Error &e) {
        CHECK(e.status() == LC_ERR_INVALID_ADDRESS);
        CHECK(std::string(e.what()) == "invalid upstream address");
    }
    try {
        static_source({{"10.0.0.1:80", 0, 0, 0}});
        CHECK(false);
    } catch (const Error &e) {
        CHECK(e.status() == LC_ERR_INVALID_WEIGHT);
    }
    Pool empty(static_source({}));
    try {
        empty.select();
        CHECK(false);
    } catch (const Error &e) {
        CHECK(e.status() == LC_ERR_NO_UPSTREAM);
    }
}

static void picks_release_themselves() {
    Pool pool(static_source({{"10.0.0.1:80"}, {"10.0.0.2:80"}}));
    {
        Pick a = pool.select();
        Pick b = pool.select();
        CHECK(std::strcmp(a.address(), b.address()) != 0);
        CHECK(pool.stats("10.0.0.1:80").in_flight == 1);
        Pick moved = std::move(a);
        CHECK(!a.held() && moved.held());
        b.release(LC_OUTCOME_SUCCESS);
        try {
            b.release(LC_OUTCOME_SUCCESS);
            CHECK(false);
        } catch (const Error &e) {
            CHECK(e.status() == LC_ERR_ALREADY_RELEASED);
        }
    }  // `moved` releases here
    CHECK(pool.stats("10.0.0.1:80").in_flight == 0);
    CHECK(pool.stats("10.0.0.2:80").in_flight == 0);
    CHECK(pool.stats("10.0.0.1:80").picks + pool.stats("10.0.0.2:80").picks == 2);

    // A retry excludes the host tried first.
    Pick first = pool.select();
    Pick retry = pool.select({first.host_id()});
    CHECK(retry.host_id() != first.host_id());
    first.release(LC_OUTCOME_FAILURE);
    CHECK(pool.stats(std::string(retry.address()) == "10.0.0.1:80" ? "10.0.0.2:80" : "10.0.0.1:80").unhealthy);
}

static void callable_sources_in_a_multi() {
    int version = 0;
    auto changing = [&version]() -> std::vector<Upstream> {
        if (version == 2) throw std::runtime_error("registry unreachable");
        return {{version == 0 ? "10.0.1.1:80" : "10.0.1.2:80"}};
    };
    std::vector<Source> parts;
    parts.push_back(static_source({{"10.0.0.1:80"}}));
    parts.push_back(callback_source(changing));
    Pool pool(multi(std::move(parts)));
    CHECK(pool.stats("10.0.1.1:80").listed);
    version = 1;
    CHECK(pool.refresh().upstreams == 2);
    CHECK(pool.stats("10.0.1.2:80").listed);
    version = 2;  // the callable throws: the multi logs and skips it
    CHECK(pool.refresh().upstreams == 1);
    pool.set_down("10.0.0.1:80", true);
    try {
        pool.select();
        CHECK(false);
    } catch (const Error &e) {
        CHECK(e.status() == LC_ERR_NO_UPSTREAM);
    }
}

static void pickers_per_thread() {
    Pool pool(static_source({{"10.0.0.1:80", 1, 0, 0}, {"10.0.0.2:80", 2, 0, 0}, {"10.0.0.3:80", 1, 0, 1}}));
    auto refresher = pool.start_refresher(1);
    std::vector<std::thread> threads;
    std::atomic<unsigned long> picks{0};
    for (unsigned t = 0; t < 4; t++) {
        threads.emplace_back([&pool, &picks, t] {
            Picker picker = pool.picker(t + 1);
            for (int i = 0; i < 5000; i++) {
                Pick p = picker.select();
                CHECK(std::strcmp(p.address(), "10.0.0.3:80") != 0);  // backup tier unused
                picks++;
            }
        });
    }
    for (auto &t : threads) t.join();
    refresher.reset();  // stops and joins
    CHECK(picks == 20000);
    auto a = pool.stats("10.0.0.1:80"), b = pool.stats("10.0.0.2:80");
    CHECK(a.in_flight == 0 && b.in_flight == 0);
    CHECK(a.picks + b.picks == 20000);
    CHECK(pool.stats("10.0.0.3:80").picks == 0);
}

static bool same(const lc_zone_capacity &a, const lc_zone_capacity &b) {
    return a.hosts == b.hosts && a.address_bytes == b.address_bytes && a.fail_ring == b.fail_ring &&
           a.processes == b.processes && a.threads == b.threads;
}

static void zones() {
    lc_zone_capacity caps = Zone::default_capacity();
    CHECK(caps.hosts == 1024 && Zone::size_for(caps) == 2801920);
    caps.threads = 8;
    lc_zone_capacity fit = Zone::fit(1 << 20, caps);
    CHECK(Zone::size_for(fit) <= (1 << 20) && fit.threads == 8);
    fit.hosts++;
    CHECK(Zone::size_for(fit) > (1 << 20));

    caps.hosts = 16;
    Zone anonymous = Zone::anonymous(caps);
    CHECK(same(anonymous.capacity(), caps) && anonymous.size() == Zone::size_for(caps));

    std::vector<std::uint64_t> memory(Zone::size_for(caps) / 8);
    {
        Zone made = Zone::create_in(memory.data(), memory.size() * 8, caps);
        Zone attached = Zone::attach(memory.data(), memory.size() * 8);
        CHECK(made.creation_id() == attached.creation_id() && made.creation_id() != anonymous.creation_id());
        CHECK(same(attached.capacity(), caps));
    }  // both handles freed; the memory is ours again

    std::vector<std::uint64_t> zeros(memory.size());
    try {
        Zone::attach(zeros.data(), zeros.size() * 8);
        CHECK(false);
    } catch (const Error &e) {
        CHECK(e.status() == LC_ERR_ZONE_INCOMPATIBLE);
        CHECK(std::string(e.what()) == "shared zone made for another layout or capacities");
    }
    try {
        Zone::fit(100, caps);
        CHECK(false);
    } catch (const Error &e) {
        CHECK(e.status() == LC_ERR_ZONE_TOO_SMALL);
    }
}

// Two pools of one name on a zone share the in-flight count; both releases return it.
static void pools_on_a_zone() {
    lc_zone_capacity caps = Zone::default_capacity();
    caps.hosts = 16;
    caps.threads = 8;
    Pool a(static_source({{"10.0.0.1:80", 1, 0, 0}}), Zone::anonymous(caps), "app");  // zone handle freed
    Zone zone = Zone::anonymous(caps);
    Pool b(static_source({{"10.0.0.1:80", 1, 0, 0}}), zone, "app");
    Pool c(static_source({{"10.0.0.1:80", 1, 0, 0}}), zone, "app");
    Picker picker = b.picker(9);
    Pick p1 = picker.select();
    Pick p2 = c.select();
    CHECK(b.stats("10.0.0.1:80").in_flight == 2 && c.stats("10.0.0.1:80").in_flight == 2);
    CHECK(a.stats("10.0.0.1:80").in_flight == 0);  // another zone
    picker.release(p1, LC_OUTCOME_SUCCESS);
    CHECK(!p1.held() && c.stats("10.0.0.1:80").in_flight == 1);
    p2.release(LC_OUTCOME_SUCCESS);
    CHECK(b.stats("10.0.0.1:80").in_flight == 0);
    lc_pool_config config;
    check(lc_pool_config_default(&config));
    config.max_fails = caps.fail_ring + 1;
    try {
        Pool refused(static_source({{"10.0.0.1:80", 1, 0, 0}}), zone, "app", &config);
        CHECK(false);
    } catch (const Error &e) {
        CHECK(e.status() == LC_ERR_ZONE_INCOMPATIBLE);
    }
}

int main() {
    errors_are_exceptions();
    picks_release_themselves();
    callable_sources_in_a_multi();
    pickers_per_thread();
    zones();
    pools_on_a_zone();
    std::printf("%lu checks passed\n", checks.load());
    return 0;
}
