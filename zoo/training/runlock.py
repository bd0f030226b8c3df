"""An exclusive lock on a training run directory, so that two runs never write into the same ``--out``.

The lock is the file ``OUT/.zoo-run.lock``, held with ``fcntl.flock`` for the whole run and holding the owner's
pid, host, start time and command line. The kernel releases the lock when its process dies, even under
``kill -9``: a lock file found *unlocked* is stale, and is taken over with a warning naming its previous owner.
A lock held by a live process is an error naming that owner. On exit the file is removed. Where ``fcntl`` does
not exist (Windows), the file is created with ``O_EXCL`` instead and a file left by a dead process on the same
host is stale.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from zoo.errors import ZooError

LOCK_NAME = ".zoo-run.lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class RunDirectoryError(ZooError):
    """A run directory that cannot be used: locked by another run, not writable, or holding another run."""


class StaleLockWarning(UserWarning):
    """A lock left by a run that ended without cleaning up (killed) was taken over."""


def _owner_text(owner: dict[str, Any] | None) -> str:
    if not owner:
        return "an unknown process"
    started = owner.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    return f"pid {owner.get('pid')} on host {owner.get('host')!r} (started {when}: {owner.get('command', '?')})"


def _read_owner(fd: int) -> dict[str, Any] | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 65536).decode("utf-8", errors="replace")
        if not text.strip():
            return None
        owner = json.loads(text)
    except (OSError, ValueError):
        return {"pid": "?", "host": "?"}
    return owner if isinstance(owner, dict) else {"pid": "?", "host": "?"}


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # unknown: assume alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class RunLock:
    """``with RunLock(out): ...`` holds the exclusive lock of run directory ``out`` (created if missing)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.fd: int | None = None
        self.owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                      "command": " ".join(sys.argv)[:500]}

    def acquire(self) -> RunLock:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for _ in range(5):
                fd = self._open()
                if fd is None:
                    continue
                self.fd = fd
                return self
        except OSError as exc:
            raise RunDirectoryError(
                f"Cannot use {self.directory} as a run directory: {exc.strerror or exc} ({exc.filename or self.path}). "
                f"Choose a writable --out."
            ) from None
        raise RunDirectoryError(f"{self.path}: could not take the run lock (it kept changing); try again.")

    def _open(self) -> int | None:
        if fcntl is None:  # pragma: no cover - Windows
            return self._open_exclusive()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(fd)
            os.close(fd)
            raise RunDirectoryError(
                f"{self.directory} is in use by another training run: {_owner_text(owner)}. Two runs in one "
                f"directory would overwrite each other's run_config.json, best/, eval.json and metrics.jsonl; wait "
                f"for it to finish, or choose another --out."
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:  # the file may have been removed (and re-created) by its previous owner meanwhile
            same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            return None
        previous = _read_owner(fd)
        if previous:
            warnings.warn(
                f"{self.directory}: took over the lock left by {_owner_text(previous)}, which ended without "
                f"releasing it (killed or crashed).", StaleLockWarning, stacklevel=4,
            )
        self._write(fd)
        return fd

    def _open_exclusive(self) -> int | None:  # pragma: no cover - Windows
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            with open(self.path, "rb") as fh:
                owner = _read_owner(fh.fileno())
            if owner and owner.get("host") == self.owner["host"] and not _pid_alive(owner.get("pid")):
                warnings.warn(f"{self.directory}: removed the stale lock of {_owner_text(owner)}.", StaleLockWarning,
                              stacklevel=4)
                self.path.unlink(missing_ok=True)
                return None
            raise RunDirectoryError(
                f"{self.directory} is in use by another training run: {_owner_text(owner)}. Wait for it to finish, "
                f"choose another --out, or delete {self.path} if that run is gone."
            ) from None
        self._write(fd)
        return fd

    def _write(self, fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(self.owner) + "\n").encode())

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)  # closing releases the flock
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


@contextmanager
def run_lock(directory: str | os.PathLike, enabled: bool = True) -> Iterator[RunLock | None]:
    """Hold the lock of ``directory`` for the ``with`` block (``enabled=False``: the non-main DDP ranks)."""
    if not enabled:
        yield None
        return
    with RunLock(directory) as lock:
        yield lock


def directory_entries(directory: str | os.PathLike) -> list[str]:
    """What ``directory`` holds, the lock file left out; ``[]`` when it does not exist."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.name != LOCK_NAME)
