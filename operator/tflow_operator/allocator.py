"""The operator process's C allocator settings (glibc's ``malloc``), made at start.

Two of glibc's defaults keep memory the operator no longer uses: an arena per thread that
allocates (the Temporal client's runtime and the event loop's executor threads, up to
eight per core), and a threshold for serving large blocks from their own mappings that
rises every time such a block is freed, after which the request and response bodies of
a burst (the published ConfigMaps are up to a megabyte each) come from the heap and
leave it fragmented. The settings glibc reads from the environment at start
(``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``) win over these; with another C library
nothing is changed. Python's ``mallopt`` is not exposed by the standard library, hence
``ctypes``.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Mapping
from typing import Final

log = logging.getLogger("tflow_operator.allocator")

# glibc's <malloc.h>.
M_MMAP_THRESHOLD: Final = -3
M_ARENA_MAX: Final = -8

# (environment variable glibc reads, mallopt parameter, value)
SETTINGS: Final = (
    ("MALLOC_ARENA_MAX", M_ARENA_MAX, 2),
    # glibc's initial threshold, kept fixed instead of rising.
    ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, 128 * 1024),
)


def tune(environ: Mapping[str, str]) -> dict[str, int]:
    """Apply SETTINGS that the environment does not set; what was applied, by name."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return {}
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied: dict[str, int] = {}
    for variable, parameter, value in SETTINGS:
        if variable in environ:
            continue
        if mallopt(parameter, value) == 1:
            applied[variable] = value
        else:
            log.warning("mallopt %s=%d refused", variable, value)
    return applied
