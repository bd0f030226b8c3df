"""Face detection for raw photos and for datasets without boxes: the ``face_detector`` registry kind.

A detector factory is ``factory(**args) -> detector`` and a detector is a callable
``detector(image: PIL.Image RGB) -> list[FaceBox]`` returning every face it finds, each with a score.
The built-in ``haar`` detector uses the frontal-face Haar cascade that ships inside
``opencv-python-headless`` (offline, no download); better detectors (dlib MMOD as GLAMOR-Net's data_utils.py,
RetinaFace, ...) can come from plugins through ``register_face_detectors``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from zoo.data.boxes import FaceBox
from zoo.data.errors import DataError
from zoo.hookspecs import hookimpl
from zoo.registry import get_component


class HaarFaceDetector:
    """OpenCV's Viola–Jones cascade. ``score`` is the cascade's final-stage level weight (higher = surer).

    Scores are not probabilities: on OpenCV 4.x a clear frontal face scores around 2–8, false positives on
    texture mostly below 1. ``min_neighbors`` and ``min_size`` are OpenCV's ``detectMultiScale`` arguments
    (``min_size`` as a fraction of the shorter image side).
    """

    def __init__(
        self,
        cascade: str = "haarcascade_frontalface_default.xml",
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: float = 0.05,
    ) -> None:
        try:
            import cv2
        except ImportError as exc:  # pragma: no cover - cv2 is a dependency
            raise DataError(
                "The 'haar' face detector needs OpenCV: pip install 'opencv-python-headless<5'."
            ) from exc
        path = cascade if "/" in cascade else cv2.data.haarcascades + cascade
        self._classifier = cv2.CascadeClassifier(path)
        if self._classifier.empty():
            raise DataError(f"Could not load the Haar cascade {path!r}; check the OpenCV installation.")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size

    def __call__(self, image: Image.Image) -> list[FaceBox]:
        import cv2

        grey = cv2.equalizeHist(np.asarray(image.convert("L")))
        side = max(1, int(min(grey.shape) * self.min_size))
        rects, _, weights = self._classifier.detectMultiScale3(
            grey,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(side, side),
            outputRejectLevels=True,
        )
        boxes = [
            FaceBox(float(x), float(y), float(x + w), float(y + h), float(score))
            for (x, y, w, h), score in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1), strict=True)
        ]
        return sorted(boxes, key=lambda b: -b.score)


_DETECTORS: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}


def get_face_detector(name: str = "haar", **args: Any):
    """The detector registered as ``name``, built once per argument set and reused."""
    key = (name, tuple(sorted(args.items())))
    try:
        return _DETECTORS[key]
    except TypeError:  # unhashable arguments: build without caching
        key = None
    except KeyError:
        pass
    entry, suffix = get_component("face_detector", name)
    detector = entry.factory(suffix, **args) if suffix is not None else entry.factory(**args)
    if key is not None:
        _DETECTORS[key] = detector
    return detector


def detect_faces(
    image: Image.Image, detector: str | Any = "haar", min_score: float | None = None, **args: Any
) -> list[FaceBox]:
    """Every face in ``image`` (RGB) with ``score >= min_score``, best first.

    ``detector`` is a registered name (``zoo.list_components("face_detector")``) or a detector callable.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    find = get_face_detector(detector, **args) if isinstance(detector, str) else detector
    boxes = [b for b in find(image) if min_score is None or b.score >= min_score]
    return sorted(boxes, key=lambda b: -b.score)


@hookimpl
def register_face_detectors(register):
    register("haar", HaarFaceDetector, "OpenCV frontal-face Haar cascade (ships with opencv-python-headless)")
