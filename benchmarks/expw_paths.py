"""Where the ExpW benchmarks find the data and keep their runs and results (shared by ``expw_context``, its
figures ``expw_figures`` and the release scripts, so that neither of the first two imports the other)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.fer2013_real import REPO

RESULTS = REPO / "benchmarks" / "results" / "expw_context"
RUNS = Path.home() / ".cache" / "emotion-zoo" / "runs" / "expw_context"


def find_expw() -> Path | None:
    """``shared/data/expw`` beside the checkout or a folder above it, when present (as ``find_fer2013``)."""
    for parent in REPO.parents:
        candidate = parent / "shared" / "data" / "expw"
        if (candidate / "label.lst").is_file():
            return candidate
    return None
