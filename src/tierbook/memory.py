"""Memory the allocators keep once it is freed, given back to the system: the data stage reads and cleans
large tables in threads, and later sections run beside it (peak memory counts what is held, not what is used)."""

from __future__ import annotations

import contextlib
import ctypes

import pyarrow as pa


def give_back_memory() -> None:
    """Return to the system the memory the allocators keep once it is freed: the sources read in two threads leave their
    text in the threads' malloc arenas (cleaning the 1M-customer demo then peaked at 5.27 GiB instead of 4.82 GiB), and
    Arrow's allocator (mimalloc) kept 0.2 GiB of what cleaning freed and glibc 0.1 GiB more (2026-12-02). The malloc
    part is glibc only (Linux); elsewhere it does nothing."""
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
# glibc's dynamic threshold rises to the size of any large block freed, up to this (64-bit systems)
DEFAULT_MMAP_THRESHOLD_MAX = 32 * 2**20


@contextlib.contextmanager
def large_blocks_mapped(threshold: int = 4 * 2**20):
    """Within the block, glibc gives each allocation of ``threshold`` bytes or more its own mapping, returned to the
    system when freed, instead of taking it from the heap once its dynamic threshold has risen to 32 MiB: the profile
    section's many per-customer arrays of 4-32 MiB left the heap fragmented, and its peak at 1M customers was
    2.28-2.30 GiB with glibc's default and 2.04-2.06 GiB with this, in about the same time on its own (21.9-25.7 s and
    23.3-26.5 s in runs one after another; in the noisy report runs that night, 29.2-37.2 s and 35.8-38.8 s). Not for
    every section: churn took 29.0 -> 33.9 s and clv 14.4 -> 17.3 s this way (fresh pages for each of their short-lived
    arrays), for no lower peak (2026-12-02). Afterwards the threshold stays at 32 MiB, where glibc's dynamic one ends up.
    glibc only (Linux); elsewhere it does nothing."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        yield
        return
    mallopt(M_MMAP_THRESHOLD, threshold)
    try:
        yield
    finally:
        mallopt(M_MMAP_THRESHOLD, DEFAULT_MMAP_THRESHOLD_MAX)
