"""The C allocator's settings for a process that renders and scores thousands of sounds.

A 4 s render and each of its spectra are megabytes. glibc's malloc serves blocks that large with fresh
`mmap`s and gives them back to the system when freed (and trims the heap's top), so every render and
every objective call pays page faults to get zeroed memory again; measured on the refinement loop, the
objective costs ~30% more per call that way (benchmarks/refine.py, "objective"). `keep_freed_memory`
raises both thresholds so freed blocks stay in the heap for the next render: the process holds on to
its peak working set (tens of MB), not more. A no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

__all__ = ["keep_freed_memory", "KEEP_BELOW_BYTES"]

# Blocks up to this size come from the heap and freed memory up to this much stays there.
KEEP_BELOW_BYTES = 256 * 1024 * 1024
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def keep_freed_memory() -> bool:
    """Set the allocator thresholds once per process; True when they are set (glibc only)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = bool(mallopt(_M_MMAP_THRESHOLD, KEEP_BELOW_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, KEEP_BELOW_BYTES)
    )
    if not ok:
        log.debug("mallopt refused the thresholds; the allocator keeps its defaults")
    _done = ok
    return ok
