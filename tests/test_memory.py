"""memory.py: what glibc keeps and gives back (Linux)."""

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only (mallopt); elsewhere heap_kept does nothing")

# in a process of its own: what an allocation faults in depends on the heap's history (what the tests before left free)
FAULTS = """
import json, resource
import numpy as np
from tierbook.memory import heap_kept

def faults(rounds=5):
    kept = []
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        large = np.ones(5_000_000)  # 40 MB: above glibc's largest threshold for blocks mapped on their own (32 MiB)
        kept.append(np.ones(100_000))  # 800 kB after it in the heap, so that the heap cannot shrink when it is freed
        del large
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

outside = faults()
with heap_kept():
    inside = faults()
print(json.dumps({"outside": outside, "inside": inside, "after": faults()}))
"""


def test_heap_kept_reuses_the_pages_of_large_blocks_freed_and_ends_with_the_block():
    """Mapped afresh, each 40 MB array is faulted in a page (4 KiB) at a time: about 9,800 faults a round. Within
    heap_kept the rounds after the first reuse its pages from the heap (the 800 kB arrays are faulted: 200 a round).
    Measured: 49,800 faults outside, 10,700 inside. Without huge pages for numpy, as the sections run
    (report._sections_environment)."""
    env = {**os.environ, "NUMPY_MADVISE_HUGEPAGE": "0"}
    out = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, env=env, check=True).stdout
    faults = json.loads(out)
    assert faults["outside"] > 5 * 9_000 and faults["after"] > 5 * 9_000  # mapped afresh each round, before and after the block
    assert faults["inside"] < 9_800 + 5 * 200 + 3_000  # one array's pages and the kept ones', with a margin
