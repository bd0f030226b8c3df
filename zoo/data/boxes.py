"""Face boxes: the ``FaceBox`` type and the two on-disk box formats (the CAER port's list files, GLAMOR-Net's crop/).

* list files (CAER-S detector files, ndkhanh360 / larrylu): one ``relpath,label,x1,y1,x2,y2`` line per image;
* per-image files (GLAMOR-Net ``crop/<split>/<Class>/<name>.txt``): one ``x1,y1,x2,y2`` line, ``0,0,0,0`` = no face.

Coordinates are pixels, ``x2``/``y2`` exclusive (PIL ``crop`` convention). ``x2 < x1`` or ``y2 < y1`` is an
annotation error, never swapped silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from zoo.errors import AnnotationError


@dataclass(frozen=True)
class FaceBox:
    """A face rectangle in pixels (``x2``, ``y2`` exclusive) with a detector score (1.0 for annotations)."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float = 1.0
    #: five facial landmarks ``((x, y), ...)`` in pixels when the detector gives them (MTCNN: eyes, nose,
    #: mouth corners); not part of the box's identity
    landmarks: tuple[tuple[float, float], ...] | None = field(default=None, compare=False)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def expand(self, margin: float) -> FaceBox:
        """The box grown by ``margin`` × its width (height) on the left and right (top and bottom)."""
        dx, dy = margin * self.width, margin * self.height
        return FaceBox(self.x1 - dx, self.y1 - dy, self.x2 + dx, self.y2 + dy, self.score)

    def clamp(self, width: int, height: int) -> FaceBox | None:
        """The box clipped to a ``width``×``height`` image, in whole pixels; None when nothing is left."""
        x1, y1 = max(0, int(round(self.x1))), max(0, int(round(self.y1)))
        x2, y2 = min(width, int(round(self.x2))), min(height, int(round(self.y2)))
        if x2 <= x1 or y2 <= y1:
            return None
        return FaceBox(x1, y1, x2, y2, self.score)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return int(round(self.x1)), int(round(self.y1)), int(round(self.x2)), int(round(self.y2))


def as_face_box(box: object) -> FaceBox | None:
    """A :class:`FaceBox` from a FaceBox, a dict ``{x1, y1, x2, y2[, score]}`` or a sequence of 4 or 5 numbers."""
    if box is None or isinstance(box, FaceBox):
        return box
    try:
        if isinstance(box, dict):
            values = [box[k] for k in ("x1", "y1", "x2", "y2")] + [box.get("score", 1.0)]
        elif hasattr(box, "x1"):
            values = [getattr(box, k) for k in ("x1", "y1", "x2", "y2")] + [getattr(box, "score", 1.0)]
        else:
            seq = list(box.tolist() if hasattr(box, "tolist") else box)  # type: ignore[attr-defined]
            if len(seq) not in (4, 5):
                raise ValueError(f"expected 4 or 5 numbers, got {len(seq)}")
            values = [*seq[:4], seq[4] if len(seq) == 5 else 1.0]
        x1, y1, x2, y2, score = (float(v) for v in values)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AnnotationError(f"A face box needs x1, y1, x2, y2 (and optionally score); got {box!r} ({exc}).") from None
    return make_box(x1, y1, x2, y2, where="face box", score=score)


def make_box(x1: float, y1: float, x2: float, y2: float, where: str, score: float = 1.0) -> FaceBox | None:
    """A validated box; ``0,0,0,0`` means "no face" and gives None; ``x2 < x1`` raises ``AnnotationError``."""
    import math

    if not all(math.isfinite(v) for v in (x1, y1, x2, y2, score)):
        raise AnnotationError(
            f"{where}: face box x1={x1}, y1={y1}, x2={x2}, y2={y2} (score {score}) has a NaN or infinite value; "
            f"fix the annotation."
        )
    if x1 == y1 == x2 == y2 == 0:
        return None
    if x2 < x1 or y2 < y1:
        raise AnnotationError(
            f"{where}: face box x1={x1:g}, y1={y1:g}, x2={x2:g}, y2={y2:g} has x2 < x1 or y2 < y1. Boxes are "
            f"x1,y1,x2,y2 with the bottom-right corner second; fix the annotation (it is never swapped silently)."
        )
    if x2 == x1 or y2 == y1:
        raise AnnotationError(f"{where}: face box {x1:g},{y1:g},{x2:g},{y2:g} is empty (zero width or height).")
    return FaceBox(float(x1), float(y1), float(x2), float(y2), score)


def _numbers(fields: list[str], where: str) -> list[float]:
    try:
        return [float(f) for f in fields]
    except ValueError:
        raise AnnotationError(f"{where}: expected numbers, got {','.join(fields)!r}.") from None


def read_box_file(path: str | os.PathLike[str]) -> FaceBox | None:
    """Read a GLAMOR-Net per-image box file (``x1,y1,x2,y2``; ``0,0,0,0`` = no face)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    fields = [f.strip() for f in text.replace(" ", ",").split(",") if f.strip()]
    if len(fields) != 4:
        raise AnnotationError(
            f"{path}: a face box file must hold one line x1,y1,x2,y2 (0,0,0,0 = no face); got {text[:80]!r}."
        )
    return make_box(*_numbers(fields, str(path)), where=str(path))


def write_box_file(path: str | os.PathLike[str], box: FaceBox | None) -> None:
    x1, y1, x2, y2 = box.as_tuple() if box is not None else (0, 0, 0, 0)
    Path(path).write_text(f"{x1},{y1},{x2},{y2}\n", encoding="utf-8")


@dataclass(frozen=True)
class ListEntry:
    relpath: str
    label: int
    box: FaceBox | None
    where: str


def read_list_file(path: str | os.PathLike[str]) -> list[tuple[ListEntry | None, AnnotationError | None, str]]:
    """Read a CAER-S list file; each line gives ``(entry, None, where)`` or ``(None, error, where)``."""
    path = Path(path)
    rows: list[tuple[ListEntry | None, AnnotationError | None, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        fields = [f.strip() for f in line.split(",")]
        try:
            if len(fields) != 6:
                raise AnnotationError(
                    f"{where}: expected 6 fields relpath,label,x1,y1,x2,y2, got {len(fields)}: {line[:100]!r}."
                )
            label = _numbers([fields[1]], where)[0]
            if label != int(label):
                raise AnnotationError(f"{where}: label {fields[1]!r} is not an integer.")
            box = make_box(*_numbers(fields[2:], where), where=where)
            rows.append((ListEntry(fields[0].replace("\\", "/"), int(label), box, where), None, where))
        except AnnotationError as exc:
            rows.append((None, exc, where))
    return rows
