// A small RAII wrapper over the leastconn C ABI (C++17), as a C++ user would write one:
// handles are unique_ptrs, errors are exceptions, a Pick releases itself as a success when
// it goes out of scope unless released explicitly.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "leastconn.h"

namespace leastconn {

class Error : public std::runtime_error {
public:
    explicit Error(lc_status status) : std::runtime_error(lc_status_str(status)), status_(status) {}
    lc_status status() const noexcept { return status_; }

private:
    lc_status status_;
};

inline void check(lc_status status) {
    if (status != LC_OK) throw Error(status);
}

struct SourceFree {
    void operator()(lc_source *s) const noexcept { lc_source_free(s); }
};
struct PoolFree {
    void operator()(lc_pool *p) const noexcept { lc_pool_free(p); }
};
struct PickerFree {
    void operator()(lc_picker *p) const noexcept { lc_picker_free(p); }
};
struct ZoneFree {
    void operator()(lc_zone *z) const noexcept { lc_zone_free(z); }
};
struct RefresherStop {
    void operator()(lc_refresher *r) const noexcept { lc_refresher_stop(r); }
};

using Source = std::unique_ptr<lc_source, SourceFree>;

struct Upstream {
    std::string address;
    std::uint32_t weight = 1;
    std::uint32_t max_requests = 0;
    std::uint32_t tier = 0;
};

inline lc_upstream to_c(const Upstream &u) {
    return lc_upstream{u.address.c_str(), u.weight, u.max_requests, u.tier, nullptr};
}

inline Source static_source(const std::vector<Upstream> &list) {
    std::vector<lc_upstream> c;
    for (const auto &u : list) c.push_back(to_c(u));
    lc_source *out = nullptr;
    check(lc_source_static_new(c.data(), c.size(), &out));
    return Source(out);
}

// A source backed by a C++ callable; the callable is owned by the source and deleted with it.
using Fetch = std::function<std::vector<Upstream>()>;

inline Source callback_source(Fetch fetch) {
    auto *owned = new Fetch(std::move(fetch));
    auto call = [](void *userdata, lc_upstream_list *list) -> lc_status {
        try {
            for (const auto &u : (*static_cast<Fetch *>(userdata))()) {
                lc_upstream c = to_c(u);
                lc_status s = lc_upstream_list_push(list, &c);
                if (s != LC_OK) return s;
            }
            return LC_OK;
        } catch (const std::exception &e) {  // exceptions must not cross into the library
            lc_upstream_list_set_error(list, e.what());
            return LC_ERR_SOURCE_FAILED;
        }
    };
    auto free = [](void *userdata) { delete static_cast<Fetch *>(userdata); };
    lc_source *out = nullptr;
    lc_status s = lc_source_callback_new(call, owned, free, &out);
    if (s != LC_OK) {
        delete owned;  // not taken on failure
        throw Error(s);
    }
    return Source(out);
}

inline Source multi(std::vector<Source> sources) {
    lc_source *out = nullptr;
    check(lc_source_multi_new(&out));
    Source m(out);
    for (auto &s : sources) check(lc_source_multi_add(m.get(), s.release()));  // consumed
    return m;
}

// A reservation is bound to the address of its lc_pick (a copied struct is refused with
// LC_ERR_PICK_MOVED), so the lc_pick lives on the heap and a move hands over the pointer.
// A moved-from Pick holds nothing; only held() and destruction are valid on it.
class Pick {
public:
    Pick() : pick_(new lc_pick{}) {}
    Pick(Pick &&other) noexcept = default;
    Pick &operator=(Pick &&other) noexcept {
        if (this != &other) {
            reset();
            pick_ = std::move(other.pick_);
        }
        return *this;
    }
    Pick(const Pick &) = delete;
    Pick &operator=(const Pick &) = delete;
    ~Pick() { reset(); }

