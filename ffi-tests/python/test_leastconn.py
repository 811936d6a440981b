"""The main flow of the leastconn C ABI from Python, through ctypes (stdlib only).

Usage: python3 test_leastconn.py PATH/TO/libleastconn.so
"""

import ctypes
import sys
import unittest
from ctypes import POINTER, byref, c_bool, c_char_p, c_size_t, c_uint32, c_uint64, c_void_p

LIB = None

LC_OK = 0
LC_ERR_NULL_POINTER = 1
LC_ERR_INVALID_ADDRESS = 3
LC_ERR_INVALID_WEIGHT = 4
LC_ERR_NO_UPSTREAM = 6
LC_ERR_ALREADY_RELEASED = 8
LC_ERR_SOURCE_FAILED = 9
LC_OUTCOME_SUCCESS = 0
LC_OUTCOME_FAILURE = 1
LC_LOG_OFF = 0
LC_LOG_ERROR = 1


class Upstream(ctypes.Structure):
    _fields_ = [
        ("address", c_char_p),
        ("weight", c_uint32),
        ("max_requests", c_uint32),
        ("tier", c_uint32),
        ("tag", c_void_p),
    ]


class Pick(ctypes.Structure):
    _fields_ = [
        ("address", c_char_p),
        ("tag", c_void_p),
        ("index", c_size_t),
        ("host_id", c_uint64),
        ("reservation", c_void_p),
        ("check", c_uint64),
    ]


class HostStats(ctypes.Structure):
    _fields_ = [
        ("host_id", c_uint64),
        ("picks", c_uint64),
        ("in_flight", c_uint32),
        ("recent_failures", c_uint32),
        ("max_requests", c_uint32),
        ("down", c_bool),
        ("unhealthy", c_bool),
        ("full", c_bool),
        ("listed", c_bool),
    ]


class RefreshReport(ctypes.Structure):
    _fields_ = [
        ("upstreams", c_size_t),
        ("hosts", c_size_t),
        ("reclaimed", c_size_t),
        ("generation", c_uint64),
    ]


SOURCE_FN = ctypes.CFUNCTYPE(c_uint32, c_void_p, c_void_p)
LOG_FN = ctypes.CFUNCTYPE(None, c_void_p, c_uint32, c_char_p)


