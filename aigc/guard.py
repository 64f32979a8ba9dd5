"""What keeps one visitor of the public demo from taking memory, disk or the
queue from the others. app.py installs each part; the numbers are in Limits
(and in the README, "Running it in public").

    Guard          ASGI middleware, before Gradio reads a byte: request bodies
                   capped (an upload at Limits.upload_bytes, anything else at
                   Limits.body_bytes, which also bounds inline data: URLs),
                   uploads counted per client against a disk quota, and
                   Gradio's file folder kept under a total size, oldest first
    FairQueue      per-session and per-client caps on waiting and running jobs
                   ("too many requests at once"; a client that keeps asking
                   has its refusals held a second each), and a queue order
                   that serves every visitor's first job before anyone's second
    ResultCache    the same inputs give the same pictures: computed once, kept
                   in a bounded cache
    guard_image, guard_sketchpad
                   every picture a component receives passes
                   aigc.preprocess.inspect (bytes, format, declared pixels,
                   layer count) before Gradio decodes any of it
    short, short_errors
                   a value for an error message, and every component's own
                   conversion errors: never a visitor's megabytes echoed back
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import random
import threading
import time
from collections import OrderedDict, defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gradio as gr

from .preprocess import MAX_BYTES, NOT_AN_IMAGE, ImageError, inspect

log = logging.getLogger("aigc.guard")
MB = 2**20

TOO_MANY = ("Too many requests at once: you have {n} waiting or running, the most one visitor may have. "
            "Please wait for them to finish, then try again.")
UPLOADS_FULL = ("You have uploaded {used:.0f} MB in the last few minutes, the most one visitor may keep here "
                "({quota:.0f} MB). Please try again in a few minutes.")
DISK_FULL = "The server's space for uploads is full right now. Please try again in a few minutes."
BODY_TOO_BIG = "That request is {size:,} bytes; this server takes at most {limit:,} here."
BAD_SKETCH = "That drawing could not be read. Please clear the sketchpad and draw again."


@dataclass(frozen=True)
class Limits:
    """Per-visitor bounds of the public demo. A client is an IP address (the
    proxy's X-Forwarded-For with trust_proxy); a session is one open page."""
    upload_bytes: int = MAX_BYTES        # one uploaded file (Gradio's max_file_size too)
    body_bytes: int = 256 * 1024         # any other request: values and file references, inline data: URLs
    client_disk_bytes: int = 50 * MB     # what one client's uploads may hold on disk at once
    total_disk_bytes: int = 1024 * MB    # Gradio's file folder (uploads and results): oldest files go first
    file_ttl_s: int = 900                # uploads and results are deleted this long after their last use
    sweep_every_s: float = 10.0          # how often (at most; only when requests come) the folder is measured
    layers: int = 4                      # layers of a sketch
    sketch_bytes: int = 2 * MB           # one image of a sketch (the page sends a 280 x 280 PNG)
    sketch_store_bytes: int = 32 * MB    # sketch images held in memory between their upload and their use
    session_jobs: int = 8                # jobs one page may have waiting or running
    session_workers: int = 1             # workers one page may hold at once (its other jobs wait their turn)
    client_jobs: int = 64                # jobs one client (all its pages) may have waiting or running
    fair_share: int = 8                  # in the queue order, a client's 8 pages count as one page
    free_refusals: int = 8               # "too many requests" answered at once, per client per 10 s; later ones...
    refusal_delay_s: float = 1.0         # ...are held this long first, so a flood slows itself (0: never held)
    held_requests: int = 512             # refusals held at once, all clients (beyond it they are answered at once)
    queue_size: int = 100                # jobs waiting in all; beyond this Gradio answers "queue full"
    cache_entries: int = 128             # results kept (each a PNG or a PNG and a GIF)
    trust_proxy: bool = False            # take the client's address from X-Forwarded-For (behind a proxy)


def short(value, limit: int = 60) -> str:
    """repr(value), cut to about `limit` characters: an error message names
    what was sent without echoing a visitor's megabytes back."""
    if isinstance(value, (str, bytes)) and len(value) > limit:
        text = repr(value[:limit])
        return f"{text}... ({len(value):,} characters)" if isinstance(value, str) else f"{text}... ({len(value):,} bytes)"
    text = repr(value)
    return text if len(text) <= limit + 20 else text[:limit] + "..."


def clip(text: str, limit: int = 400) -> str:
    """A message cut to about `limit` characters, its start and its end kept
    (where it usually says what is allowed)."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit // 2]} [...] {text[-(limit // 2):]}"


def short_errors(blocks: gr.Blocks, limit: int = 400) -> None:
    """Wrap every component's conversion of its input (preprocess), so that
    an error it raises, Gradio's own included ("Value: <what was sent> is
    not in the list of choices"), reaches the visitor cut to `limit`
    characters. Call once the page is laid out."""
    for block in list(blocks.blocks.values()):
        preprocess = getattr(block, "preprocess", None)
        if preprocess is None or getattr(preprocess, "_aigc_short", False):
            continue

        def checked(payload, _preprocess=preprocess):
            try:
                return _preprocess(payload)
            except gr.Error as e:
                if len(str(e.message)) <= limit:
                    raise
                raise gr.Error(clip(e.message, limit), print_exception=False) from None
            except Exception as e:
                if len(str(e)) <= limit:
                    raise
                raise gr.Error(clip(str(e), limit), print_exception=False) from None

        checked._aigc_short = True
        block.preprocess = checked


def client_address(peer: str | None, forwarded: str | None, trust_proxy: bool) -> str:
    """The client a request counts against: the peer's address, or behind a
    trusted proxy the last X-Forwarded-For entry (the one the proxy added;
    entries before it are whatever the client wrote)."""
    if trust_proxy and forwarded:
        last = forwarded.split(",")[-1].strip()
        if last:
            return last
    return peer or "unknown"


def _request_client(request, trust_proxy: bool) -> str:
    """A fastapi.Request -> client_address."""
    if request is None:
        return "unknown"
    peer = request.client.host if getattr(request, "client", None) else None
    return client_address(peer, request.headers.get("x-forwarded-for"), trust_proxy)


# ---- the middleware ---------------------------------------------------------------
def _plain(status: int, message: str):
    body = message.encode()
    return ({"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]},
            {"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware in front of Gradio (installed through launch's
    app_kwargs={"middleware": [...]}).

    Every POST body is bounded before the app reads it: a file route
    (upload, component server, recording) at limits.upload_bytes plus form
    overhead, and it must say its Content-Length; anything else at
    limits.body_bytes, read here first. An upload that would take its client
    over limits.client_disk_bytes on disk (counting its uploads of the last
    limits.file_ttl_s that still exist) is refused with 429; one the folder
    has no room for, 507. Every limits.sweep_every_s (when requests come) the
    folder is measured and, when over limits.total_disk_bytes, its oldest
    files go first."""

    FILE_ROUTES = ("/gradio_api/upload", "/gradio_api/component_server", "/gradio_api/process_recording")
    FORM_OVERHEAD = 64 * 1024
    MIN_AGE_S = 60.0   # a result younger than this may still be on its way to the browser: never swept

    def __init__(self, app, limits: Limits = Limits(), folder: str | Path | None = None):
        self.app = app
        self.limits = limits
        if folder is None:
            from gradio.utils import get_upload_folder

            folder = get_upload_folder()
        self.folder = Path(folder)
        self._uploads: dict[str, deque[tuple[float, str]]] = defaultdict(deque)   # client -> (time, path)
        self._lock = threading.Lock()
        self._last_sweep = 0.0
        self._sweeping = False
        self.disk_used = 0
        self._busy = threading.Event()   # requests came since memory was last handed back
        self._trimmer: threading.Thread | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        self._busy.set()
        if self._trimmer is None:
            self._trimmer = threading.Thread(target=self._trim, name="aigc-trim", daemon=True)
            self._trimmer.start()
        self._maybe_sweep()
        path = scope["path"].rstrip("/")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        file_route = path.endswith(self.FILE_ROUTES)
        limit = self.limits.upload_bytes + self.FORM_OVERHEAD if file_route else self.limits.body_bytes
        try:
            declared = int(headers["content-length"]) if "content-length" in headers else None
        except ValueError:
            declared = None
        if declared is not None and declared > limit:
            return await self._refuse(send, 413, BODY_TOO_BIG.format(size=declared, limit=limit))
        if not file_route:   # small: read it here, whole, and hand it on
            body, more = bytearray(), True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > limit:
                    return await self._refuse(send, 413, BODY_TOO_BIG.format(size=len(body), limit=limit))
            sent = False

            async def replay():
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": bytes(body), "more_body": False}
                return await receive()

            return await self.app(scope, replay, send)
        if declared is None:
            return await self._refuse(send, 411, "Uploads must say their Content-Length.")
        if path.endswith("/gradio_api/upload"):
            client = client_address(scope.get("client", (None,))[0] if scope.get("client") else None,
                                    headers.get("x-forwarded-for"), self.limits.trust_proxy)
            used = self.client_usage(client)
            if used + declared > self.limits.client_disk_bytes:
                return await self._refuse(send, 429, UPLOADS_FULL.format(
                    used=used / MB, quota=self.limits.client_disk_bytes / MB))
            if self.disk_used + declared > self.limits.total_disk_bytes:
                self._sweep()   # measure now; refuse only if it is still full
                if self.disk_used + declared > self.limits.total_disk_bytes:
                    return await self._refuse(send, 507, DISK_FULL)
            return await self.app(scope, self._counted(receive, declared), self._recorder(send, client))
        return await self.app(scope, self._counted(receive, declared), send)

    @staticmethod
    async def _refuse(send, status: int, message: str):
        start, body = _plain(status, message)
        await send(start)
        await send(body)

    @staticmethod
    def _counted(receive, declared: int):
        """No more than the declared length reaches the app: a client that
        sends more is cut off (the app sees a disconnect)."""
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > declared:
                    return {"type": "http.disconnect"}
            return message

        return counted

    def _recorder(self, send, client: str):
        """Wrap send: the upload route answers with the paths it stored; they count against `client`."""
        status, chunks = 0, []

        async def recording(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 200:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self._record(client, b"".join(chunks))
            await send(message)

        return recording

    def _record(self, client: str, body: bytes) -> None:
        try:
            paths = json.loads(body)
        except ValueError:
            return
        now = time.time()
        with self._lock:
            for p in paths if isinstance(paths, list) else []:
                if isinstance(p, str):
                    self._uploads[client].append((now, p))
                    try:
                        self.disk_used += os.stat(p).st_size
                    except OSError:   # moved into place by a background task a moment later
                        self.disk_used += 0

    def client_usage(self, client: str) -> int:
        """Bytes on disk of `client`'s uploads of the last file_ttl_s that still exist."""
        cutoff = time.time() - self.limits.file_ttl_s
        total = 0
        with self._lock:
            entries = self._uploads.get(client)
            if not entries:
                return 0
            while entries and entries[0][0] < cutoff:
                entries.popleft()
            kept = deque()
            for when, p in entries:
                try:
                    total += os.stat(p).st_size
                except OSError:
                    continue   # swept or expired: no longer counts
                kept.append((when, p))
            self._uploads[client] = kept
            if not kept:
                del self._uploads[client]
        return total

    def _trim(self) -> None:
        """Every few seconds after requests came: hand freed heap memory back
        to the system (glibc keeps it, per thread arena, after a burst of
        big requests), so the server shrinks back to its idle size."""
        trim = _malloc_trim()
        while trim is not None:
            self._busy.wait()
            time.sleep(TRIM_EVERY_S)
            self._busy.clear()
            trim(0)

    # ---- the folder's total ----------------------------------------------------------
    def _maybe_sweep(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < self.limits.sweep_every_s or self._sweeping:
            return
        self._last_sweep = now
        self._sweeping = True
        threading.Thread(target=self._sweep, name="aigc-sweep", daemon=True).start()

    def _sweep(self) -> None:
        """Measure the folder; over the total, delete the oldest files (older
        than MIN_AGE_S) until it is under 80% of it; then drop empty folders."""
        try:
            files = []
            for entry in _walk(self.folder):
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                files.append((st.st_mtime, st.st_size, entry.path))   # Gradio touches a file it hands out again
            total = sum(f[1] for f in files)
            if total > self.limits.total_disk_bytes:
                files.sort()
                cutoff = time.time() - self.MIN_AGE_S
                target = 0.8 * self.limits.total_disk_bytes
                for when, size, p in files:
                    if total <= target or when > cutoff:
                        break
                    try:
                        os.unlink(p)
                        total -= size
                    except OSError:
                        pass
                log.warning("file folder %s was over %d MB: oldest files removed, %d MB left", self.folder,
                            self.limits.total_disk_bytes // MB, total // MB)
            self.disk_used = total
            remove_empty_dirs(self.folder)
        except Exception:
            log.exception("sweeping %s failed", self.folder)
        finally:
            self._sweeping = False


TRIM_EVERY_S = 5.0


def _malloc_trim():
    """glibc's malloc_trim, or None where there is none (macOS, musl)."""
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _walk(folder: Path):
    """Files under folder, two levels deep (Gradio keeps <hash>/<name>)."""
    try:
        top = list(os.scandir(folder))
    except OSError:
        return
    for entry in top:
        if entry.is_file(follow_symlinks=False):
            yield entry
        elif entry.is_dir(follow_symlinks=False):
            try:
                yield from (e for e in os.scandir(entry.path) if e.is_file(follow_symlinks=False))
            except OSError:
                continue


def remove_empty_dirs(folder: str | Path) -> None:
    try:
        subdirs = [e.path for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for d in subdirs:
        try:
            os.rmdir(d)   # only succeeds when empty
        except OSError:
            pass


# ---- the queue ----------------------------------------------------------------------
class FairQueue:
    """Caps and order for Gradio's queue (installed on blocks._queue.push,
    Gradio 6.31's one entry for /queue/join and /call/<name>).

    A job joins unless its session already has limits.session_jobs, or its
    client limits.client_jobs, waiting or running; then it ends at once with
    TOO_MANY (the visitor sees the message; nothing was queued); past a
    client's first few refusals, each is held a while first (hold_for). Jobs that
    join are ordered by how many their own page has ahead of them (and their
    client, in limits.fair_share units), arrival breaking ties: one client's
    flood of jobs waits behind everyone else's first job. And a page holds at
    most limits.session_workers workers at once (installed on
    blocks._queue.get_events, which hands jobs to workers): with two
    workers, a page that floods keeps one busy and the next visitor finds
    the other free."""

    REFUSAL_WINDOW_S = 10.0

    def __init__(self, limits: Limits = Limits()):
        self.limits = limits
        self.refused = 0
        self.held = 0   # refusals being held now
        self._refusals: dict[str, deque[float]] = defaultdict(deque)   # client -> times of its recent refusals

    def hold_for(self, client: str, now: float | None = None) -> float:
        """Seconds to hold `client`'s next refusal before answering it. Its
        first limits.free_refusals in REFUSAL_WINDOW_S are answered at once (a
        visitor who clicked once too often); beyond that each is held
        limits.refusal_delay_s. A script that keeps N jobs in flight then gets
        at most N refusals a second instead of hundreds, each of which costs
        the event loop that serves everyone; a held request costs only an
        idle coroutine and its socket, and at most limits.held_requests are held."""
        now = time.monotonic() if now is None else now
        times = self._refusals[client]
        while times and now - times[0] > self.REFUSAL_WINDOW_S:
            times.popleft()
        times.append(now)
        if len(self._refusals) > 10_000:   # forget clients seen long ago (a spoofed-address flood)
            for c in [c for c, t in self._refusals.items() if not t or now - t[-1] > self.REFUSAL_WINDOW_S]:
                del self._refusals[c]
        if len(times) <= self.limits.free_refusals or self.held >= self.limits.held_requests:
            return 0.0
        return self.limits.refusal_delay_s

    def install(self, blocks: gr.Blocks) -> "FairQueue":
        queue = blocks._queue
        original = queue.push

        def is_over(session, client):
            sessions, clients = self._counts(queue)
            over = max(sessions.get(session, 0) - self.limits.session_jobs + 1,
                       clients.get(client, 0) - self.limits.client_jobs + 1) > 0
            return over, sessions, clients

        async def push(body, request, username):
            session = body.session_hash
            client = _request_client(request, self.limits.trust_proxy)
            over, sessions, clients = is_over(session, client)
            hold = self.hold_for(client) if over and self.limits.refusal_delay_s > 0 else 0.0
            if hold:   # before any of Gradio's work for this request
                self.held += 1
                try:
                    await asyncio.sleep(hold)
                finally:
                    self.held -= 1
                over, sessions, clients = is_over(session, client)   # its jobs may have finished meanwhile
            ok, event_id, state = await original(body, request, username)
            if not ok:
                return ok, event_id, state
            event = queue.event_ids_to_events.get(event_id)
            if event is None or not self._queued(queue, event):   # a cache hit, answered already
                return ok, event_id, state
            if over:
                self.refused += 1
                n = sessions.get(session, 0) if sessions.get(session, 0) >= self.limits.session_jobs \
                    else clients.get(client, 0)
                await queue.remove_from_queue(event_id)
                self._fail(queue, event, TOO_MANY.format(n=n))
                return ok, event_id, state
            self._reorder(queue, event.concurrency_id)
            return ok, event_id, state

        queue.push = push
        original_get_events = queue.get_events

        def get_events():
            running: dict[str, int] = defaultdict(int)
            for job in queue.active_jobs:
                for event in job or ():
                    running[event.session_hash] += 1
            ids = list(queue.event_queue_per_concurrency_id)
            random.shuffle(ids)   # as Gradio does: no line is always served first
            for cid in ids:
                q = queue.event_queue_per_concurrency_id[cid]
                if not q.queue or (q.concurrency_limit is not None and q.current_concurrency >= q.concurrency_limit):
                    continue
                if any(e.fn.batch for e in q.queue):
                    return original_get_events()
                for event in q.queue:   # already in fair order
                    if running[event.session_hash] < self.limits.session_workers:
                        q.queue.remove(event)
                        return [event], False, cid
            return None

        queue.get_events = get_events
        return self

    def _events(self, queue):
        """(event, running?) for every job waiting or running."""
        for job in queue.active_jobs:
            for event in job or ():
                yield event, True
        for q in queue.event_queue_per_concurrency_id.values():
            for event in q.queue:
                yield event, False

    def _counts(self, queue) -> tuple[dict, dict]:
        sessions: dict[str, int] = defaultdict(int)
        clients: dict[str, int] = defaultdict(int)
        for event, _ in self._events(queue):
            sessions[event.session_hash] += 1
            clients[_request_client(event.request, self.limits.trust_proxy)] += 1
        return sessions, clients

    @staticmethod
    def _queued(queue, event) -> bool:
        q = queue.event_queue_per_concurrency_id.get(event.concurrency_id)
        return q is not None and any(e is event for e in q.queue)

    def _reorder(self, queue, concurrency_id) -> None:
        """Stable sort of one waiting line by max(rank in its session, rank in
        its client // fair_share); a rank counts the jobs already running."""
        q = queue.event_queue_per_concurrency_id[concurrency_id]
        sessions: dict[str, int] = defaultdict(int)
        clients: dict[str, int] = defaultdict(int)
        for event, running in self._events(queue):
            if running:
                sessions[event.session_hash] += 1
                clients[_request_client(event.request, self.limits.trust_proxy)] += 1
        priority = {}
        for event in q.queue:   # arrival order
            client = _request_client(event.request, self.limits.trust_proxy)
            priority[id(event)] = max(sessions[event.session_hash], clients[client] // self.limits.fair_share)
            sessions[event.session_hash] += 1
            clients[client] += 1
        q.queue.sort(key=lambda e: priority[id(e)])   # no await in between: the queue loop sees it whole

    @staticmethod
    def _fail(queue, event, message: str) -> None:
        from gradio.server_messages import ProcessCompletedMessage
        from gradio.utils import error_payload

        content = error_payload(gr.Error(message, print_exception=False), True)
        queue.send_message(event, ProcessCompletedMessage(output=content, title=content.get("title") or "Error",
                                                          success=False))


# ---- results ---------------------------------------------------------------------------
class ResultCache:
    """Deterministic results, key -> value, the `entries` most recently used.
    A value's file paths (absolute str) must still exist to count as a hit;
    a hit touches them, so a folder that prunes the oldest files keeps them.
    Concurrent requests for one key compute it once (the others wait)."""

    def __init__(self, entries: int = 128):
        self.entries = entries
        self.hits = self.misses = 0
        self._values: OrderedDict = OrderedDict()
        self._pending: dict = {}
        self._lock = threading.Lock()

    def get(self, key, compute: Callable):
        if self.entries <= 0:
            return compute()
        for _ in range(2):
            with self._lock:
                value = self._values.get(key)
                if value is not None and _files_exist(value):
                    self._values.move_to_end(key)
                    self.hits += 1
                    return value
                waiting = self._pending.get(key)
                if waiting is None:
                    done = self._pending[key] = threading.Event()
                    break
            waiting.wait(60)   # someone is computing it: wait for theirs, then look again
        else:
            return compute()
        try:
            value = compute()
            with self._lock:
                self.misses += 1
                self._values[key] = value
                self._values.move_to_end(key)
                while len(self._values) > self.entries:
                    self._values.popitem(last=False)
            return value
        finally:
            with self._lock:
                self._pending.pop(key, None)
            done.set()


def _files_exist(value) -> bool:
    for item in value if isinstance(value, tuple) else (value,):
        if isinstance(item, str) and os.path.isabs(item):
            try:
                os.utime(item)
            except OSError:
                return False
    return True


# ---- pictures into components ------------------------------------------------------------
def _field(payload, name):
    return payload.get(name) if isinstance(payload, dict) else getattr(payload, name, None)


def screen(item, max_bytes: int = MAX_BYTES):
    """A picture as a component receives it (a FileData with a path in the
    upload folder, or an inline data: URL; or bytes) -> None when it is a file
    that passed, or the bytes of an inline picture that passed (Gradio would
    decode it whole, so the handler gets the bytes instead). Raises
    ImageError: too many bytes, not a picture, too many pixels declared."""
    if isinstance(item, (bytes, bytearray)):
        if len(item) > max_bytes:
            raise ImageError(f"That picture is {len(item) / MB:.1f} MB; at most {max_bytes / MB:.0f} MB here.")
        inspect(bytes(item))
        return bytes(item)
    url = _field(item, "url")
    if isinstance(url, str) and url.startswith("data:"):
        head, _, data = url.partition(",")
        if ";base64" not in head:
            raise ImageError(NOT_AN_IMAGE)
        if len(data) * 3 // 4 > max_bytes:
            raise ImageError(f"That picture is about {len(data) * 3 / 4 / MB:.1f} MB; at most "
                             f"{max_bytes / MB:.0f} MB here.")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ImageError(NOT_AN_IMAGE) from None
        inspect(raw)
        return raw
    path = _field(item, "path")
    if not isinstance(path, str):
        raise ImageError(NOT_AN_IMAGE)
    if os.path.getsize(path) > max_bytes if os.path.isfile(path) else False:
        raise ImageError(f"That picture is {os.path.getsize(path) / MB:.1f} MB; at most {max_bytes / MB:.0f} MB here.")
    inspect(path)
    return None


def guard_image(image: gr.Image, message: str = NOT_AN_IMAGE) -> gr.Image:
    """Every picture gr.Image(type="filepath", image_mode=None) receives is
    screened (bytes, format, declared pixels) before Gradio opens it; an
    inline data: URL reaches the handler as bytes, never decoded by Gradio.
    Anything Gradio's own conversion then trips on becomes `message`."""
    preprocess = image.preprocess

    def checked(payload):
        if payload is None:
            return None
        try:
            inline = screen(payload)
        except ImageError as e:
            raise gr.Error(str(e), print_exception=False) from None
        except Exception:
            raise gr.Error(message, print_exception=False) from None
        if inline is not None:
            return inline
        try:
            return preprocess(payload)
        except gr.Error:
            raise
        except Exception:
            raise gr.Error(message, print_exception=False) from None

    image.preprocess = checked
    return image


def guard_sketchpad(sketchpad: gr.ImageEditor, limits: Limits = Limits()) -> gr.ImageEditor:
    """A Sketchpad/ImageEditor whose value reaches the handler as
    {"background": None, "layers": [], "composite": path or bytes}: every
    image is screened from its header and the layers are counted (at most
    limits.layers), and none is decoded here (Gradio would decode the
    background, each layer and the composite at full size); the handler
    decodes the composite alone, through aigc.preprocess. Its blob upload
    (the accept_blobs server function) is bounded the same way, and what it
    holds in memory stays under limits.sketch_store_bytes."""
    refused: OrderedDict[str, str] = OrderedDict()   # drawing id -> why a piece of it was turned away

    def checked(payload):
        if payload is None:
            return None
        try:
            blob_id = _field(payload, "id")
            if blob_id is not None:
                blobs = sketchpad.blob_storage.pop(blob_id, None)
                if blobs is None:
                    raise ImageError(refused.pop(str(blob_id)[:100], BAD_SKETCH))
                background, layers, composite = blobs.background, list(blobs.layers), blobs.composite
            else:
                background, layers, composite = (_field(payload, "background"), _field(payload, "layers") or [],
                                                 _field(payload, "composite"))
            if len(layers) > limits.layers:
                raise ImageError(f"A drawing can have at most {limits.layers} layers; this one has {len(layers):,}.")
            for item in (background, *layers):
                if item is not None:
                    screen(item, limits.sketch_bytes)
            if composite is None:
                return {"background": None, "layers": [], "composite": None}
            inline = screen(composite, limits.sketch_bytes)
            return {"background": None, "layers": [], "composite": inline if inline is not None
                    else _field(composite, "path")}
        except ImageError as e:
            raise gr.Error(str(e), print_exception=False) from None
        except gr.Error:
            raise
        except Exception:
            raise gr.Error(BAD_SKETCH, print_exception=False) from None

    accept = sketchpad.accept_blobs

    def accept_blobs(data):
        fields = _field(data, "data") or {}
        files = _field(data, "files") or []
        blob_id = str(fields.get("id"))[:100]
        try:
            blob = files[0][1] if files else None
            if not isinstance(blob, (bytes, bytearray)):
                raise ImageError(BAD_SKETCH)
            if fields.get("type") == "layer":
                index = fields.get("index")
                if index in (None, "null") or not str(index).isdigit() or int(index) >= limits.layers:
                    raise ImageError(f"A drawing can have at most {limits.layers} layers.")
            elif fields.get("type") not in ("background", "composite"):
                raise ImageError(BAD_SKETCH)
            screen(bytes(blob), limits.sketch_bytes)
        except Exception as e:   # kept nothing; the drawing's use says why (this route has no error reply)
            sketchpad.blob_storage.pop(blob_id, None)
            refused[blob_id] = str(e) if isinstance(e, ImageError) else BAD_SKETCH
            while len(refused) > 256:
                refused.popitem(last=False)
            return None
        if blob_id in refused:   # a drawing with a refused piece stays refused
            return None
        result = accept(data)
        _trim_blobs(sketchpad.blob_storage, limits.sketch_store_bytes)
        return result

    accept_blobs._is_server_fn = True   # what gradio's @server marks: callable through /component_server
    sketchpad.accept_blobs = accept_blobs
    sketchpad.preprocess = checked
    return sketchpad


def _trim_blobs(store: dict, limit: int) -> None:
    """Drop the oldest drawings held until the rest fit in `limit` bytes."""
    def size(blobs):
        items = [blobs.background, blobs.composite, *blobs.layers]
        return sum(len(b) for b in items if b is not None)

    total = sum(size(b) for b in store.values())
    for key in list(store):
        if total <= limit:
            break
        total -= size(store.pop(key))
