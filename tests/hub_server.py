"""A Hugging Face Hub stand-in for the tests: the HTTP endpoints that
huggingface_hub 2.4 calls to resolve a revision, download files and publish a
folder, served from memory on 127.0.0.1 by a thread.

What it answers (the real Hub's paths, status codes and headers):
    GET  /api/models/{repo}[/revision/{rev}]     repo info: {"id", "sha", "siblings"}
    HEAD /{repo}/resolve/{rev}/{path}            X-Repo-Commit, ETag, Content-Length
    GET  /{repo}/resolve/{rev}/{path}            the bytes, with the same headers
    POST /api/repos/create                       409 when the repo exists
    POST /api/models/{repo}/branch/{branch}      409 when the branch exists
    POST /api/validate-yaml                      always valid
    POST /api/models/{repo}/preupload/{rev}      every file "regular" (inline in the commit)
    POST /api/models/{repo}/commit/{rev}         NDJSON: header, file, deletedFile
Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound),
which is what huggingface_hub turns into its typed errors. Every request is
recorded in `requests` as (method, path), so a test can count downloads.

`stall_files = True` makes file requests hang. Also: `refused_endpoint()` (nothing listens) and `SilentServer` (accepts
connections, never answers)."""
from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    """Commits as {path: bytes} snapshots; branches map names to commit shas."""

    def __init__(self):
        self.commits: dict[str, dict[str, bytes]] = {}
        self.branches: dict[str, str] = {}
        self.private = False

    def commit(self, files: dict[str, bytes], branch: str = "main", message: str = "") -> str:
        parent = self.branches.get(branch, "")
        h = hashlib.sha1(parent.encode() + message.encode())
        for path in sorted(files):
            h.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
        sha = h.hexdigest()
        self.commits[sha] = dict(files)
        self.branches[branch] = sha
        return sha

    def resolve(self, rev: str) -> str | None:
        if rev in self.branches:
            return self.branches[rev]
        return rev if rev in self.commits else None


class HubServer:
    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.auth: list[str | None] = []  # Authorization header of each write request
        self.stall_files = False  # True: /resolve/ requests get no answer until stop()
        self._release = threading.Event()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)  # a short poll: stop() returns at once

    # ---- test helpers -------------------------------------------------------
    def start(self) -> "HubServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def repo(self, repo_id: str) -> Repo:
        return self.repos.setdefault(repo_id, Repo())

    def add_folder(self, repo_id: str, folder: str | Path, prefix: str = "", branch: str = "main",
                   message: str = "") -> str:
        """Commit every file under `folder` (as `prefix/relative/path`) on top of `branch`."""
        repo = self.repo(repo_id)
        files = dict(repo.commits.get(repo.branches.get(branch, ""), {}))
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file():
                files[f"{prefix}{p.relative_to(folder).as_posix()}"] = p.read_bytes()
        return repo.commit(files, branch=branch, message=message)

    def count(self, method: str | None = None, contains: str = "") -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if (method is None or m == method) and contains in p)

    def downloads(self) -> int:
        """File transfers: GET /{repo}/resolve/... (a HEAD sends no body)."""
        return self.count("GET", "/resolve/")

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()


