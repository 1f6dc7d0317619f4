"""Keep freed memory in the process while training (glibc).

A training step allocates and frees the same few megabytes of activations and gradients every few milliseconds.
glibc's defaults hand large freed blocks back to the kernel (``munmap``, heap trimming), so the next step faults
the same pages in again; on the 2-core machines xlhand is measured on, a pretraining step took 2,669 page faults
and 20.4 ms with glibc's defaults against 27 and 16.5 ms once memory is kept (``benchmarks/pretrain.py`` prints
both). An onboarding step, with a smaller working set, faults about 80 times either way and gains little.
:func:`keep_freed_memory` raises glibc's mmap and trim thresholds once per process, which is what the
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` environment variables would do at start-up.
Elsewhere (macOS, musl) it does nothing.

The library never calls it on its own (it changes the whole process's allocator): the commands that train,
``xlhand pretrain`` and ``xlhand onboard``, call it before training, as do the benchmarks. Set
``XLHAND_KEEP_MEMORY=0`` in the environment to leave glibc's defaults alone (the benchmarks' baseline uses it).
Library users who train in their own process may call :func:`keep_freed_memory` themselves.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD = 512 * 1024 * 1024  # free memory kept at the top of the heap before it is returned

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap/trim thresholds (once per process). True when they are in effect.

    ``XLHAND_KEEP_MEMORY=0`` leaves the allocator alone (``benchmarks/pretrain.py`` uses it for its baseline).
    """
    global _done
    if _done is None:
        _done = False
        if sys.platform.startswith("linux") and os.environ.get("XLHAND_KEEP_MEMORY", "1") != "0":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):
                return False
            _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done
