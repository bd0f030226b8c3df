"""In-memory Hub-compatible servers for the hub tests (the endpoints huggingface_hub calls), stdlib only.

``HubDouble`` speaks the endpoints huggingface_hub uses to create a repo, upload a folder in one commit
(preupload answering ``uploadMode: "regular"``, NDJSON ``/commit``), tag a commit, open a pull request and
download files back (``resolve`` with ``X-Repo-Commit``/``ETag``/``X-Error-Code``). ``AnyRevisionHub`` answers
every revision of every repo with one commit. Both record every request for assertions.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from hub_servers import LocalHTTPServer

_MODEL_API = r"^/api/models/(?P<repo>[^/]+/[^/]+)"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
#: the commit ``AnyRevisionHub`` gives for every revision
ANY_REVISION_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _model_api(operation: str) -> re.Pattern[str]:
    """``/api/models/<org>/<name>/<operation>/<revision>``."""
    return re.compile(rf"{_MODEL_API}/{operation}/(?P<rev>.+)$")


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


class _QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with Content-Length on every answer and no request log on stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, payload=None, headers: dict | None = None, body: bytes | None = None) -> None:
        """Answer with ``body`` as given, or else ``payload`` as JSON (Content-Type set)."""
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


class HubDouble(LocalHTTPServer):
    """``with HubDouble() as hub: hub.url`` — a threaded server on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[dict] = []
        self._counter = itertools.count()
        self._lock = threading.Lock()
        super().__init__(type("HubDoubleHandler", (_HubHandler,), {"hub": self}))

    def new_commit(self, repo: Repo, parent: str | None, files: dict[str, bytes], message: str) -> str:
        sha = hashlib.sha1(f"{next(self._counter)}{message}".encode()).hexdigest()
        repo.commits[sha] = {**(repo.commits.get(parent) or {}), **files} if parent else dict(files)
        repo.messages[sha] = message
        return sha

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo.commits[repo.resolve(revision)]


class _HubHandler(_QuietHandler):
    """One request to a ``HubDouble``: recorded, then answered by the first of ``_ROUTES`` that matches its
    method and path, or a 404 ``EntryNotFound``."""

    hub: HubDouble  # set on the subclass each HubDouble makes

    def do_HEAD(self) -> None:
        self._dispatch(b"")

    def do_GET(self) -> None:
        self._dispatch(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._dispatch(self.rfile.read(length) if length else b"")

    def _dispatch(self, body: bytes) -> None:
        self._record(body)
        path = urlsplit(self.path).path
        for method, pattern, answer in _ROUTES:
            match = pattern.match(path) if method == self.command else None
            if match:
                return answer(self, match, body)
        self._no_route()

    def _record(self, body: bytes) -> None:
        with self.hub._lock:
            self.hub.requests.append({"method": self.command, "path": self.path, "body": body,
                                      "user_agent": self.headers.get("user-agent", ""),
                                      "authorization": self.headers.get("authorization")})

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def _no_route(self) -> None:
        self._error(404, "EntryNotFound", f"no route {self.path}")

    def _existing_repo(self, match: re.Match) -> Repo | None:
        """The repo the path names; None after answering 404 ``RepoNotFound``."""
        repo = self.hub.repos.get(match["repo"])
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
        return repo


    def _get_revision(self, match: re.Match, body: bytes) -> None:
        repo = self.hub.repos.get(match["repo"])
        sha = repo.resolve(unquote(match["rev"])) if repo else None
        if sha is None:
            return self._error(404, "RevisionNotFound" if repo else "RepoNotFound", "not found")
        siblings = [{"rfilename": p} for p in sorted(repo.commits[sha])]
        self._send(200, {"id": match["repo"], "sha": sha, "siblings": siblings})

    def _get_file(self, match: re.Match, body: bytes) -> None:
        repo = self._existing_repo(match)
        if repo is None:
            return
        sha = repo.resolve(unquote(match["rev"]))
        if sha is None:
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        content = repo.commits[sha].get(unquote(match["path"]))
        if content is None:
            return self._error(404, "EntryNotFound", "Entry not found")
        etag = '"' + hashlib.sha1(content).hexdigest() + '"'
        headers = {"X-Repo-Commit": sha, "ETag": etag, "Content-Type": "application/octet-stream"}
        self._send(200, headers=headers, body=content)


    def _create_repo(self, match: re.Match, body: bytes) -> None:
        payload = json.loads(body)
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        url = f"{self.hub.url}/{repo_id}"
        if repo_id in self.hub.repos:
            return self._send(409, {"error": "You already created this model repo", "url": url})
        repo = Repo(private=bool(payload.get("private")))
        repo.refs["main"] = self.hub.new_commit(repo, None, {".gitattributes": b"*.safetensors filter=lfs\n"},
                                                "initial commit")
        self.hub.repos[repo_id] = repo
        self._send(200, {"url": url, "name": repo_id})

    def _validate_yaml(self, match: re.Match, body: bytes) -> None:
        self._send(200, {"errors": [], "warnings": []})

    def _tag(self, match: re.Match, body: bytes) -> None:
        repo = self._existing_repo(match)
        if repo is None:
            return
        tag = json.loads(body)["tag"]
        sha = repo.resolve(unquote(match["rev"]))
        if sha is None:
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        if tag in repo.refs:
            return self._error(409, "", "Tag already exists")
        repo.refs[tag] = sha
        self._send(200, {})

    def _branch(self, match: re.Match, body: bytes) -> None:
        """A new branch from the default branch (or ``startingPoint``)."""
        repo = self._existing_repo(match)
        if repo is None:
            return
        revision = unquote(match["rev"])
        if revision in repo.refs:
            return self._error(409, "", "Reference already exists")
        start = (json.loads(body) if body else {}).get("startingPoint") or "main"
        repo.refs[revision] = repo.resolve(start)
        self._send(200, {})

    def _post_revision(self, match: re.Match, body: bytes) -> None:
        if self._existing_repo(match) is not None:
            self._error(405, "", "method not allowed")


    def _preupload(self, match: re.Match, body: bytes) -> None:
        if self._existing_repo(match) is None:
            return
        files = json.loads(body)["files"]
        self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                   for f in files]})

    def _commit(self, match: re.Match, body: bytes) -> None:
        """An NDJSON commit onto the revision, or onto a new ``refs/pr/N`` with ``?create_pr=1``."""
        repo = self._existing_repo(match)
        if repo is None:
            return
        repo_id, revision = match["repo"], unquote(match["rev"])
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        files = {line["value"]["path"]: base64.b64decode(line["value"]["content"])
                 for line in lines if line["key"] == "file"}
        parent = repo.resolve(revision)
        if parent is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        sha = self.hub.new_commit(repo, parent, files, header["summary"])
        pr_url = None
        if parse_qs(urlsplit(self.path).query).get("create_pr") == ["1"]:
            repo.prs += 1
            repo.refs[f"refs/pr/{repo.prs}"] = sha
            pr_url = f"{self.hub.url}/{repo_id}/discussions/{repo.prs}"
        else:
            repo.refs[revision] = sha
        self._send(200, {"commitUrl": f"{self.hub.url}/{repo_id}/commit/{sha}", "commitOid": sha,
                         "pullRequestUrl": pr_url})


    def _open_pull_request(self, match: re.Match, body: bytes) -> None:
        """A pull request, opened before its commits: ``refs/pr/N`` starts at main."""
        repo = self.hub.repos.get(match["repo"])
        if repo is None:
            return self._no_route()
        repo.prs += 1
        repo.refs[f"refs/pr/{repo.prs}"] = repo.refs["main"]
        repo.pr_titles[repo.prs] = json.loads(body)["title"]
        self._send(200, {"num": repo.prs})

    def _get_pull_request(self, match: re.Match, body: bytes) -> None:
        repo_id, num = match["repo"], int(match["num"])
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            return self._no_route()
        if num not in repo.pr_titles:
            return self._error(404, "", "Discussion not found")
        self._send(200, {
            "title": repo.pr_titles[num], "num": num, "author": {"name": "zoo-tests"},
            "createdAt": "2026-01-01T00:00:00.000Z", "status": "open",
            "repo": {"name": repo_id, "type": "model"}, "isPullRequest": True, "events": [],
            "changes": {"base": "refs/heads/main"}, "filesWithConflicts": [], "diff": "",
        })


