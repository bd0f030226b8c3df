"""Resume checkpoints: every tensor in one safetensors file, everything else in JSON, written atomically.

Layout of ``OUT/checkpoints/last/``::

    state.safetensors   model.*, target.*, optim.<i>.<param>.<key>, rng.* tensors
    state.json          epoch, step, best metric, optimiser hyper-parameters, RNG states that are not
                        tensors, the run config

A checkpoint is written into a temporary sibling directory and renamed over ``last`` (the previous one is
moved aside first and removed after), so a crash mid-write leaves the previous complete checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.errors import ZooError

TENSORS_NAME = "state.safetensors"
META_NAME = "state.json"


class CheckpointError(ZooError):
    """A resume checkpoint that is missing, unreadable or does not match the run."""


def flatten_optimizer(state: dict[str, Any], prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any], prefix: str) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            pid, key = name[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(pid), {})[key] = value
    for pid, entries in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(entries)
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Torch (CPU and CUDA), NumPy and Python RNG states: tensors and JSON parts."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, py_state, gauss = random.getstate()
    return tensors, {"numpy": [kind, int(pos), int(has_gauss), float(cached)],
                     "python": [version, list(py_state), gauss]}


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
        if states:
            torch.cuda.set_rng_state_all(states)
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, py_state, gauss = meta["python"]
    random.setstate((version, tuple(py_state), gauss))


def _remove_stale_temporaries(directory: Path) -> None:
    """Remove ``.<name>.tmp-<pid>`` directories left by runs killed mid-write (their process is gone)."""
    for tmp in directory.parent.glob(f".{directory.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if not pid.isdigit():
            continue
        if int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
                continue  # that process still runs (it cannot be a run of this directory: the run lock)
            except ProcessLookupError:
                pass
            except OSError:
                continue
        shutil.rmtree(tmp, ignore_errors=True)


def save_checkpoint(directory: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write ``directory`` (e.g. ``OUT/checkpoints/last``) atomically.

    A failure while writing (disk full, permissions) removes the partial copy, leaves the previous checkpoint as
    it was and raises a :class:`CheckpointError` saying so. Temporaries of killed runs are removed first.
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    directory = Path(directory)
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(directory)
        tmp.mkdir()
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / TENSORS_NAME))
        (tmp / META_NAME).write_text(json.dumps(meta, indent=1) + "\n")
        for f in (tmp / TENSORS_NAME, tmp / META_NAME):
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    except (OSError, SafetensorError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        previous = find_checkpoint(directory)
        raise CheckpointError(
            f"Could not write the checkpoint {directory} ({exc}). "
            + (f"The previous checkpoint {previous} is intact: free disk space (or fix the permissions), then "
               f"continue with --resume." if previous is not None else "No earlier checkpoint exists.")
        ) from exc
    old = directory.with_name(f".{directory.name}.old")
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def find_checkpoint(directory: str | os.PathLike) -> Path | None:
    """``directory`` if it exists, else the previous checkpoint a crash between two renames left aside."""
    directory = Path(directory)
    if directory.exists():
        return directory
    old = directory.with_name(f".{directory.name}.old")
    return old if old.exists() else None


def load_checkpoint(directory: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    tensors_path, meta_path = directory / TENSORS_NAME, directory / META_NAME
    for path in (tensors_path, meta_path):
        if not path.exists():
            raise CheckpointError(
                f"{path}: missing, so {directory} is not a complete checkpoint. Delete {directory} to start the "
                f"run afresh, or resume from another run directory."
            )
    try:
        tensors = load_file(str(tensors_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{tensors_path}: corrupt or truncated checkpoint ({exc}). Delete {directory} and train without "
            f"--resume, or restore the file from a backup."
        ) from exc
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"{meta_path}: corrupt checkpoint metadata ({exc}). Delete {directory} and train without --resume."
        ) from exc
    if not isinstance(meta, dict) or "epoch" not in meta or "global_step" not in meta:
        raise CheckpointError(f"{meta_path}: not an emotion-zoo checkpoint (no epoch / global_step).")
    return tensors, meta


def split_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
