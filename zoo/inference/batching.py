"""The prediction loop: frames in, one :class:`Prediction` per frame out, the faces of consecutive frames
classified together.

Each frame's faces are found (``zoo.data.detect_faces``, or the frame's known boxes), kept when they show
inside the image, tracked across the frames of a video (:class:`zoo.inference.tracking.IoUTracker`) and
prepared exactly as the model's ``DataConfig`` and the evaluation pipeline prepare them
(``zoo.data.preprocess``). :class:`FaceBatcher` classifies them ``batch_size`` at a time and hands each frame
on, in order, as soon as all its faces are done, so memory stays flat on long videos. A frame without a face
follows ``missing_face`` (see :mod:`zoo.inference.predict`).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from zoo import data as zdata
from zoo.data.boxes import as_face_box
from zoo.data.transforms import MissingFaceError
from zoo.errors import ZooError
from zoo.inference.options import MISSING_FACE_CHOICES, PredictOptions
from zoo.inference.results import FaceResult, FrameResult
from zoo.inference.tracking import IoUTracker
from zoo.inference.video import Frame
from zoo.runtime import resolve_device

__all__ = ["MISSING_FACE_CHOICES", "Prediction", "classify_frames"]

class FoundFace(tuple):
    """A face found inside the frame: ``(x1, y1, x2, y2, score)`` (the box may reach past the border) with the
    detector's five ``landmarks`` (or None)."""

    landmarks: tuple[tuple[float, float], ...] | None

    def __new__(cls, values: Iterable[float], landmarks: Any = None) -> FoundFace:
        found = super().__new__(cls, tuple(values))
        found.landmarks = None if landmarks is None else tuple((float(x), float(y)) for x, y in landmarks)
        return found


@dataclass
class Prediction:
    """One image or frame: its JSON-ready ``entry`` (filled in as its faces are classified), once complete its
    :class:`FrameResult` ``result``, and what writers need (the image, attention maps)."""

    entry: dict[str, Any]
    image: Any
    frame: Frame
    #: per face: the model's attention over the context cells (h×w), or None
    attention: list[np.ndarray | None] = field(default_factory=list)
    remaining: int = 0
    result: FrameResult | None = None


def model_identity(net: Any) -> tuple[str | None, str | None]:
    """(model name, weights tag) of a model object, from what its loader recorded."""
    cfg = getattr(net, "pretrained_cfg", None) or {}
    name = cfg.get("architecture") or getattr(getattr(net, "config", None), "architecture", None)
    return name, cfg.get("tag")


def classify_frames(frames: Iterable[Frame], model: Any, options: PredictOptions | None = None) -> Iterator[Prediction]:
    """One :class:`Prediction` per frame of ``frames``, in order, by the model object ``model``, as
    ``options`` say. A frame that could not be read (``frame.error``) passes through with its error. When the
    frames stop with an exception, the frames already classified are handed on first."""
    options = options or PredictOptions()
    dev = resolve_device(options.device)
    net = model.to(dev).eval()
    cfg = net.config
    check_missing_face(options.missing_face, cfg)
    name, tag = model_identity(net)
    detector = options.detector_name
    batcher = FaceBatcher(net, dev, options.batch_size, tta=options.tta, identity=(name, tag, detector))
    tracks = VideoTracks(options.track_iou, options.track_max_missed)
    try:
        for frame in frames:
            entry = frame_entry(frame)
            if frame.error is not None:
                entry["error"] = frame.error
                batcher.add_frame(Prediction(entry, None, frame))
                yield from batcher.ready()
                continue
            found = find_faces(frame, options.detector, options.min_score)[:options.max_faces]
            if found:
                faces = face_entries(frame, found, tracks.ids(frame, found) if frame.is_video else None)
            else:
                faces = no_face(frame, entry, options.missing_face, cfg)
            pred = Prediction(entry, frame.image, frame, attention=[None] * len(faces), remaining=len(faces))
            batcher.add_frame(pred)
            for index, (face_entry, box) in enumerate(faces):
                entry["faces"].append(face_entry)
                batcher.add_face(pred, index, model_inputs(frame.image, box, cfg, options.missing_face))
            yield from batcher.ready()
    except GeneratorExit:  # the caller stopped reading: nothing to hand on
        raise
    except BaseException:
        # never lose finished work: the faces already found are classified and their frames handed on first
        # (unless classifying them is what failed), then the error goes on
        with contextlib.suppress(Exception):
            batcher.flush()
        yield from batcher.ready()
        raise
    batcher.flush()
    yield from batcher.ready()


