"""aigc.guard's queue policy on a small Blocks in this process: a client
that keeps asking past its caps has its refusals held (the flood slows
itself), and a held request that finds room when its hold ends is served.
The server-level attacks are in test_hostile.py."""
from __future__ import annotations

import json
import threading
import time
import uuid

import gradio as gr
import httpx
import pytest

from aigc.guard import TOO_MANY, FairQueue, Limits

from .tiny_demo import free_port


def test_hold_for_frees_the_first_refusals_then_holds_each():
    q = FairQueue(Limits(free_refusals=3, refusal_delay_s=0.7, held_requests=2))
    assert [q.hold_for("a", now=t) for t in (0, 1, 2)] == [0, 0, 0]
    assert q.hold_for("a", now=3) == 0.7
    assert q.hold_for("b", now=3) == 0           # another client has its own count
    assert q.hold_for("a", now=30) == 0          # the window has passed: a fresh start
    for t in (31, 32, 33):
        q.hold_for("a", now=t)
    q.held = 2                                   # the most held at once: answered without a hold
    assert q.hold_for("a", now=34) == 0


@pytest.fixture(scope="module")
def gate():
    """A one-worker server whose job waits for `release`; refusals past the
    first two of a client are held 0.6 s."""
    release = threading.Event()

    def slow(x):
        release.wait(20)
        return x

    with gr.Blocks() as demo:
        box = gr.Number()
        box.change(slow, box, box, api_name="slow")
    demo.queue(default_concurrency_limit=1)
    fq = FairQueue(Limits(session_jobs=1, client_jobs=100, free_refusals=2, refusal_delay_s=0.6)).install(demo)
    port = free_port()
    demo.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    fn = next(i for i, d in enumerate(demo.config["dependencies"]) if d.get("api_name") == "slow")
    yield release, fq, http, fn
    release.set()
    http.close()
    demo.close()


def join(http, fn, session) -> tuple[str, float]:
    t0 = time.perf_counter()
    r = http.post("/gradio_api/queue/join", json={"data": [1], "fn_index": fn, "session_hash": session,
                                                  "event_data": None, "trigger_id": None})
    r.raise_for_status()
    return r.json()["event_id"], time.perf_counter() - t0


def outcomes(http, session, n) -> dict[str, tuple[bool, str]]:
    out = {}
    with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    out[msg["event_id"]] = (msg["success"], str(msg["output"].get("error")))
                    if len(out) == n:
                        return out
    return out


def test_a_client_that_keeps_asking_has_its_refusals_held(gate):
    release, fq, http, fn = gate
    release.clear()
    fq._refusals.clear()   # each test starts as a client never refused
    session = uuid.uuid4().hex
    first, _ = join(http, fn, session)   # runs until released: the page's one job
    tries = [join(http, fn, session) for _ in range(4)]
    waits = [w for _, w in tries]
    assert max(waits[:2]) < 0.4 and min(waits[2:]) >= 0.6, waits   # two at once, then held
    release.set()
    results = outcomes(http, session, 5)
    assert results[first][0]
    for event_id, _ in tries:
        ok, error = results[event_id]
        assert not ok and TOO_MANY.split(":")[0] in error
    assert fq.held == 0


def test_a_held_request_that_finds_room_is_served(gate):
    release, fq, http, fn = gate
    release.clear()
    fq._refusals.clear()   # each test starts as a client never refused
    session = uuid.uuid4().hex
    join(http, fn, session)
    for _ in range(2):   # the free refusals
        join(http, fn, session)
    threading.Timer(0.2, release.set).start()   # the running job ends while the next request is held
    held, wait = join(http, fn, session)
    assert wait >= 0.6
    assert outcomes(http, session, 4)[held][0]
