"""Run small torch computations on a fixed number of threads.

On a shared 2-core machine, torch's default of one thread per core made a small
forward pass 5-40x slower whenever other processes were busy (threads spin waiting
for each other); one thread is never much slower for these batch sizes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(threads: int = 1) -> Iterator[None]:
    """Set torch's intra-op thread count for the block, then restore it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