def check_missing_face(policy: str, cfg: Any) -> None:
    """``policy`` is a ``missing_face`` choice this model can follow."""
    if policy not in MISSING_FACE_CHOICES:
        raise ZooError(f"missing_face must be one of {', '.join(MISSING_FACE_CHOICES)}, got {policy!r}.")
    if policy == "zeros" and not cfg.uses_context:
        raise ZooError("missing_face='zeros' gives the model a black face when none is found, and this model has "
                       "no context stream, so it would classify a black image. Use 'whole' (the images are face "
                       "crops) or 'skip'.")


def frame_entry(frame: Frame) -> dict[str, Any]:
    """The entry of a frame before its faces: ``{"image", ["frame", "timestamp",] "faces": []}``."""
    entry: dict[str, Any] = {"image": frame.source}
    if frame.is_video:
        entry.update({"frame": frame.index, "timestamp": frame.timestamp})
    entry["faces"] = []
    return entry


def find_faces(frame: Frame, detector: str | Callable[..., Any], min_score: float) -> list[FoundFace]:
    """The frame's known boxes, or the faces the detector scored at least ``min_score`` (best first, with
    their landmarks when the detector gives them); those that show inside the image."""
    if frame.boxes is not None:
        found = [as_face_box(b) for b in frame.boxes]
        width, height = frame.image.size
        for box in found:  # a given box is the user's claim that a face is there: one off the image is a mistake
            if box is not None and box.clamp(width, height) is None:
                raise ZooError(f"{frame.source}: the known face box {[box.x1, box.y1, box.x2, box.y2]} lies wholly "
                               f"outside the {width}×{height} image; check its x1,y1,x2,y2 (pixels) and the image "
                               f"it belongs to.")
    else:
        detected = zdata.detect_faces(frame.image, detector=detector)
        found = [_with_landmarks(as_face_box(b), getattr(b, "landmarks", None)) for b in detected]
        found = [b for b in found if b is not None and b.score >= min_score]
    width, height = frame.image.size
    return [FoundFace((b.x1, b.y1, b.x2, b.y2, b.score), getattr(b, "landmarks", None))
            for b in found if b is not None and b.clamp(width, height) is not None]


def _with_landmarks(box: Any, landmarks: Any) -> Any:
    if box is None or landmarks is None or getattr(box, "landmarks", None) is not None:
        return box
    from dataclasses import replace

    return replace(box, landmarks=tuple((float(x), float(y)) for x, y in landmarks))


class VideoTracks:
    """One :class:`IoUTracker` per video source; a track survives ``max_missed`` frames without its face
    (default: about one second of the sampled frames)."""

    def __init__(self, iou: float = 0.3, max_missed: int | None = None) -> None:
        self.iou = iou
        self.max_missed = max_missed
        self._trackers: dict[str, IoUTracker] = {}

    def ids(self, frame: Frame, faces: list[FoundFace]) -> list[int]:
        """The track id of each face of this video frame."""
        tracker = self._trackers.get(frame.source)
        if tracker is None:
            max_missed = self.max_missed if self.max_missed is not None else max(1, round(frame.rate or 5))
            tracker = self._trackers[frame.source] = IoUTracker(self.iou, max_missed)
        return tracker.update(faces)


