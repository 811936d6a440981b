"""Forwards the library's log records to the ``logging`` logger ``"leastconn"``."""

from __future__ import annotations

import atexit
import logging
import warnings
from typing import Any

from ._native import ffi, lib

logger = logging.getLogger("leastconn")

#: logging level of each LC_LOG_* level; the library's TRACE is below DEBUG.
TRACE = 5
_LEVELS = {
    lib.LC_LOG_ERROR: logging.ERROR,
    lib.LC_LOG_WARN: logging.WARNING,
    lib.LC_LOG_INFO: logging.INFO,
    lib.LC_LOG_DEBUG: logging.DEBUG,
    lib.LC_LOG_TRACE: TRACE,
}


@ffi.def_extern()
def _lc_py_log(userdata: Any, level: int, message: Any) -> None:
    py_level = _LEVELS.get(level, logging.ERROR)
    if logger.isEnabledFor(py_level):
        logger.log(py_level, "%s", ffi.string(message).decode("utf-8", "replace"))


def install() -> None:
    """Sends every library record to ``logger`` (which filters them by its level).

    Process-wide. If this process already has another Rust ``log`` logger the library
    refuses; a warning says so and records are not forwarded.
    """
    status = lib.lc_log_set_callback(lib._lc_py_log, ffi.NULL, lib.LC_LOG_TRACE)
    if status != lib.LC_OK:
        warnings.warn(
            f"leastconn: log records not forwarded (status {status})", RuntimeWarning, stacklevel=2
        )
        return
    # After Python's exit handlers no callback may run; later records are dropped.
    atexit.register(lib.lc_log_set_callback, ffi.NULL, ffi.NULL, lib.LC_LOG_OFF)
