"""The layout of a training run directory, defined once, and the readers of its files.

``OUT/`` holds ``run_config.json`` (the resolved run settings), ``metrics.jsonl`` (one JSON line per epoch),
``best/`` (the kept model: ``config.json`` + ``model.safetensors``), ``eval.json`` (the final evaluation of
``best/``), ``datasets.json`` (where the data came from) and ``checkpoints/last/`` (the resume checkpoint, :mod:`zoo.training.checkpoint`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo.training.checkpoint import CheckpointError

RUN_CONFIG = "run_config.json"
METRICS_LOG = "metrics.jsonl"
EVAL_JSON = "eval.json"
#: where the run's data came from: each split's ``dataset.provenance`` (label-file hash, photo and face counts)
DATASETS_JSON = "datasets.json"
BEST_DIR = "best"
LAST_CHECKPOINT = Path("checkpoints") / "last"


#: what a run writes into its directory (removed by overwrite=True; other files are left alone)
RUN_FILES = (RUN_CONFIG, DATASETS_JSON, METRICS_LOG, EVAL_JSON, BEST_DIR, "checkpoints", "tensorboard", "train_subset.json",
             "label_noise.json")


def stash_run_files(out: Path) -> Path | None:
    """Move the previous run's files (:data:`RUN_FILES`) into a hidden folder of ``out``, to be deleted by
    :func:`drop_stash` once the new run has started, or put back by :func:`restore_stash` if it cannot start
    (``--overwrite`` deletes nothing before every check has passed). None when there is nothing to move."""
    import os

    present = [name for name in RUN_FILES if (out / name).exists() or (out / name).is_symlink()]
    if not present:
        return None
    stash = out / f".zoo-previous-run-{os.getpid()}"
    stash.mkdir()
    for name in present:
        os.replace(out / name, stash / name)  # one file system: a rename, nothing copied or lost
    return stash


def restore_stash(out: Path, stash: Path | None) -> None:
    """Put the stashed files back, replacing what the failed start wrote under the same names."""
    import os
    import shutil

    if stash is None or not stash.is_dir():
        return
    for entry in sorted(stash.iterdir()):
        target = out / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(entry, target)
    stash.rmdir()


def drop_stash(stash: Path | None) -> None:
    """Delete the previous run's stashed files (the new run has started)."""
    import shutil

    if stash is not None and stash.is_dir():
        shutil.rmtree(stash)


def read_run_config(path: Path) -> dict[str, Any]:
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc}); the run cannot be resumed without it. Restore "
                                   f"it, or start a new run with --overwrite.") from None
    if not isinstance(stored, dict):
        raise CheckpointError(f"{path}: not a run config (a JSON object); restore it or use --overwrite.")
    return stored


def read_metrics_log(path: Path) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl``; a partial last line (a run killed while writing it) is dropped with a
    warning, any other bad line is a :class:`CheckpointError` naming it."""
    import warnings

    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc}).") from None
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    rows = []
    for position, (number, line) in enumerate(numbered):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if position == len(numbered) - 1:
                warnings.warn(f"{path}:{number}: dropped a partial last line (the run was stopped while writing "
                              f"it): {line[:80]!r}", UserWarning, stacklevel=3)
                break
            raise CheckpointError(f"{path}:{number}: not valid JSON ({exc}); fix or delete that line.") from None
        if not isinstance(row, dict) or not isinstance(row.get("epoch"), int):
            raise CheckpointError(f"{path}:{number}: not a metrics line (no integer 'epoch').")
        rows.append(row)
    return rows