def face_entries(frame: Frame, faces: list[FoundFace],
                 track_ids: list[int] | None) -> list[tuple[dict[str, Any], dict[str, float]]]:
    """Per face: its entry (``face``, ``box`` clipped to the image, ``detector_score``, ``landmarks``,
    [``track``, ``clipped``]) and its box as found, for ``zoo.data.preprocess``."""
    width, height = frame.image.size
    out = []
    for i, found in enumerate(faces):
        x1, y1, x2, y2, score = found[:5]
        box = [max(0, x1), max(0, y1), min(width, x2), min(height, y2)]
        landmarks = getattr(found, "landmarks", None)
        face_entry: dict[str, Any] = {"face": i, "box": box, "detector_score": score,
                                      "landmarks": None if landmarks is None else [list(p) for p in landmarks]}
        if track_ids is not None:
            face_entry["track"] = track_ids[i]
        if box != [x1, y1, x2, y2]:
            face_entry["clipped"] = True
        out.append((face_entry, {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score}))
    return out


def no_face(frame: Frame, entry: dict[str, Any], policy: str, cfg: Any) -> list[tuple[dict[str, Any], None]]:
    """What a frame without a face gets under ``missing_face=policy``: the one boxless face of ``whole`` and
    ``zeros``, or none; ``entry`` gets the note that says so. ``error`` raises :class:`MissingFaceError`."""
    if policy == "error":
        raise MissingFaceError(f"{frame.source}" + (f" frame {frame.index}" if frame.is_video else "")
                               + ": no face found (missing_face='error'). Use missing_face='skip' "
                               "(--missing-face skip) to leave such images out, or 'whole' if they are face crops.")
    faces = [({"face": 0, "box": None, "detector_score": None, "landmarks": None}, None)] if policy in ("whole", "zeros") else []
    entry["note"] = no_face_note(policy, cfg)
    return faces


def no_face_note(policy: str, cfg: Any) -> str:
    """The note of a frame without a face; it names the option both ways (``zoo.predict`` and ``zoo-cli``)."""
    if policy == "skip":
        hint = ("; a context-only model can classify the unmasked scene with missing_face='zeros' "
                "(--missing-face zeros)" if not cfg.uses_face
                else "; missing_face='whole' (--missing-face whole) classifies the whole image as a face")
        return "no face found" + hint
    if policy == "whole":
        return "no face found: the whole image was classified as the face (missing_face='whole')"
    return "no face found: black face input, unmasked scene (missing_face='zeros')"


def model_inputs(image: Any, box: dict[str, float] | None, cfg: Any, missing_face: str) -> dict[str, torch.Tensor]:
    """``{"face", "context"}`` of one face, as the evaluation pipeline prepares them; ``box`` None is the
    boxless face of ``missing_face``."""
    if box is None:
        return zdata.preprocess(image, None, cfg.data, train=False, streams=cfg.data_streams, missing_face=missing_face)
    return zdata.preprocess(image, box, cfg.data, train=False, streams=cfg.data_streams)


