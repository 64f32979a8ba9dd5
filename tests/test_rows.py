"""aigc.demo.rows: a grid drawn block by block on a pool of one-thread workers
gives the same pictures however many workers there are, in order, with
errors passed on and no request taking more than its share of the pool."""
import threading
import time

import pytest
import torch

from aigc import latent
from aigc.demo.rows import ROWS, RowPool, row_blocks

from .conftest import tiny_model


def test_row_blocks_cover_every_row_once_in_order():
    assert row_blocks(0) == []
    assert row_blocks(5, rows=2) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    n = 3 * ROWS + 1
    covered = torch.cat([torch.arange(n)[s] for s in row_blocks(n)])
    assert torch.equal(covered, torch.arange(n)) and max(s.stop - s.start for s in row_blocks(n)) == ROWS


def test_map_keeps_the_order_and_reports_progress():
    seen = []
    out = RowPool(2).map(lambda i: (time.sleep(0.01 * (5 - i)), i * i)[1], range(5), progress=seen.append)
    assert out == [0, 1, 4, 9, 16] and seen == [k / 5 for k in range(1, 6)]


def test_an_error_in_a_block_reaches_the_caller_and_starts_nothing_more():
    started = []

    def fn(i):
        started.append(i)
        if i == 1:
            raise ValueError("block 1 is bad")
        time.sleep(0.05)
        return i

    with pytest.raises(ValueError, match="block 1"):
        RowPool(2).map(fn, range(20))
    time.sleep(0.2)
    assert len(started) < 20


def test_a_request_holds_at_most_its_share_of_the_pool():
    pool, lock, running, most = RowPool(2), threading.Lock(), [0], [0]

    def fn(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return i

    assert pool.map(fn, range(8)) == list(range(8)) and most[0] == 2
    # two requests at once share the pool block by block: the second's first block
    # starts long before the first request's 8 blocks are through
    first_start = {}

    def tagged(tag):
        def fn(i):
            first_start.setdefault(tag, time.perf_counter())
            time.sleep(0.05)
            return i
        return fn

    t0 = time.perf_counter()
    other = threading.Thread(target=pool.map, args=(tagged("a"), range(8)))
    other.start()
    time.sleep(0.01)
    pool.map(tagged("b"), range(2))
    other.join()
    assert first_start["b"] - t0 < 0.15   # a FIFO of all of a's blocks would make b wait ~0.2 s


def test_workers_threads_and_blocks_do_not_change_the_pictures():
    before = torch.get_num_threads()
    torch.set_num_threads(2)   # the caller's thread count must not matter: each block runs on one
    try:
        check_the_pictures()
    finally:
        torch.set_num_threads(before)


def check_the_pictures():
    model = tiny_model("flow", "mnist", seed=0).eval()
    z, y = latent.seed_noise(5, 2 * ROWS + 3, model.z_dim), torch.arange(2 * ROWS + 3) % 10
    one = RowPool(1).generate(model, z, y, steps=3)
    two = RowPool(2).generate(model, z, y, steps=3)
    assert one.shape == (2 * ROWS + 3, 1, 28, 28) and torch.equal(one, two)
    # and it is what the model draws from the same noise in one batch, up to rounding
    torch.set_num_threads(1)
    assert torch.allclose(one, model.generate(z, y, steps=3), atol=1e-5)


def test_one_pass_grids_are_drawn_at_once_on_the_callers_thread():
    from aigc.demo.rows import worth_it

    assert worth_it(tiny_model("flow")) and not worth_it(tiny_model("gan")) and not worth_it(tiny_model("vae"))
    threads, seen = [], []
    out = RowPool(2).map(lambda i: (threads.append(threading.current_thread()), i)[1], range(3), seen.append,
                         parallel=False)
    assert out == [0, 1, 2] and set(threads) == {threading.current_thread()} and seen == [1 / 3, 2 / 3, 1.0]
    gan = tiny_model("gan")
    z, y = latent.seed_noise(1, 2 * ROWS, gan.z_dim), torch.arange(2 * ROWS) % 10
    assert torch.equal(RowPool(2).generate(gan, z, y), gan.generate(z, y))   # one block: the model's own batch
