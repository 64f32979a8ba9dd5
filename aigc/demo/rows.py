"""Drawing a grid on every core without changing its pictures.

A request on a 2-core server runs on one torch thread (serving_threads), so
a visitor alone on the server used half of it: 64 flow digits took 1.6 s.
Giving that request torch's own second thread would not do: a convolution
summed over two threads rounds differently from one, and the same link
would then give a picture a gray level off depending on the server's load.

Instead a grid is cut into blocks of at most ROWS pictures, the same blocks
for the same request on any server, and each block runs on one torch thread
in a pool with one worker per core. On a quiet server the blocks run side by
side; on a busy one, one after another; each block is computed the same way
either way, so the bytes do not depend on load (nor on the number of cores).
A request keeps at most `workers` blocks in the pool at once, so two
requests share it block by block instead of one waiting for all of the
other's. Only multi-step samplers go through the pool (`worth_it`); a
one-pass grid is drawn at once on the request's own thread.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Iterable, TypeVar

import torch

from ..families import FAMILIES

ROWS = 32   # pictures per block: a block of 32 rows gives the same bits as one of 64 (checked in tests)

T = TypeVar("T")
R = TypeVar("R")


def row_blocks(n: int, rows: int = ROWS) -> list[slice]:
    """Rows 0..n-1 as consecutive slices of at most `rows`: the blocks of a grid."""
    return [slice(i, min(i + rows, n)) for i in range(0, n, rows)]


class RowPool:
    """A pool of `workers` threads (default: one per core), each running
    torch on one thread, shared by every request of the server."""

    def __init__(self, workers: int | None = None):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:   # made on first use: importing the demo starts no threads
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="aigc-rows",
                                                initializer=torch.set_num_threads, initargs=(1,))
            return self._pool

    def map(self, fn: Callable[[T], R], items: Iterable[T],
            progress: Callable[[float], None] | None = None, parallel: bool = True) -> list[R]:
        """[fn(item) for item in items], computed in the pool, at most
        `workers` of them at once; progress(share done) after each. The
        first error raised by fn is raised here (blocks already running are
        left to finish; none is started after it). parallel=False: one after
        another on the caller's thread (see `worth_it`)."""
        items = list(items)
        if not parallel:
            out = []
            for i, item in enumerate(items):
                out.append(fn(item))
                if progress is not None:
                    progress((i + 1) / len(items))
            return out
        pool, results = self._executor(), [None] * len(items)
        pending: dict[Future, int] = {}
        queue = iter(enumerate(items))

        def submit() -> None:
            nxt = next(queue, None)
            if nxt is not None:
                pending[pool.submit(fn, nxt[1])] = nxt[0]

        for _ in range(self.workers):
            submit()
        done_count = 0
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                results[pending.pop(future)] = future.result()
                done_count += 1
                if progress is not None:
                    progress(done_count / len(items))
                submit()
        return results

    def generate(self, model, z: torch.Tensor, labels: torch.Tensor,
                 progress: Callable[[float], None] | None = None, group: int | None = None,
                 **sampler) -> torch.Tensor:
        """model.generate(z, labels, **sampler) for z (n, z_dim) and labels (n,),
        block by block where that is worth it -> images (n, 1, 28, 28) on the CPU.
        group: blocks are cut within each run of `group` rows (a grid's classes),
        so each is cut as a grid of that many alone; otherwise each group is one block."""
        parallel, n = worth_it(model), len(z)
        group = group or n
        blocks = [slice(start + s.start, start + s.stop) for start in range(0, n, group)
                  for s in (row_blocks(min(group, n - start)) if parallel else [slice(0, min(group, n - start))])]
        out = self.map(lambda s: model.generate(z[s], labels[s], **sampler), blocks, progress, parallel)
        return torch.cat(out)


def worth_it(model) -> bool:
    """Whether a model's grids are drawn in blocks side by side: those of a
    multi-step sampler (a flow model: 8 or more network passes per picture,
    about 1.6 s for 64 on one thread). A one-pass GAN or VAE grid takes tens
    of milliseconds, and most of its API round trip is the server's own
    (about 100 ms either way): it is drawn at once on the request's thread."""
    return FAMILIES[model.family].takes_guidance


POOL = RowPool()   # the server's: one worker per core
