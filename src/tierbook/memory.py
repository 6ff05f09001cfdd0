"""Memory the allocators keep once it is freed, given back to the system: the data stage reads and cleans
large tables in threads, and later sections run beside it (peak memory counts what is held, not what is used)."""

from __future__ import annotations

import contextlib
import ctypes
import sys


def give_back_memory() -> None:
    """Return to the system the memory the allocators keep once it is freed: the sources read in two threads leave their
    text in the threads' malloc arenas (cleaning the 1M-customer demo then peaked at 5.27 GiB instead of 4.82 GiB), and
    Arrow's allocator (mimalloc) kept 0.2 GiB of what cleaning freed and glibc 0.1 GiB more (2026-12-02). The malloc
    part is glibc only (Linux); elsewhere it does nothing."""
    arrow = sys.modules.get("pyarrow")  # a process that has not loaded Arrow (the report's runner) has no Arrow pool to empty
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


M_MMAP_MAX = -4  # glibc's mallopt parameter: how many blocks it may map on their own at once
DEFAULT_MMAP_MAX = 65536


@contextlib.contextmanager
def heap_kept():
    """Within the block, glibc serves large allocations from its heap instead of mapping each block above its threshold
    (128 KiB, raised to the size of larger blocks freed, up to 32 MiB) afresh and unmapping it when freed: a fresh mapping is
    faulted in a page (4 KiB) at a time, and the profile section makes many short-lived arrays of 1M customers and 5M
    orders. At 1M customers, the section on its own three times one after another with the sections' settings (no huge
    pages for numpy): 27.2-29.4 s against 27.8-38.4 s with the blocks of 4 MiB or more mapped afresh (the setting before,
    for a lower peak), 1.3M page faults against 4.3M, peak resident 2.39-2.44 GB against 2.30 GB. In three pairs of
    whole reports one after another: the profile section 32.8, 28.3 and 37.6 s against 45.7, 37.7 and 40.3 s, the
    report's peak 3.77-3.84 GiB against 3.84-3.92 GiB (2026-12-03, bench/RESULTS.md). The heap still gives back what
    ``give_back_memory`` finds free. Not for the other sections: on their own churn and rfm were 1-1.5 s faster with it
    and churn held 0.1 GB more, the others took the same time; the data stage was 6 s faster but peaked 0.3 GB higher,
    above what the report's 4 GiB goal leaves it. Only the main thread's heap grows so; another thread's heap is at most
    64 MiB, and glibc maps a larger block for it anyway. Afterwards glibc maps large blocks again. glibc only (Linux);
    elsewhere it does nothing."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        yield
        return
    mallopt(M_MMAP_MAX, 0)
    try:
        yield
    finally:
        mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
