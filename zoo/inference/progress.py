"""Progress bars on stderr (tqdm) for predict over several inputs, video frames and eval: shown when stderr is
a terminal (or when asked), never on stdout, so ``--json`` output and pipes stay clean."""

from __future__ import annotations

import sys
from typing import Any


def show_progress(enabled: bool | None) -> bool:
    """``enabled`` as given; None: whether stderr is a terminal."""
    if enabled is not None:
        return enabled
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress_bar(enabled: bool | None, total: int | None = None, unit: str = "it", desc: str | None = None) -> Any:
    """A ``tqdm`` bar on stderr (a context manager with ``update(n)``), disabled unless :func:`show_progress`."""
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=not show_progress(enabled),
                leave=False, dynamic_ncols=True)
