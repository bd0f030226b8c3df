"""The predict path's settings in two frozen objects, checked once and passed down whole:
:class:`PredictOptions` (how faces are found and classified) and :class:`PredictOutputs` (where results go)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zoo.errors import ZooError

MISSING_FACE_CHOICES = ("skip", "whole", "zeros", "error")
#: ``auto``: skip a bad file found in a folder or glob and a bad video, raise for an input named directly
ON_ERROR_CHOICES = ("auto", "skip", "raise")
#: test-time augmentation: ``flip`` averages the probabilities of the input and its horizontal mirror
TTA_CHOICES = ("none", "flip")


@dataclass(frozen=True)
class PredictOptions:
    """How ``zoo.predict`` finds and classifies faces (docs/prediction.md lists each option)."""

    detector: str | Callable[..., Any] = "auto"
    device: str = "auto"
    min_score: float = 0.0
    batch_size: int = 32
    missing_face: str = "skip"
    track_iou: float = 0.3
    track_max_missed: int | None = None
    on_error: str = "auto"
    tta: str = "none"
    #: keep only the detector's best N faces per image (None: all)
    max_faces: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ZooError(f"batch_size must be at least 1, got {self.batch_size}.")
        if self.missing_face not in MISSING_FACE_CHOICES:
            raise ZooError(f"missing_face must be one of {', '.join(MISSING_FACE_CHOICES)}, got {self.missing_face!r}.")
        if self.on_error not in ON_ERROR_CHOICES:
            raise ZooError(f"on_error must be one of {', '.join(ON_ERROR_CHOICES)}, got {self.on_error!r}.")
        if self.tta not in TTA_CHOICES:
            raise ZooError(f"tta must be one of {', '.join(TTA_CHOICES)}, got {self.tta!r}.")
        if self.max_faces is not None and self.max_faces < 1:
            raise ZooError(f"max_faces must be at least 1 (or None for all), got {self.max_faces}.")

    @property
    def detector_name(self) -> str | None:
        """The detector's registered name (``auto`` resolved), or None for a callable."""
        if not isinstance(self.detector, str):
            return (getattr(self.detector, "name", None) or getattr(self.detector, "__name__", None)
                    or type(self.detector).__name__)
        from zoo.data.detection import resolve_detector_name

        return resolve_detector_name(self.detector)


@dataclass(frozen=True)
class PredictOutputs:
    """Where ``zoo-cli predict`` / ``zoo.predict`` write: ``save_vis`` (a folder, or a video file for one video
    or the webcam) with probability bars and attention panels on the pictures, a CSV, JSON or the table on
    stdout, and a progress bar on stderr (``progress`` None: when stderr is a terminal)."""

    save_vis: str | os.PathLike[str] | None = None
    vis_attention: bool = True
    vis_bars: bool = True
    csv: str | os.PathLike[str] | None = None
    as_json: bool = False
    progress: bool | None = None