def _handler(hub: HubServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as huggingface_hub's pooled client expects

        def log_message(self, *args):  # keep the test output clean
            pass

        # ---- plumbing ---------------------------------------------------
        def _record(self) -> str:
            path = unquote(urlsplit(self.path).path)
            with hub._lock:
                hub.requests.append((self.command, path))
            return path

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None,
                  content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, obj, headers: dict | None = None) -> None:
            self._send(status, json.dumps(obj).encode(), headers)

        def _error(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
            self._json(status, {"error": message},
                       {"X-Error-Code": code, "X-Error-Message": message, **(headers or {})})

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _repo_and_rest(self, parts: list[str]) -> tuple[str, Repo | None, list[str]]:
            repo_id = "/".join(parts[:2])
            return repo_id, hub.repos.get(repo_id), parts[2:]

        # ---- reads --------------------------------------------------------
        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            path = self._record()
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"]:
                return self._model_info(parts[2:])
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve(parts)
            self._error(404, "NotFound", f"no route for {path}")

        def _model_info(self, parts: list[str]):
            repo_id, repo, rest = self._repo_and_rest(parts)
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found")
            rev = rest[1] if rest[:1] == ["revision"] and len(rest) == 2 else "main"
            sha = repo.resolve(rev)
            if sha is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            self._json(200, {"id": repo_id, "modelId": repo_id, "sha": sha, "private": repo.private,
                             "siblings": [{"rfilename": p} for p in sorted(repo.commits[sha])]})

        def _resolve(self, parts: list[str]):
            if hub.stall_files:  # a Hub whose API answers and whose file storage hangs
                hub._release.wait(60)
                self.close_connection = True
                return
            repo_id, repo, rest = self._repo_and_rest(parts)
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found")
            rev, filename = rest[1], "/".join(rest[2:])
            sha = repo.resolve(rev)
            if sha is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            data = repo.commits[sha].get(filename)
            if data is None:
                return self._error(404, "EntryNotFound", f"{filename} does not exist at {sha}",
                                   {"X-Repo-Commit": sha})
            # The cache names the blob after the ETag: the Hub sends the sha256 of
            # LFS files; a content hash of any kind keeps the cache consistent.
            self._send(200, data, {"X-Repo-Commit": sha, "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                                   "Accept-Ranges": "bytes"}, content_type="application/octet-stream")

        # ---- writes -------------------------------------------------------
        def do_POST(self):
            path = self._record()
            body = self._body()
            with hub._lock:
                hub.auth.append(self.headers.get("Authorization"))
            parts = path.strip("/").split("/")
            if parts == ["api", "repos", "create"]:
                return self._create_repo(json.loads(body))
            if parts == ["api", "validate-yaml"]:
                return self._json(200, {"errors": [], "warnings": []})
            if parts[:2] == ["api", "models"] and len(parts) >= 6:
                repo_id, repo, rest = self._repo_and_rest(parts[2:])
                if repo is None:
                    return self._error(404, "RepoNotFound", "Repository not found")
                action, rev = rest[0], "/".join(rest[1:])
                if action == "branch":
                    return self._create_branch(repo, rev, json.loads(body or b"{}"))
                if action == "preupload":
                    return self._preupload(repo, rev, json.loads(body))
                if action == "commit":
                    return self._commit(repo_id, repo, rev, body)
            self._error(404, "NotFound", f"no route for POST {path}")

        def _create_repo(self, payload: dict):
            repo_id = f"{payload['organization']}/{payload['name']}"
            if repo_id in hub.repos:  # the Hub's 409 carries the url too: create_repo(exist_ok=True) reads it
                return self._json(409, {"error": "You already created this model repo",
                                        "url": f"{hub.endpoint}/{repo_id}"},
                                  {"X-Error-Message": "You already created this model repo"})
            repo = hub.repo(repo_id)
            repo.private = payload.get("visibility") == "private"
            repo.commit({".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"},
                        message="initial commit")
            self._json(200, {"url": f"{hub.endpoint}/{repo_id}", "name": repo_id})

        def _create_branch(self, repo: Repo, branch: str, payload: dict):
            if branch in repo.branches:
                return self._error(409, "Conflict", f"Reference already exists: refs/heads/{branch}")
            start = repo.resolve(payload.get("startingPoint") or "main")
            if start is None:
                return self._error(404, "RevisionNotFound", "Invalid rev id")
            repo.branches[branch] = start
            self._json(200, {})

        def _preupload(self, repo: Repo, rev: str, payload: dict):
            sha = repo.resolve(rev)
            current = repo.commits.get(sha, {}) if sha else {}
            files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                      "oid": git_blob_sha(current[f["path"]]) if f["path"] in current else None}
                     for f in payload["files"]]
            self._json(200, {"files": files, "commitOid": sha})

        def _commit(self, repo_id: str, repo: Repo, rev: str, body: bytes):
            sha = repo.resolve(rev)
            if sha is None or rev not in repo.branches:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            files = dict(repo.commits[sha])
            message = ""
            for line in body.splitlines():
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    message = value["summary"]
                elif key == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                else:  # lfsFile, deletedFolder, copies: never requested, since preupload says "regular"
                    return self._error(400, "BadRequest", f"unsupported commit operation {key}")
            new = repo.commit(files, branch=rev, message=message)
            self._json(200, {"commitUrl": f"{hub.endpoint}/{repo_id}/commit/{new}", "commitOid": new,
                             "success": True})

    return Handler


def refused_endpoint() -> str:
    """An endpoint where nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class SilentServer:
    """Accepts TCP connections and never sends a byte: a Hub that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.accepted.append(conn)  # held open, never read from or written to
            except (TimeoutError, OSError):
                continue

    def start(self) -> "SilentServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for c in self.accepted:
            c.close()
        self.sock.close()