    const char *address() const noexcept { return pick_->address; }
    std::uint64_t host_id() const noexcept { return pick_->host_id; }
    std::size_t index() const noexcept { return pick_->index; }
    bool held() const noexcept { return pick_ && pick_->reservation != nullptr; }
    void release(lc_outcome outcome) { check(lc_pick_release(pick_.get(), outcome)); }
    lc_pick *raw() noexcept { return pick_.get(); }

private:
    void reset() noexcept {
        if (held()) lc_pick_release(pick_.get(), LC_OUTCOME_SUCCESS);
    }
    std::unique_ptr<lc_pick> pick_;
};

class Picker {
public:
    explicit Picker(lc_picker *p) : picker_(p) {}
    Pick select(const std::vector<std::uint64_t> &exclude = {}) {
        Pick p;
        check(lc_picker_select(picker_.get(), exclude.data(), exclude.size(), p.raw()));
        return p;
    }
    // Releases a pick on this picker's thread through the picker's own zone record (any
    // pick; a heap pool's as Pick::release).
    void release(Pick &p, lc_outcome outcome) { check(lc_picker_release(picker_.get(), p.raw(), outcome)); }

private:
    std::unique_ptr<lc_picker, PickerFree> picker_;
};

// A shared zone (Linux). Made before fork(), it is shared with the children, each of which
// owns (and frees) its copy of the handle. Memory given to create_in/attach must outlive it.
class Zone {
public:
    static lc_zone_capacity default_capacity() {
        lc_zone_capacity caps{};
        check(lc_zone_capacity_default(&caps));
        return caps;
    }
    // `caps` with the most hosts whose zone fits in `bytes`.
    static lc_zone_capacity fit(std::size_t bytes, lc_zone_capacity caps) {
        check(lc_zone_capacity_fit(bytes, &caps));
        return caps;
    }
    static std::size_t size_for(const lc_zone_capacity &caps) noexcept { return lc_zone_size(&caps); }

    static Zone anonymous(const lc_zone_capacity &caps) {
        lc_zone *out = nullptr;
        check(lc_zone_new_anonymous(&caps, &out));
        return Zone(out);
    }
    static Zone open(const std::string &path, const lc_zone_capacity &caps) {
        lc_zone *out = nullptr;
        check(lc_zone_open(path.c_str(), &caps, &out));
        return Zone(out);
    }
    static Zone create_in(void *mem, std::size_t len, const lc_zone_capacity &caps) {
        lc_zone *out = nullptr;
        check(lc_zone_from_memory(mem, len, &caps, LC_ZONE_CREATE, &out));
        return Zone(out);
    }
    static Zone attach(void *mem, std::size_t len) {
        lc_zone *out = nullptr;
        check(lc_zone_from_memory(mem, len, nullptr, LC_ZONE_ATTACH, &out));
        return Zone(out);
    }

    lc_zone_capacity capacity() const {
        lc_zone_capacity caps{};
        check(lc_zone_capacity_of(zone_.get(), &caps));
        return caps;
    }
    std::size_t size() const noexcept { return lc_zone_size_of(zone_.get()); }
    std::uint64_t creation_id() const noexcept { return lc_zone_creation_id(zone_.get()); }
    const lc_zone *raw() const noexcept { return zone_.get(); }

private:
    explicit Zone(lc_zone *z) : zone_(z) {}
    std::unique_ptr<lc_zone, ZoneFree> zone_;
};

class Pool {
public:
    explicit Pool(Source source, const lc_pool_config *config = nullptr) {
        lc_pool *out = nullptr;
        check(lc_pool_new(config, source.release(), &out));  // consumed, also on error
        pool_.reset(out);
    }
    // A pool whose host state lives in `zone` under `name` (build it after fork()). The pool
    // keeps the zone's memory: the Zone may go first.
    Pool(Source source, const Zone &zone, const std::string &name, const lc_pool_config *config = nullptr) {
        lc_pool *out = nullptr;
        check(lc_pool_new_in_zone(config, zone.raw(), name.c_str(), source.release(), &out));  // consumed
        pool_.reset(out);
    }

    Pick select(const std::vector<std::uint64_t> &exclude = {}) const {
        Pick p;
        check(lc_pool_select(pool_.get(), exclude.data(), exclude.size(), p.raw()));
        return p;
    }

    Picker picker(std::uint64_t seed) const {
        lc_picker *out = nullptr;
        check(lc_picker_new(pool_.get(), seed, &out));
        return Picker(out);
    }

    lc_refresh_report refresh() const {
        lc_refresh_report r{};
        check(lc_pool_refresh(pool_.get(), &r));
        return r;
    }

    lc_host_stats stats(const std::string &address) const {
        lc_host_stats s{};
        check(lc_pool_host_stats(pool_.get(), address.c_str(), &s));
        return s;
    }

    void set_down(const std::string &address, bool down) const {
        check(lc_pool_set_down(pool_.get(), address.c_str(), down));
    }

    std::unique_ptr<lc_refresher, RefresherStop> start_refresher(std::uint64_t interval_ms) const {
        lc_refresher *out = nullptr;
        check(lc_refresher_start(pool_.get(), interval_ms, &out));
        return std::unique_ptr<lc_refresher, RefresherStop>(out);
    }

private:
    std::unique_ptr<lc_pool, PoolFree> pool_;
};


}  // namespace leastconn
