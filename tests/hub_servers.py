"""Local Hub-compatible servers for the hub tests: olah serving git repos offline, and the threaded HTTP
server that the in-process Hub doubles run on.

Nothing here reaches the internet: every server listens on 127.0.0.1 and a free port (olah with
``offline = true``).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch


class LocalHTTPServer:
    """``with Server(handler) as server: server.url`` — a threaded HTTP server on 127.0.0.1, a free port."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


def fixed_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """The same face and context batch (2×3×32×32 each) every call: weights compared through their logits."""
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)


def eval_logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(*fixed_inputs()).logits

GIT_ENV = {
    "GIT_AUTHOR_NAME": "zoo-tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "zoo-tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git(repo: Path, *args: str) -> str:
    import os

    env = {**os.environ, **GIT_ENV}
    out = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def init_repo(mirrors: Path, repo_id: str) -> Path:
    repo = mirrors / "models" / repo_id
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    return repo


def commit_all(repo: Path, message: str, tag: str | None = None) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    if tag:
        git(repo, "tag", tag)
    return git(repo, "rev-parse", "HEAD")


class OlahServer:
    """``python -m olah.server`` on 127.0.0.1:<free port> serving the git repos under ``root/mirrors``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mirrors = root / "mirrors"
        self.mirrors.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, probe_repo: str, timeout: float = 60.0) -> None:
        import importlib.util

        if importlib.util.find_spec("olah") is None:
            raise RuntimeError("The hub tests need olah, from the test extra: pip install -e '.[test]'.")
        config = self.root / "olah.toml"
        config.write_text(
            "[basic]\n"
            'host = "127.0.0.1"\n'
            f"port = {self.port}\n"
            f'repos-path = "{self.root / "olah-cache"}"\n'
            f'mirror-netloc = "127.0.0.1:{self.port}"\n'
            f'mirror-lfs-netloc = "127.0.0.1:{self.port}"\n'
            f'mirrors-path = ["{self.mirrors}"]\n'
            "[accessibility]\n"
            "offline = true\n"
        )
        self.log = open(self.root / "olah.out", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "olah.server", "-c", str(config), "--log-path", str(self.root / "logs")],
            cwd=self.root,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        probe = f"{self.url}/api/models/{probe_repo}/revision/main"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(probe, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"olah did not start: {(self.root / 'olah.out').read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        if getattr(self, "log", None) is not None:
            self.log.close()
            self.log = None