class FaceBatcher:
    """Faces of consecutive frames, classified ``batch_size`` at a time; each frame is handed on (in the
    order added) once all its faces have their probabilities, with its :class:`FrameResult`. ``tta="flip"``
    averages the probabilities of each input and its horizontal mirror (as ``zoo.evaluate``)."""

    def __init__(self, net: Any, device: torch.device, batch_size: int, tta: str = "none",
                 identity: tuple[str | None, str | None, str | None] = (None, None, None)) -> None:
        self.net = net
        self.device = device
        self.batch_size = batch_size
        self.tta = tta
        self.identity = identity
        self.names = list(net.label_names)
        self._pending: deque[Prediction] = deque()
        self._work: list[tuple[Prediction, int, dict[str, torch.Tensor]]] = []

    def add_frame(self, pred: Prediction) -> None:
        """Queue a frame; its ``remaining`` faces follow with :meth:`add_face`."""
        self._pending.append(pred)

    def add_face(self, pred: Prediction, index: int, inputs: dict[str, torch.Tensor]) -> None:
        """Face ``index`` of ``pred``; a full batch is classified at once."""
        self._work.append((pred, index, inputs))
        if len(self._work) >= self.batch_size:
            self.flush()

    def ready(self) -> Iterator[Prediction]:
        """The queued frames whose faces are all done, in order, up to the first that is not."""
        while self._pending and self._pending[0].remaining == 0:
            pred = self._pending.popleft()
            if pred.frame is not None:
                pred.result = frame_result(pred, self.identity, self.names)
            yield pred

    def flush(self) -> None:
        """Classify the faces waiting, however few."""
        if not self._work:
            return
        cfg = self.net.config
        face = torch.stack([w[2]["face"] for w in self._work]).to(self.device) if cfg.uses_face else None
        context = torch.stack([w[2]["context"] for w in self._work]).to(self.device) if cfg.uses_context else None
        with torch.inference_mode():
            output = self.net(face=face, context=context)
            check_finite(output, [w[0].entry["image"] for w in self._work])
            probs = output.probs.float().cpu()
            if self.tta == "flip":
                mirrored = self.net(face=None if face is None else face.flip(-1),
                                    context=None if context is None else context.flip(-1))
                check_finite(mirrored, [w[0].entry["image"] for w in self._work])
                probs = (probs + mirrored.probs.float().cpu()) / 2
        for i, (pred, index, _inputs) in enumerate(self._work):
            self._record(pred, index, output, probs, i)
        self._work.clear()

    def _record(self, pred: Prediction, index: int, output: Any, probs: torch.Tensor, i: int) -> None:
        """Row ``i`` of the batch's output into face ``index`` of ``pred``."""
        face_entry = pred.entry["faces"][index]
        top = int(probs[i].argmax())
        face_entry.update({"label": self.names[top], "probability": float(probs[i, top]),
                           "probs": {n: float(p) for n, p in zip(self.names, probs[i].tolist(), strict=True)}})
        if output.fusion_weights is not None:
            face_entry["fusion_weights"] = [float(w) for w in output.fusion_weights[i].float().tolist()]
        pred.attention[index] = output.attention[i].float().cpu().numpy() if output.attention is not None else None
        pred.remaining -= 1


def frame_result(pred: Prediction, identity: tuple[str | None, str | None, str | None],
                 names: list[str]) -> FrameResult:
    """The :class:`FrameResult` of a finished frame."""
    entry, frame = pred.entry, pred.frame
    faces = tuple(FaceResult(
        face=f["face"], box=None if f["box"] is None else tuple(float(v) for v in f["box"]),
        detector_score=None if f["detector_score"] is None else float(f["detector_score"]), label=f["label"],
        probability=f["probability"], probs=f["probs"],
        landmarks=None if f.get("landmarks") is None else tuple(tuple(p) for p in f["landmarks"]),
        track=f.get("track"), clipped=bool(f.get("clipped", False)),
        fusion_weights=None if f.get("fusion_weights") is None else tuple(f["fusion_weights"]),
    ) for f in entry["faces"])
    width, height = frame.image.size if frame.image is not None else (None, None)
    model, tag, detector = identity
    return FrameResult(image=frame.source, width=width, height=height, model=model, tag=tag,
                       detector=None if frame.boxes is not None else detector, faces=faces, frame=frame.index,
                       timestamp=frame.timestamp, note=entry.get("note"), error=frame.error,
                       label_names=tuple(names))


def check_finite(output: Any, sources: list[str]) -> None:
    """Every number reported must be finite: NaN or infinite outputs are an error naming the inputs, never a
    "p=NaN" result (or bare ``NaN`` in JSON)."""
    for name in ("logits", "fusion_weights", "attention"):
        value = getattr(output, name, None)
        if value is None:
            continue
        bad = ~torch.isfinite(value.float().reshape(value.shape[0], -1)).all(dim=1)
        if bad.any():
            where = sorted({sources[i] for i in bad.nonzero().flatten().tolist()})
            raise ZooError(
                f"{', '.join(where[:5])}: the model produced NaN or infinite {name}; its weights or normalisation "
                f"(mean/std in config.json) are broken, or the input overflowed. No result is reported for it."
            )
