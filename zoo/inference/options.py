"""The predict path's settings in two frozen objects, checked once and passed down whole:
:class:`PredictOptions` (how faces are found and classified) and :class:`PredictOutputs` (where results go)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from zoo.errors import ZooError
from zoo.outputs import check_folder_output, check_output

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
        score = self.min_score
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise ZooError(f"min_score (--min-score) must be a finite detector score (0 keeps every face), got "
                           f"{score!r}.")
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
    stdout, and a progress bar on stderr (``progress`` None: when stderr is a terminal). ``overwrite``
    (``--force``) replaces an existing CSV or video file and writes into a non-empty ``save_vis`` folder."""

    save_vis: str | os.PathLike[str] | None = None
    vis_attention: bool = True
    vis_bars: bool = True
    csv: str | os.PathLike[str] | None = None
    as_json: bool = False
    progress: bool | None = None
    overwrite: bool = False

    def check(self, inputs: Sequence[str | os.PathLike[str]], video_file: str | os.PathLike[str] | None = None,
              cli: bool = True) -> None:
        """The rules of :mod:`zoo.outputs`, checked before the model loads: no output is one of ``inputs`` (the
        files read: images, videos, a boxes CSV, a checkpoint, a model's files), and an existing CSV or
        ``video_file`` (the ``save_vis`` video), or a non-empty ``save_vis`` folder, only with ``overwrite``.
        ``cli`` names the outputs by their options in messages (``--csv``), else by their arguments."""
        csv_name, vis_name = ("--csv", "--save-vis") if cli else ("outputs.csv", "save_vis")
        if self.csv is not None:
            check_output(self.csv, inputs=inputs, force=self.overwrite, option=csv_name)
        if video_file is not None:
            check_output(video_file, inputs=inputs, force=self.overwrite, option=vis_name)
        elif self.save_vis is not None:
            check_folder_output(self.save_vis, inputs=inputs, force=self.overwrite, option=vis_name)