#: (method, path pattern, answer): the first match answers
_ROUTES: list[tuple[str, re.Pattern[str], Callable[[_HubHandler, re.Match, bytes], None]]] = [
    ("GET", re.compile(rf"{_MODEL_API}/discussions/(?P<num>\d+)$"), _HubHandler._get_pull_request),
    ("GET", _model_api("revision"), _HubHandler._get_revision),
    ("GET", _RESOLVE, _HubHandler._get_file),
    ("HEAD", _RESOLVE, _HubHandler._get_file),
    ("POST", re.compile(r"^/api/repos/create$"), _HubHandler._create_repo),
    ("POST", re.compile(r"^/api/validate-yaml$"), _HubHandler._validate_yaml),
    ("POST", re.compile(rf"{_MODEL_API}/discussions$"), _HubHandler._open_pull_request),
    ("POST", _model_api("preupload"), _HubHandler._preupload),
    ("POST", _model_api("commit"), _HubHandler._commit),
    ("POST", _model_api("tag"), _HubHandler._tag),
    ("POST", _model_api("branch"), _HubHandler._branch),
    ("POST", _model_api("revision"), _HubHandler._post_revision),
]


class AnyRevisionHub(LocalHTTPServer):
    """A Hub on 127.0.0.1 that answers *every* revision of every repo with commit ``ANY_REVISION_COMMIT``
    and the files given: the worst case for a revision that names a path. Every request is recorded."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []
        super().__init__(type("AnyRevisionHandler", (_AnyRevisionHandler,), {"hub": self}))


class _AnyRevisionHandler(_QuietHandler):
    hub: AnyRevisionHub  # set on the subclass each AnyRevisionHub makes

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self.hub.requests.append(f"{self.command} {self.path}")
        path = unquote(urlsplit(self.path).path)
        if "/revision/" in path:
            body = json.dumps({"sha": ANY_REVISION_COMMIT,
                               "siblings": [{"rfilename": f} for f in self.hub.files]}).encode()
            return self._send(200, headers={"Content-Type": "application/json"}, body=body)
        m = re.match(r"^/[^/]+/[^/]+/resolve/.+?/(?P<file>[^/]+)$", path)
        content = self.hub.files.get(m["file"]) if m else None
        if content is None:
            headers = {"X-Error-Code": "EntryNotFound", "Content-Type": "application/json"}
            return self._send(404, headers=headers, body=b"{}")
        etag = '"' + hashlib.sha1(content).hexdigest() + '"'
        self._send(200, headers={"X-Repo-Commit": ANY_REVISION_COMMIT, "ETag": etag,
                                 "Content-Type": "application/octet-stream"}, body=content)