def load(path):
    lib = ctypes.CDLL(path)
    sigs = {
        "lc_version": (c_char_p, []),
        "lc_status_str": (c_char_p, [c_uint32]),
        "lc_source_static_new": (c_uint32, [POINTER(Upstream), c_size_t, POINTER(c_void_p)]),
        "lc_source_callback_new": (c_uint32, [SOURCE_FN, c_void_p, c_void_p, POINTER(c_void_p)]),
        "lc_source_multi_new": (c_uint32, [POINTER(c_void_p)]),
        "lc_source_multi_add": (c_uint32, [c_void_p, c_void_p]),
        "lc_upstream_list_push": (c_uint32, [c_void_p, POINTER(Upstream)]),
        "lc_upstream_list_set_error": (c_uint32, [c_void_p, c_char_p]),
        "lc_pool_new": (c_uint32, [c_void_p, c_void_p, POINTER(c_void_p)]),
        "lc_pool_free": (None, [c_void_p]),
        "lc_pool_refresh": (c_uint32, [c_void_p, POINTER(RefreshReport)]),
        "lc_pool_select": (c_uint32, [c_void_p, POINTER(c_uint64), c_size_t, POINTER(Pick)]),
        "lc_pick_release": (c_uint32, [POINTER(Pick), c_uint32]),
        "lc_pool_host_stats": (c_uint32, [c_void_p, c_char_p, POINTER(HostStats)]),
        "lc_pool_set_down": (c_uint32, [c_void_p, c_char_p, c_bool]),
        "lc_log_set_callback": (c_uint32, [LOG_FN, c_void_p, c_uint32]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def static_source(*addresses, weight=1):
    arr = (Upstream * len(addresses))(*[Upstream(a.encode(), weight, 0, 0, i + 1) for i, a in enumerate(addresses)])
    out = c_void_p()
    status = LIB.lc_source_static_new(arr, len(addresses), byref(out))
    return status, out


def new_pool(source):
    pool = c_void_p()
    assert LIB.lc_pool_new(None, source, byref(pool)) == LC_OK
    return pool


class MainFlow(unittest.TestCase):
    def test_version(self):
        self.assertRegex(LIB.lc_version().decode(), r"^\d+\.\d+\.\d+$")
        self.assertEqual(LIB.lc_status_str(LC_ERR_NO_UPSTREAM), b"no upstream available")

    def test_select_retry_release(self):
        status, source = static_source("10.0.0.1:80", "10.0.0.2:80")
        self.assertEqual(status, LC_OK)
        pool = new_pool(source)
        try:
            first, retry = Pick(), Pick()
            self.assertEqual(LIB.lc_pool_select(pool, None, 0, byref(first)), LC_OK)
            exclude = (c_uint64 * 1)(first.host_id)
            self.assertEqual(LIB.lc_pool_select(pool, exclude, 1, byref(retry)), LC_OK)
            self.assertNotEqual(first.address, retry.address)
            self.assertEqual(first.tag, first.index + 1)
            both = (c_uint64 * 2)(first.host_id, retry.host_id)
            self.assertEqual(LIB.lc_pool_select(pool, both, 2, byref(Pick())), LC_ERR_NO_UPSTREAM)

            stats = HostStats()
            address = first.address
            self.assertEqual(LIB.lc_pool_host_stats(pool, address, byref(stats)), LC_OK)
            self.assertEqual((stats.in_flight, stats.picks, stats.listed), (1, 1, True))

            self.assertEqual(LIB.lc_pick_release(byref(first), LC_OUTCOME_FAILURE), LC_OK)
            self.assertEqual(LIB.lc_pick_release(byref(first), LC_OUTCOME_SUCCESS), LC_ERR_ALREADY_RELEASED)
            self.assertEqual(LIB.lc_pool_host_stats(pool, address, byref(stats)), LC_OK)
            self.assertEqual((stats.in_flight, stats.picks, stats.recent_failures, stats.unhealthy), (0, 1, 1, True))
            self.assertEqual(LIB.lc_pick_release(byref(Pick()), LC_OUTCOME_SUCCESS), LC_ERR_ALREADY_RELEASED)
            self.assertEqual(LIB.lc_pick_release(None, LC_OUTCOME_SUCCESS), LC_ERR_NULL_POINTER)
        finally:
            LIB.lc_pool_free(pool)
        # Released after the pool is gone: still valid.
        self.assertEqual(LIB.lc_pick_release(byref(retry), LC_OUTCOME_SUCCESS), LC_OK)

    def test_invalid_upstreams(self):
        self.assertEqual(static_source("10.0.0.1")[0], LC_ERR_INVALID_ADDRESS)
        self.assertEqual(static_source("")[0], LC_ERR_INVALID_ADDRESS)
        self.assertEqual(static_source("10.0.0.1:80", weight=0)[0], LC_ERR_INVALID_WEIGHT)

    def test_callback_source_in_multi_and_log(self):
        logged = []
        state = {"fail": False}

        @LOG_FN
        def log(_userdata, level, message):
            logged.append((level, message.decode()))

        @SOURCE_FN
        def fetch(_userdata, lst):
            if state["fail"]:
                LIB.lc_upstream_list_set_error(lst, b"registry down")
                return LC_ERR_SOURCE_FAILED
            for address in (b"10.0.1.1:80", b"10.0.1.2:80"):
                u = Upstream(address, 1, 0, 0, None)
                if LIB.lc_upstream_list_push(lst, byref(u)) != LC_OK:
                    return LC_ERR_SOURCE_FAILED
            return LC_OK

        self.assertEqual(LIB.lc_log_set_callback(log, None, LC_LOG_ERROR), LC_OK)
        try:
            multi, callback = c_void_p(), c_void_p()
            self.assertEqual(LIB.lc_source_multi_new(byref(multi)), LC_OK)
            self.assertEqual(LIB.lc_source_callback_new(fetch, None, None, byref(callback)), LC_OK)
            self.assertEqual(LIB.lc_source_multi_add(multi, static_source("10.0.0.1:80")[1]), LC_OK)
            self.assertEqual(LIB.lc_source_multi_add(multi, callback), LC_OK)
            pool = new_pool(multi)
            try:
                report = RefreshReport()
                self.assertEqual(LIB.lc_pool_refresh(pool, byref(report)), LC_OK)
                self.assertEqual((report.upstreams, report.generation), (3, 2))
                state["fail"] = True
                self.assertEqual(LIB.lc_pool_refresh(pool, byref(report)), LC_OK)
                self.assertEqual(report.upstreams, 1)
                self.assertEqual(logged, [(LC_LOG_ERROR, "multi: source 1 failed: registry down; skipping")])
                self.assertEqual(LIB.lc_pool_set_down(pool, b"10.0.0.1:80", True), LC_OK)
                self.assertEqual(LIB.lc_pool_select(pool, None, 0, byref(Pick())), LC_ERR_NO_UPSTREAM)
            finally:
                LIB.lc_pool_free(pool)
        finally:
            LIB.lc_log_set_callback(LOG_FN(), None, LC_LOG_OFF)


if __name__ == "__main__":
    LIB = load(sys.argv.pop(1))
    unittest.main(verbosity=2)
