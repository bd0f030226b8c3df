"""A small in-memory Hub-compatible server for upload tests (the endpoints huggingface_hub calls), stdlib only.

It speaks the endpoints huggingface_hub uses to create a repo, upload a folder in one commit (preupload
answering ``uploadMode: "regular"``, NDJSON ``/commit``), tag a commit and download files back (``resolve``
with ``X-Repo-Commit``/``ETag``/``X-Error-Code``). Every request is recorded for assertions.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from hub_servers import LocalHTTPServer

_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/(?P<op>preupload|commit|tag|revision|branch)/(?P<rev>.+)$")
_DISCUSSIONS = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/discussions(?:/(?P<num>\d+))?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


@dataclass
class Repo:
    private: bool
    refs: dict[str, str] = field(default_factory=dict)  # branch, tag or refs/pr/N -> commit sha
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> {path: content}
    messages: dict[str, str] = field(default_factory=dict)
    prs: int = 0
    pr_titles: dict[int, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        if revision in self.commits:
            return revision
        return self.refs.get(revision)


class HubDouble(LocalHTTPServer):
    """``with HubDouble() as hub: hub.url`` — a threaded server on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[dict] = []
        self._counter = itertools.count()
        self._lock = threading.Lock()
        super().__init__(_handler(self))

    def new_commit(self, repo: Repo, parent: str | None, files: dict[str, bytes], message: str) -> str:
        sha = hashlib.sha1(f"{next(self._counter)}{message}".encode()).hexdigest()
        repo.commits[sha] = {**(repo.commits.get(parent) or {}), **files} if parent else dict(files)
        repo.messages[sha] = message
        return sha

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo.commits[repo.resolve(revision)]


def _handler(hub: HubDouble):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, payload=None, headers: dict | None = None, body: bytes | None = None) -> None:
            data = body if body is not None else (json.dumps(payload).encode() if payload is not None else b"")
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if body is None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _error(self, status: int, code: str, message: str) -> None:
            self._send(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

        def _record(self, body: bytes) -> None:
            with hub._lock:
                hub.requests.append({"method": self.command, "path": self.path, "body": body,
                                     "user_agent": self.headers.get("user-agent", ""),
                                     "authorization": self.headers.get("authorization")})

        def do_HEAD(self) -> None:
            self._record(b"")
            self._resolve()

        def do_GET(self) -> None:
            self._record(b"")
            path = urlsplit(self.path).path
            d = _DISCUSSIONS.match(path)
            if d and d["num"] and d["repo"] in hub.repos:
                return self._pull_request(d["repo"], int(d["num"]))
            m = _API.match(path)
            if m and m["op"] == "revision":
                repo = hub.repos.get(m["repo"])
                sha = repo.resolve(unquote(m["rev"])) if repo else None
                if sha is None:
                    return self._error(404, "RevisionNotFound" if repo else "RepoNotFound", "not found")
                return self._send(200, {"id": m["repo"], "sha": sha,
                                        "siblings": [{"rfilename": p} for p in sorted(repo.commits[sha])]})
            self._resolve()

        def _resolve(self) -> None:
            m = _RESOLVE.match(urlsplit(self.path).path)
            if not m:
                return self._error(404, "EntryNotFound", f"no route {self.path}")
            repo = hub.repos.get(m["repo"])
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found")
            sha = repo.resolve(unquote(m["rev"]))
            if sha is None:
                return self._error(404, "RevisionNotFound", "Invalid rev id")
            content = repo.commits[sha].get(unquote(m["path"]))
            if content is None:
                return self._error(404, "EntryNotFound", "Entry not found")
            etag = '"' + hashlib.sha1(content).hexdigest() + '"'
            self._send(200, headers={"X-Repo-Commit": sha, "ETag": etag, "Content-Type": "application/octet-stream"},
                       body=content)

        def do_POST(self) -> None:
            body = self._body()
            self._record(body)
            split = urlsplit(self.path)
            if split.path == "/api/repos/create":
                return self._create_repo(json.loads(body))
            if split.path == "/api/validate-yaml":
                return self._send(200, {"errors": [], "warnings": []})
            d = _DISCUSSIONS.match(split.path)
            if d and not d["num"] and d["repo"] in hub.repos:  # a pull request, opened before its commits
                repo = hub.repos[d["repo"]]
                repo.prs += 1
                repo.refs[f"refs/pr/{repo.prs}"] = repo.refs["main"]
                repo.pr_titles[repo.prs] = json.loads(body)["title"]
                return self._send(200, {"num": repo.prs})
            m = _API.match(split.path)
            if not m:
                return self._error(404, "EntryNotFound", f"no route {split.path}")
            repo = hub.repos.get(m["repo"])
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found")
            revision = unquote(m["rev"])
            if m["op"] == "preupload":
                files = json.loads(body)["files"]
                return self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                  for f in files]})
            if m["op"] == "tag":
                tag = json.loads(body)["tag"]
                sha = repo.resolve(revision)
                if sha is None:
                    return self._error(404, "RevisionNotFound", "Invalid rev id")
                if tag in repo.refs:
                    return self._error(409, "", "Tag already exists")
                repo.refs[tag] = sha
                return self._send(200, {})
            if m["op"] == "branch":  # created from the default branch (or "startingPoint")
                if revision in repo.refs:
                    return self._error(409, "", "Reference already exists")
                start = (json.loads(body) if body else {}).get("startingPoint") or "main"
                repo.refs[revision] = repo.resolve(start)
                return self._send(200, {})
            if m["op"] == "commit":
                return self._commit(m["repo"], repo, revision, body, parse_qs(split.query))
            return self._error(405, "", "method not allowed")

        def _pull_request(self, repo_id: str, num: int) -> None:
            repo = hub.repos[repo_id]
            if num not in repo.pr_titles:
                return self._error(404, "", "Discussion not found")
            self._send(200, {
                "title": repo.pr_titles[num], "num": num, "author": {"name": "zoo-tests"},
                "createdAt": "2026-01-01T00:00:00.000Z", "status": "open",
                "repo": {"name": repo_id, "type": "model"}, "isPullRequest": True, "events": [],
                "changes": {"base": "refs/heads/main"}, "filesWithConflicts": [], "diff": "",
            })

        def _create_repo(self, payload: dict) -> None:
            repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
            url = f"{hub.url}/{repo_id}"
            if repo_id in hub.repos:
                return self._send(409, {"error": "You already created this model repo", "url": url})
            repo = Repo(private=bool(payload.get("private")))
            repo.refs["main"] = hub.new_commit(repo, None, {".gitattributes": b"*.safetensors filter=lfs\n"},
                                               "initial commit")
            hub.repos[repo_id] = repo
            self._send(200, {"url": url, "name": repo_id})

        def _commit(self, repo_id: str, repo: Repo, revision: str, body: bytes, query: dict) -> None:
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            header = next(line["value"] for line in lines if line["key"] == "header")
            files = {line["value"]["path"]: base64.b64decode(line["value"]["content"])
                     for line in lines if line["key"] == "file"}
            parent = repo.resolve(revision)
            if parent is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            sha = hub.new_commit(repo, parent, files, header["summary"])
            pr_url = None
            if query.get("create_pr") == ["1"]:
                repo.prs += 1
                repo.refs[f"refs/pr/{repo.prs}"] = sha
                pr_url = f"{hub.url}/{repo_id}/discussions/{repo.prs}"
            else:
                repo.refs[revision] = sha
            self._send(200, {"commitUrl": f"{hub.url}/{repo_id}/commit/{sha}", "commitOid": sha,
                             "pullRequestUrl": pr_url})

    return Handler
