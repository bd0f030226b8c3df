"""The rules every command follows when it writes a file (docs/safety.md, "Rules"), written once.

- **No output is an input**: :func:`check_output` refuses a path that is (the same file as) one the command
  reads, however it is spelled (symlinks, ``./``, ``..``).
- **No overwriting without being told**: an existing file that the command did not create is refused unless
  ``force`` (``--force`` / ``overwrite=True``); callers run this check, and every other one that can fail,
  before they write anything.
- **Writes go to a temporary file renamed into place** (:func:`temp_path_for`, :func:`replace_into`,
  :class:`AtomicFile`): a failed or interrupted write leaves the old file, or none, never half of one.

Imports only :mod:`zoo.errors`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from zoo.errors import ZooError

PathLike = str | os.PathLike[str]


class OutputError(ZooError, ValueError):
    """An output path that would destroy an input or overwrite a file the command was not told to replace."""


def _key(path: PathLike) -> str:
    return os.path.normcase(os.path.realpath(os.path.expanduser(os.fspath(path))))


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two spellings name the same file (``os.path.samefile`` when both exist, else their real paths)."""
    try:
        return os.path.samefile(os.path.expanduser(os.fspath(a)), os.path.expanduser(os.fspath(b)))
    except OSError:
        return _key(a) == _key(b)


def is_inside(path: PathLike, folder: PathLike) -> bool:
    """Whether ``path`` is ``folder`` or lies below it, after resolving symlinks, ``.`` and ``..``."""
    p, f = _key(path), _key(folder)
    return p == f or p.startswith(f.rstrip(os.sep) + os.sep)


def check_output(path: PathLike, *, inputs: Iterable[PathLike] = (), force: bool = False, option: str = "output",
                 folder: bool = False) -> Path:
    """``path`` as a :class:`~pathlib.Path` once it is safe to write: not one of ``inputs`` (files or
    folders), not a folder when a file is wanted (nor a file when a folder is),
    and not an existing file unless ``force``. ``option`` names the output in messages (``--csv``)."""
    out = Path(os.path.expanduser(os.fspath(path)))
    for source in inputs:
        if same_file(out, source):
            raise OutputError(f"{option} {out}: this is also an input of the command ({source}); writing it would "
                              f"destroy that input. Choose another path.")
    if folder:
        if out.exists() and not out.is_dir():
            raise OutputError(f"{option} {out}: a file is there, and this output is a folder. Choose another path.")
        return out
    if out.is_dir():
        raise OutputError(f"{option} {out}: is a folder; give the path of the file to write (e.g. {out / 'out'}…).")
    if (out.exists() or out.is_symlink()) and not force:
        raise OutputError(f"{option} {out}: the file exists. Pass --force (overwrite=True) to replace it, or choose "
                          f"another path.")
    return out


def check_folder_output(path: PathLike, *, inputs: Iterable[PathLike] = (), force: bool = False,
                        option: str = "output") -> Path:
    """A folder to write files into: not a file, not an input, and empty (or absent) unless ``force``."""
    out = check_output(path, inputs=inputs, option=option, folder=True)
    if out.is_dir() and not force and any(out.iterdir()):
        raise OutputError(f"{option} {out}: the folder is not empty. Pass --force (overwrite=True) to write into it "
                          f"(files of the same name are replaced), or choose a new or empty folder.")
    return out


def temp_path_for(path: PathLike) -> Path:
    """A fresh temporary name beside ``path``, with its suffix (writers that pick the format by suffix)."""
    out = Path(path)
    return out.with_name(f".{out.stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{out.suffix}")


def replace_into(temp: PathLike, path: PathLike) -> Path:
    """Rename a finished temporary file onto ``path`` (atomic on one file system)."""
    os.replace(temp, path)
    return Path(path)


def discard(temp: PathLike) -> None:
    """Remove a temporary file or folder that will not be renamed into place; a missing one is fine."""
    import shutil

    temp = Path(temp)
    if temp.is_dir() and not temp.is_symlink():
        shutil.rmtree(temp, ignore_errors=True)
    else:
        try:
            temp.unlink()
        except (FileNotFoundError, NotADirectoryError):  # never created (its folder may be a file)
            pass


class AtomicFile:
    """A file written under a temporary name beside ``path``: :meth:`commit` renames it into place,
    :meth:`discard` removes it. Also a context manager: commit on success, discard on an exception."""

    def __init__(self, path: PathLike, mode: str = "w", **open_args: Any) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temp = temp_path_for(self.path)
        self.file: IO[Any] = open(self.temp, mode, **open_args)  # noqa: SIM115 - closed by commit/discard

    def commit(self) -> Path:
        if not self.file.closed:
            self.file.close()
            replace_into(self.temp, self.path)
        return self.path

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
            discard(self.temp)

    def __enter__(self) -> IO[Any]:
        return self.file

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
