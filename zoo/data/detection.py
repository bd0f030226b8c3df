"""Face detection for raw photos and for datasets without boxes: the ``face_detector`` registry kind.

A detector factory is ``factory(**args) -> detector`` and a detector is a callable
``detector(image: PIL.Image RGB) -> list[FaceBox]`` returning every face it finds, each with a score.
Built in:

* ``mtcnn`` (:mod:`zoo.data.mtcnn`): the MTCNN cascade (Zhang et al., IEEE SPL 2016) with the weights that
  ship in ``zoo/data/weights/mtcnn``; score = O-Net's face probability;
* ``haar``: OpenCV's frontal-face Haar cascade (inside ``opencv-python-headless``), with non-maximum
  suppression and a minimum score;
* ``auto`` (the default everywhere a detector is chosen for you): ``mtcnn`` when its weights are present,
  else ``haar`` (:func:`default_face_detector`).

Both are registered by :mod:`zoo.builtin.detectors`. Other detectors (dlib MMOD as GLAMOR-Net's
data_utils.py, RetinaFace, ...) can come from plugins through ``register_face_detectors``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image

from zoo.data.boxes import FaceBox, as_face_box
from zoo.errors import AnnotationError, DataError
from zoo.registry.plugins import get_component

#: the detector name that means "the best built-in detector available here"
AUTO = "auto"


def nms_boxes(boxes: list[FaceBox], threshold: float, mode: str = "union") -> list[FaceBox]:
    """Greedy non-maximum suppression over ``FaceBox`` es (see :func:`zoo.data.mtcnn.nms`), best first."""
    from zoo.data.mtcnn import nms

    if not boxes:
        return []
    coords = np.array([[b.x1, b.y1, b.x2, b.y2] for b in boxes])
    keep = nms(coords, np.array([b.score for b in boxes]), threshold, mode)
    return [boxes[i] for i in keep]


class HaarFaceDetector:
    """OpenCV's Viola–Jones cascade. ``score`` is the cascade's final-stage level weight (higher = surer).

    Scores are not probabilities: on OpenCV 4.x a clear frontal face scores around 2–10, texture (window
    blinds, fabric) mostly below 3. ``min_neighbors`` and ``min_size`` are OpenCV's ``detectMultiScale``
    arguments (``min_size`` as a fraction of the shorter image side). The raw cascade returns overlapping
    boxes for one face (a face and a shifted or larger copy of it); greedy NMS keeps the best-scored of boxes
    overlapping by IoU > ``nms_threshold`` (``nms_mode="min"``: intersection over the smaller box, which also
    merges a box lying inside another), then boxes scored below ``min_score`` are dropped.
    ``nms_threshold=1, min_score=None`` give the raw cascade.
    """

    def __init__(
        self,
        cascade: str = "haarcascade_frontalface_default.xml",
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: float = 0.05,
        nms_threshold: float = 0.3,
        nms_mode: str = "union",
        min_score: float | None = 3.0,
    ) -> None:
        import cv2
        path = cascade if "/" in cascade else cv2.data.haarcascades + cascade
        self._classifier = cv2.CascadeClassifier(path)
        if self._classifier.empty():
            raise DataError(f"Could not load the Haar cascade {path!r}; check the OpenCV installation.")
        if nms_mode not in ("union", "min"):
            raise DataError(f"haar: nms_mode must be 'union' or 'min', got {nms_mode!r}.")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.nms_threshold = nms_threshold
        self.nms_mode = nms_mode
        self.min_score = min_score

    def raw(self, image: Image.Image) -> list[FaceBox]:
        """Every box the cascade returns, best first, before NMS and the minimum score."""
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

    def __call__(self, image: Image.Image) -> list[FaceBox]:
        boxes = nms_boxes(self.raw(image), self.nms_threshold, self.nms_mode)
        return [b for b in boxes if self.min_score is None or b.score >= self.min_score]


def default_face_detector() -> str:
    """``"mtcnn"`` when its weights are present (they ship with the package), else ``"haar"``."""
    from zoo.data.mtcnn import weights_present

    return "mtcnn" if weights_present() else "haar"


def resolve_detector_name(name: str | None) -> str:
    """``None`` / ``"auto"`` -> :func:`default_face_detector`; any other name unchanged."""
    return default_face_detector() if name in (None, AUTO) else name


_DETECTORS: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}


def get_face_detector(name: str = AUTO, **args: Any):
    """The detector registered as ``name`` (``"auto"``: see :func:`default_face_detector`), built once per
    argument set and reused."""
    name = resolve_detector_name(name)
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
    image: Image.Image, detector: str | Any = AUTO, min_score: float | None = None, **args: Any
) -> list[FaceBox]:
    """Every face in ``image`` (RGB) with ``score >= min_score``, best first.

    ``detector`` is a registered name (``zoo.list_components("face_detector")``; ``"auto"`` = MTCNN when its
    weights are present, else Haar) or a detector callable.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    find = get_face_detector(detector, **args) if isinstance(detector, str) else detector
    found = find(image)
    try:
        found = list(found)
    except TypeError:
        raise DetectorError(f"face detector {detector!r} returned {type(found).__name__}, not a list of boxes.") from None
    boxes = []
    for box in found:  # a plugin's detector may return tuples, dicts or NaN: each becomes a checked FaceBox
        try:
            checked = as_face_box((box.x1, box.y1, box.x2, box.y2, box.score) if isinstance(box, FaceBox) else box)
        except AnnotationError as exc:
            raise DetectorError(f"face detector {detector!r} returned a bad box: {exc}") from None
        if checked is not None and isinstance(box, FaceBox) and box.landmarks is not None:
            checked = replace(checked, landmarks=box.landmarks)  # the check keeps the detector's landmarks
        if checked is not None and (min_score is None or checked.score >= min_score):
            boxes.append(checked)
    return sorted(boxes, key=lambda b: -b.score)


class DetectorError(AnnotationError):
    """A face detector (often a plugin's) returned something that is not a list of valid boxes."""
