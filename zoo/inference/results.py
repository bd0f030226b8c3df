"""The one result schema of ``zoo.predict``, ``zoo-cli predict`` (table, ``--json``, ``--csv``) and the web app.

:class:`FrameResult` is one image or video frame, :class:`FaceResult` one face of it; both are frozen and
turn into a JSON object (:meth:`~FrameResult.to_json`) or CSV rows (:meth:`~FrameResult.to_csv_rows`,
:data:`CSV_COLUMNS`). :class:`Predictions` is what ``zoo.predict`` returns: a list of the frames' JSON
objects (as before) with the dataclasses in ``.frames`` and :meth:`Predictions.to_pandas`. The fields are
documented once, in docs/prediction.md ("Result schema").

Faces are numbered from 0 in every output. Boxes are ``[x1, y1, x2, y2]`` pixels of the image, clipped to it
(``clipped`` says a detection reached past the border); ``landmarks`` are MTCNN's five points (left eye,
right eye, nose, left and right mouth corner; Zhang et al., IEEE SPL 2016, §II) as ``[x, y]`` pixels, or
None when the detector gives none (Haar, known boxes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: the CSV columns before one ``prob_<class>`` column per class
CSV_COLUMNS = ("image", "frame", "timestamp", "width", "height", "model", "tag", "detector", "face", "track",
               "x1", "y1", "x2", "y2", "clipped", "detector_score", "label", "probability", "landmarks", "error")


@dataclass(frozen=True)
class FaceResult:
    """One classified face (fields: docs/prediction.md)."""

    face: int
    box: tuple[float, float, float, float] | None
    detector_score: float | None
    label: str
    probability: float
    probs: dict[str, float]
    landmarks: tuple[tuple[float, float], ...] | None = None
    track: int | None = None
    clipped: bool = False
    fusion_weights: tuple[float, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; optional fields (track, clipped, fusion weights) only when set."""
        out: dict[str, Any] = {"face": self.face, "box": None if self.box is None else list(self.box),
                               "detector_score": self.detector_score, "label": self.label,
                               "probability": self.probability, "probs": dict(self.probs),
                               "landmarks": None if self.landmarks is None else [list(p) for p in self.landmarks]}
        if self.track is not None:
            out["track"] = self.track
        if self.clipped:
            out["clipped"] = True
        if self.fusion_weights is not None:
            out["fusion_weights"] = list(self.fusion_weights)
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FaceResult:
        """The face of a :meth:`to_json` dict."""
        return cls(face=d["face"], box=None if d.get("box") is None else tuple(d["box"]),
                   detector_score=d.get("detector_score"), label=d["label"], probability=d["probability"],
                   probs=dict(d["probs"]),
                   landmarks=None if d.get("landmarks") is None else tuple(tuple(p) for p in d["landmarks"]),
                   track=d.get("track"), clipped=bool(d.get("clipped", False)),
                   fusion_weights=None if d.get("fusion_weights") is None else tuple(d["fusion_weights"]))


@dataclass(frozen=True)
class FrameResult:
    """One image or sampled video frame: where it came from, what ran on it, and its faces."""

    image: str
    width: int | None
    height: int | None
    model: str | None
    tag: str | None
    detector: str | None
    faces: tuple[FaceResult, ...] = ()
    frame: int | None = None
    timestamp: float | None = None
    note: str | None = None
    #: why this input could not be read (``on_error="skip"``); then there are no faces
    error: str | None = None
    #: the ``--save-vis`` picture of this image
    vis: str | None = None
    label_names: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def is_video(self) -> bool:
        return self.frame is not None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: image, [frame, timestamp,] size, model, tag, detector, faces, [note, error, vis]."""
        out: dict[str, Any] = {"image": self.image}
        if self.frame is not None:
            out.update({"frame": self.frame, "timestamp": self.timestamp})
        out.update({"width": self.width, "height": self.height, "model": self.model, "tag": self.tag,
                    "detector": self.detector, "faces": [f.to_json() for f in self.faces]})
        for key in ("note", "error", "vis"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any], label_names: Sequence[str] = ()) -> FrameResult:
        """The frame of a :meth:`to_json` dict (fields it lacks are None)."""
        return cls(image=d["image"], width=d.get("width"), height=d.get("height"), model=d.get("model"),
                   tag=d.get("tag"), detector=d.get("detector"),
                   faces=tuple(FaceResult.from_json(f) for f in d.get("faces", [])), frame=d.get("frame"),
                   timestamp=d.get("timestamp"), note=d.get("note"), error=d.get("error"), vis=d.get("vis"),
                   label_names=tuple(label_names))

    def to_csv_rows(self, label_names: Sequence[str] | None = None) -> list[list[Any]]:
        """One row per face in :data:`CSV_COLUMNS` order then ``prob_<class>``; an input that failed gets one
        row with its ``error``. A frame without a face has no row."""
        names = list(label_names if label_names is not None else self.label_names)
        head = [self.image, self.frame, self.timestamp, self.width, self.height, self.model, self.tag, self.detector]
        if self.error is not None:
            return [[*head, *[None] * 11, self.error, *[None] * len(names)]]
        return [[*head, *face_csv_cells(face), None, *(round(face.probs[n], 6) for n in names)]
                for face in self.faces]

    def to_csv_row(self, face: int = 0, label_names: Sequence[str] | None = None) -> list[Any]:
        """The CSV row of face number ``face`` (or of the error of a failed input)."""
        rows = self.to_csv_rows(label_names)
        if not rows:
            raise IndexError(f"{self.image}: no face to write as a CSV row.")
        return rows[0] if self.error is not None else rows[face]


def face_csv_cells(face: FaceResult) -> list[Any]:
    """A face's cells from ``face`` to ``landmarks`` (rounded; landmarks as ``x;y`` pairs joined by spaces)."""
    box = face.box or (None,) * 4
    marks = None if face.landmarks is None else " ".join(f"{x:.1f};{y:.1f}" for x, y in face.landmarks)
    return [face.face, face.track, *(None if v is None else round(v, 2) for v in box), face.clipped,
            None if face.detector_score is None else round(face.detector_score, 4), face.label,
            round(face.probability, 6), marks]


def csv_header(label_names: Sequence[str]) -> list[str]:
    return [*CSV_COLUMNS, *(f"prob_{n}" for n in label_names)]


class Predictions(list):
    """What ``zoo.predict`` returns: a list with one JSON-ready dict per image / frame (as before), plus
    ``.frames`` (the :class:`FrameResult` objects), ``.errors`` (the inputs that failed) and :meth:`to_pandas`."""

    def __init__(self, frames: Iterable[FrameResult] = ()) -> None:
        self.frames: list[FrameResult] = list(frames)
        super().__init__(f.to_json() for f in self.frames)

    @property
    def errors(self) -> list[FrameResult]:
        return [f for f in self.frames if f.error is not None]

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` with one row per face (and per failed input), the CSV columns
        (:data:`CSV_COLUMNS`, then ``prob_<class>``). Needs ``pip install 'emotion-zoo[pandas]'``."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Predictions.to_pandas needs pandas: pip install 'emotion-zoo[pandas]' "
                              "(or write a CSV with zoo-cli predict --csv FILE).") from None
        names: list[str] = []
        for f in self.frames:
            names.extend(n for n in f.label_names if n not in names)
        rows = [row for f in self.frames for row in f.to_csv_rows(names)]
        return pd.DataFrame(rows, columns=csv_header(names))
