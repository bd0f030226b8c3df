"""``zoo.predict``: find the faces in images and videos, build each face's face and context inputs, classify them.

(The module is ``zoo.inference.predict``, not ``zoo.predict``, so that importing it never shadows the function.)

**Inputs.** File paths (images, and videos by extension: :data:`zoo.inference.video.VIDEO_EXTENSIONS`), folders
(searched recursively for images and videos), glob patterns (``"photos/**/*.jpg"``), ``PIL`` images, numpy
arrays (H×W×3 uint8, or H×W grey, or N×H×W×3; ``channels="RGB"`` or ``"BGR"`` says the channel order) and
torch tensors (3×H×W or N×3×H×W, uint8, or float in [0, 1]; ``channels`` applies too).

**Pipeline.** Frames stream through one at a time (:func:`iter_predictions`): each is decoded, its faces are
found (``zoo.data.detect_faces``; or taken from known ``boxes``), each face is prepared exactly as the
model's ``DataConfig`` and the evaluation pipeline prepare it (``zoo.data.preprocess``), and the faces of
consecutive images / frames are classified together in batches of ``batch_size``. A frame is handed on as
soon as its faces are classified, so memory stays flat on long videos. Video faces carry a ``track`` id
(:class:`zoo.inference.tracking.IoUTracker`).

**No face.** ``missing_face`` decides what happens to an image or frame without a face (none found, or every
known box outside the image), following the dataset rules of :mod:`zoo.data.transforms`:

* ``"skip"`` (default): no prediction; the entry says ``"no face found"``;
* ``"whole"``: the whole image is the face (for images that are already face crops), context not masked;
* ``"zeros"``: a black face and the unmasked scene, as GLAMOR-Net's code; only for models with a context
  stream (a face-only model would classify a black image: refused);
* ``"error"``: raise :class:`zoo.data.MissingFaceError` naming the image.

A box that reaches outside the image (a face cut off by the border) is clipped to it; the face entry then
has ``"clipped": true``.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import re
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo import data as zdata
from zoo.data import load_image
from zoo.data.boxes import as_face_box, make_box
from zoo.data.images import image_from_array, to_rgb
from zoo.data.transforms import MissingFaceError
from zoo.errors import UntrainedModelWarning, ZooError
from zoo.factory import DEFAULT_MODEL, create_for_inference, has_trained_weights
from zoo.inference.tracking import IoUTracker
from zoo.inference.video import (
    VIDEO_EXTENSIONS,
    Frame,
    VideoVisWriter,
    check_sampling,
    is_video,
    iter_video_frames,
)
from zoo.runtime import resolve_device
from zoo.viz import prediction_figure

MISSING_FACE_CHOICES = ("skip", "whole", "zeros", "error")
_GLOB_CHARS = set("*?[")


# ----------------------------------------------------------------------------------------------- inputs


def _image_extensions() -> set[str]:
    from PIL import Image

    return {ext.lower() for ext in Image.registered_extensions()}


def expand_inputs(items: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Files as given; folders -> every image and video below them (recursive, sorted); globs -> their matches.

    A name that is neither an existing file, a folder nor a pattern with matches is an error naming it.
    """
    images, out = _image_extensions(), []
    for item in items:
        text = str(item)
        path = Path(text)
        if path.is_file():
            out.append(text)
        elif path.is_dir():
            found = sorted(
                (p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in images | set(VIDEO_EXTENSIONS)),
                key=lambda p: str(p.relative_to(path)),
            )
            if not found:
                raise ZooError(f"{text}: the folder holds no image or video files (searched recursively).")
            out.extend(str(p) for p in found)
        elif _GLOB_CHARS & set(text):
            matches = sorted(p for p in glob.glob(os.path.expanduser(text), recursive=True) if Path(p).is_file())
            if not matches:
                raise ZooError(f"{text}: no file matches this pattern.")
            out.extend(matches)
        else:
            raise ZooError(f"{text}: no such image, video or folder.")
    return out


def array_to_image(array: Any, channels: str = "RGB", source: str = "<array>"):
    """A PIL RGB image from an H×W×3 / H×W uint8 array or a 3×H×W / H×W tensor (uint8 or float in [0, 1])."""
    from PIL import Image


    if channels not in ("RGB", "BGR"):
        raise ZooError(f"channels must be 'RGB' or 'BGR', got {channels!r}.")
    if isinstance(array, torch.Tensor):
        tensor = array.detach().cpu()
        if tensor.ndim == 3 and tensor.shape[0] in (1, 3):
            tensor = tensor.permute(1, 2, 0)
        elif tensor.ndim != 2:
            raise ZooError(f"{source}: a tensor image must be 3×H×W (or 1×H×W, H×W), got {tuple(array.shape)}.")
        if tensor.is_floating_point():
            if tensor.numel() and (tensor.min() < 0 or tensor.max() > 1):
                raise ZooError(f"{source}: a float tensor image must hold values in [0, 1] (got "
                               f"{float(tensor.min()):.3g}..{float(tensor.max()):.3g}); undo any normalisation first.")
            tensor = (tensor * 255).round().to(torch.uint8)
        elif tensor.dtype != torch.uint8:
            raise ZooError(f"{source}: a tensor image must be uint8 or float in [0, 1], got {tensor.dtype}.")
        array = tensor.numpy()
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ZooError(f"{source}: a numpy image must be uint8 (H×W×3 {channels} or H×W grey), got {array.dtype}; "
                       f"convert it, e.g. (x * 255).round().astype(np.uint8) for floats in [0, 1].")
    if array.ndim == 3 and array.shape[2] == 4:
        raise ZooError(f"{source}: 4 channels; drop the alpha channel (array[..., :3]) first.")
    if array.ndim == 3 and array.shape[2] == 3 and channels == "BGR":
        array = array[:, :, ::-1]
    if array.ndim == 3 and array.shape[2] == 3:
        return Image.fromarray(np.ascontiguousarray(array), "RGB")
    return image_from_array(np.ascontiguousarray(array), source=source)


def iter_frames(
    inputs: Any,
    channels: str = "RGB",
    every: int | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    boxes: Sequence[Sequence[Any]] | dict[str, Sequence[Any]] | None = None,
) -> Iterator[Frame]:
    """Every image / sampled video frame of ``inputs`` (see the module docstring), one at a time.

    ``boxes``: a list with one list of boxes per input (stills only), or ``{path: boxes}`` (as
    :func:`read_boxes_csv` returns; a path not in it has no face). Both skip detection.
    """
    from PIL import Image


    check_sampling(every, fps)
    given = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if isinstance(boxes, (list, tuple)) and len(boxes) != len(given):
        raise ZooError(f"boxes: one list of boxes per image is needed ({len(given)} images, {len(boxes)} lists).")
    items: list[tuple[int, Any]] = []  # (position among the inputs given, item)
    for position, item in enumerate(given):
        if not isinstance(item, (str, os.PathLike)):
            items.append((position, item))
            continue
        expanded = expand_inputs([item])
        if isinstance(boxes, (list, tuple)) and (len(expanded) != 1 or expanded[0] != str(item)):
            raise ZooError(f"boxes given as a list need one file per input; input {position} ({item}) is a folder "
                           f"or pattern. Pass boxes as {{path: boxes}} instead.")
        items.extend((position, path) for path in expanded)
    by_path = {_path_key(k): v for k, v in boxes.items()} if isinstance(boxes, dict) else None
    for position, item in items:
        known = boxes[position] if isinstance(boxes, (list, tuple)) else None
        if isinstance(item, (str, os.PathLike)):
            if is_video(item):
                if known is not None or (by_path is not None and _path_key(item) in by_path):
                    raise ZooError(f"{item}: known boxes apply to images, not to videos; detect the faces instead.")
                yield from iter_video_frames(str(item), every=every, fps=fps, max_frames=max_frames)
            else:
                if by_path is not None:  # an image the boxes file does not list has no face
                    known = by_path.get(_path_key(item), [])
                yield Frame(str(item), load_image(item), boxes=_box_list(known))
        elif isinstance(item, Image.Image):
            yield Frame(f"<input {position}>", to_rgb(item), boxes=_box_list(known))
        elif isinstance(item, (np.ndarray, torch.Tensor)):
            batch = item.ndim == 4
            for k, one in enumerate(item if batch else [item]):
                name = f"<input {position}" + (f"[{k}]>" if batch else ">")
                # a batch's known boxes: one list per image of the batch
                yield Frame(name, array_to_image(one, channels, name), boxes=_box_list(known[k] if batch and known else known))
        else:
            raise ZooError(f"input {position}: expected a path, PIL image, numpy array or tensor, got "
                           f"{type(item).__name__}.")


def _path_key(path: str | os.PathLike[str]) -> str:
    return os.path.normcase(os.path.abspath(os.path.expanduser(str(path))))


def _box_list(boxes: Sequence[Any] | None) -> list[Any] | None:
    return None if boxes is None else list(boxes)


def read_boxes_csv(path: str | os.PathLike[str]) -> dict[str, list[tuple[float, float, float, float]]]:
    """``{image path: [boxes]}`` from a CSV of ``path,x1,y1,x2,y2`` rows (one row per face; a header row and
    ``#`` comments allowed; ``0,0,0,0`` = the image has no face). Relative paths are taken relative to the
    CSV's folder when they do not exist relative to the working directory."""

    path = Path(path)
    if not path.is_file():
        raise ZooError(f"--boxes {path}: no such file.")
    out: dict[str, list[tuple[float, float, float, float]]] = {}
    text = path.read_text(encoding="utf-8-sig")
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        if len(row) != 5:
            raise ZooError(f"{where}: expected 5 fields path,x1,y1,x2,y2, got {len(row)}: {','.join(row)[:100]!r}.")
        try:
            numbers = [float(v) for v in row[1:]]
        except ValueError:
            if number == 1 or not out:  # a header row
                continue
            raise ZooError(f"{where}: x1,y1,x2,y2 must be numbers, got {','.join(row[1:])!r}.") from None
        image = row[0].strip()
        if not os.path.isabs(image) and not Path(image).exists() and (path.parent / image).exists():
            image = str(path.parent / image)
        box = make_box(*numbers, where=where)
        entry = out.setdefault(image, [])
        if box is not None:
            entry.append((box.x1, box.y1, box.x2, box.y2))
    if not out:
        raise ZooError(f"--boxes {path}: no rows path,x1,y1,x2,y2 found.")
    return out


# ---------------------------------------------------------------------------------------------- predictions


@dataclass
class Prediction:
    """One image or frame: its JSON-ready ``entry`` and what writers need (the image, attention maps)."""

    entry: dict[str, Any]
    image: Any
    frame: Frame
    #: per face: the model's attention over the context cells (h×w), or None
    attention: list[np.ndarray | None] = field(default_factory=list)
    #: per face: the model inputs (``{"face", "context"}``), kept only when asked for (per-face PNGs)
    inputs: list[dict[str, torch.Tensor]] = field(default_factory=list)
    remaining: int = 0


def resolve_model(model: Any) -> Any:
    """The model to predict with: None -> the bundled default (:data:`zoo.factory.DEFAULT_MODEL`); a name ->
    :func:`zoo.factory.create_for_inference` (untrained presets allowed, with a warning); a model object as
    it is, with an :class:`zoo.factory.UntrainedModelWarning` when no weights were loaded into it."""

    if model is None or isinstance(model, str):
        return create_for_inference(model or DEFAULT_MODEL, allow_untrained=True)
    if not has_trained_weights(model):
        warnings.warn("zoo.predict: this model has no trained weights (none were loaded into it); its "
                      "probabilities are random.", UntrainedModelWarning, stacklevel=3)
    return model


def _visible(box: Any, width: int, height: int) -> bool:
    return box is not None and box.clamp(width, height) is not None


def _check_missing_face(policy: str, cfg) -> None:
    if policy not in MISSING_FACE_CHOICES:
        raise ZooError(f"missing_face must be one of {', '.join(MISSING_FACE_CHOICES)}, got {policy!r}.")
    if policy == "zeros" and not cfg.uses_context:
        raise ZooError("missing_face='zeros' gives the model a black face when none is found, and this model has "
                       "no context stream, so it would classify a black image. Use 'whole' (the images are face "
                       "crops) or 'skip'.")


def _no_face_note(policy: str, cfg) -> str:
    if policy == "skip":
        hint = ("; a context-only model can classify the unmasked scene with missing_face='zeros'"
                if not cfg.uses_face else "; missing_face='whole' classifies the whole image as a face")
        return "no face found" + hint
    if policy == "whole":
        return "no face found: the whole image was classified as the face (missing_face='whole')"
    return "no face found: black face input, unmasked scene (missing_face='zeros')"


def iter_predictions(
    frames: Iterable[Frame],
    model: Any = None,
    detector: str | Callable[..., Any] = "auto",
    device: str = "auto",
    min_score: float = 0.0,
    batch_size: int = 32,
    missing_face: str = "skip",
    track_iou: float = 0.3,
    track_max_missed: int | None = None,
    keep_inputs: bool | Callable[[Frame], bool] = False,
) -> Iterator[Prediction]:
    """Classify the faces of ``frames`` (from :func:`iter_frames`), batching faces across frames; yields one
    :class:`Prediction` per frame, in order, as soon as its faces are done. ``model`` as :func:`predict`."""
    return _predictions(frames, resolve_model(model), detector, device, min_score, batch_size, missing_face,
                        track_iou, track_max_missed, keep_inputs)


def _predictions(
    frames: Iterable[Frame],
    net: Any,
    detector: str | Callable[..., Any],
    device: str,
    min_score: float,
    batch_size: int,
    missing_face: str,
    track_iou: float,
    track_max_missed: int | None,
    keep_inputs: bool | Callable[[Frame], bool],
) -> Iterator[Prediction]:
    missing = [n for n in ("load_image", "detect_faces", "preprocess") if not hasattr(zdata, n)]
    if missing:
        raise ZooError(f"zoo.data lacks {', '.join(missing)}: this installation has no face detection / input "
                       f"pipeline; install the complete emotion-zoo.")
    if batch_size < 1:
        raise ZooError(f"batch_size must be at least 1, got {batch_size}.")

    dev = resolve_device(device)
    net = net.to(dev).eval()
    cfg = net.config
    _check_missing_face(missing_face, cfg)
    names = list(net.label_names)
    pending: deque[Prediction] = deque()
    work: list[tuple[Prediction, int, dict[str, torch.Tensor]]] = []
    trackers: dict[str, IoUTracker] = {}

    def run_batch() -> None:
        if not work:
            return
        face = torch.stack([w[2]["face"] for w in work]).to(dev) if cfg.uses_face else None
        context = torch.stack([w[2]["context"] for w in work]).to(dev) if cfg.uses_context else None
        with torch.inference_mode():
            output = net(face=face, context=context)
        _check_finite(output, [w[0].entry["image"] for w in work])
        probs = output.probs.float().cpu()
        for i, (pred, index, inputs) in enumerate(work):
            face_entry = pred.entry["faces"][index]
            top = int(probs[i].argmax())
            face_entry.update({"label": names[top], "probability": float(probs[i, top]),
                               "probs": {n: float(p) for n, p in zip(names, probs[i].tolist(), strict=True)}})
            if output.fusion_weights is not None:
                face_entry["fusion_weights"] = [float(w) for w in output.fusion_weights[i].float().tolist()]
            pred.attention[index] = output.attention[i].float().cpu().numpy() if output.attention is not None else None
            if pred.inputs:
                pred.inputs[index] = inputs
            pred.remaining -= 1
        work.clear()

    def ready() -> Iterator[Prediction]:
        while pending and pending[0].remaining == 0:
            yield pending.popleft()

    for frame in frames:
        image = frame.image
        entry: dict[str, Any] = {"image": frame.source}
        if frame.is_video:
            entry.update({"frame": frame.index, "timestamp": frame.timestamp})
        entry["faces"] = []
        if frame.boxes is not None:
            found = [as_face_box(b) for b in frame.boxes]
        else:
            found = [as_face_box(b) for b in zdata.detect_faces(image, detector=detector)]
            found = [b for b in found if b is not None and b.score >= min_score]
        width, height = image.size
        inside = [(b.x1, b.y1, b.x2, b.y2, b.score) for b in found if _visible(b, width, height)]
        pred = Prediction(entry, image, frame)
        faces: list[tuple[dict[str, Any], Any]] = []
        if inside:
            ids = None
            if frame.is_video:
                tracker = trackers.get(frame.source)
                if tracker is None:
                    max_missed = track_max_missed if track_max_missed is not None else max(1, round(frame.rate or 5))
                    tracker = trackers[frame.source] = IoUTracker(track_iou, max_missed)
                ids = tracker.update(inside)
            for i, (x1, y1, x2, y2, score) in enumerate(inside):
                face_entry: dict[str, Any] = {"face": i, "box": [x1, y1, x2, y2], "score": score}
                if ids is not None:
                    face_entry["track"] = ids[i]
                if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
                    face_entry["clipped"] = True
                faces.append((face_entry, {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score}))
        elif missing_face == "error":
            raise MissingFaceError(f"{frame.source}" + (f" frame {frame.index}" if frame.is_video else "")
                                   + ": no face found (missing_face='error'). Use missing_face='skip' to leave such "
                                   "images out, or 'whole' if they are face crops.")
        elif missing_face in ("whole", "zeros"):
            faces.append(({"face": 0, "box": None, "score": None}, None))
            entry["note"] = _no_face_note(missing_face, cfg)
        else:
            entry["note"] = _no_face_note(missing_face, cfg)
        keep = keep_inputs(frame) if callable(keep_inputs) else keep_inputs
        pred.attention = [None] * len(faces)
        pred.inputs = [{} for _ in faces] if keep else []
        pred.remaining = len(faces)
        pending.append(pred)
        for index, (face_entry, box) in enumerate(faces):
            entry["faces"].append(face_entry)
            if box is None:
                inputs = zdata.preprocess(image, None, cfg.data, train=False, streams=cfg.data_streams,
                                          missing_face=missing_face)
            else:
                inputs = zdata.preprocess(image, box, cfg.data, train=False, streams=cfg.data_streams)
            work.append((pred, index, inputs))
            if len(work) >= batch_size:
                run_batch()
        yield from ready()
    run_batch()
    yield from ready()


def predict(
    images: Any,
    model: Any = None,
    detector: str | Callable[..., Any] = "auto",
    device: str = "auto",
    min_score: float = 0.0,
    save_vis: str | os.PathLike | None = None,
    boxes: Sequence[Sequence[Any]] | dict[str, Sequence[Any]] | None = None,
    channels: str = "RGB",
    batch_size: int = 32,
    missing_face: str = "skip",
    every: int | None = None,
    fps: float | None = None,
) -> list[dict[str, Any]]:
    """Emotion probabilities for every face found in each image (or sampled video frame).

    ``images``: one input or a list of paths (files, folders, globs, videos), PIL images, numpy arrays
    (``channels`` "RGB" or "BGR") and tensors; see :mod:`zoo.inference.predict`. ``model`` is an
    :class:`zoo.models.model.EmotionModel`, a preset (its published weights), ``local-dir:DIR`` or ``hf-hub:REPO``;
    None is the bundled default model (:data:`zoo.factory.DEFAULT_MODEL`). A model without trained weights
    gives an :class:`zoo.factory.UntrainedModelWarning`. ``detector``: a registered
    name (``"auto"``: MTCNN when its weights are present, else Haar) or a callable. ``boxes`` (one list of
    ``(x1, y1, x2, y2)`` per input, or ``{path: boxes}``) gives known face boxes and skips detection.
    ``save_vis``: a folder for one PNG per face (image, box, context attention) and ``<name>_vis.mp4`` per video.

    Returns one entry per image / frame: ``{"image", ["frame", "timestamp",] "faces": [{"face", "box", "score",
    "label", "probability", "probs", ["fusion_weights", "track", "clipped", "vis"]}], ["note"]}``. For long
    videos iterate :func:`iter_predictions` instead, which never holds more than a batch.
    """
    net = resolve_model(model)
    frames = iter_frames(images, channels=channels, every=every, fps=fps, boxes=boxes)
    writers: dict[str, Any] = {}
    results = []
    try:
        for pred in _predictions(frames, net, detector, device, min_score, batch_size, missing_face, 0.3, None,
                                 save_vis is not None):
            if save_vis is not None:
                write_visualisations(pred, net.config.data, Path(save_vis), writers)
            results.append(pred.entry)
    finally:
        close_writers(writers)
    return results


# ----------------------------------------------------------------------------------------------- writers


def _stem(source: str) -> str:
    """File name stem of a source; ``<input 3>`` -> ``input3``, ``<input 3[2]>`` -> ``input3_2``."""
    if source.startswith("<"):
        return "input" + "_".join(re.findall(r"\d+", source))
    return Path(source).stem


def attention_overlay(pred: Prediction, data_config, combine: str = "max") -> np.ndarray | None:
    """The faces' context attention maps placed over the frame (H×W, NaN outside the context crop).

    The context input is the whole frame resized to ``context_resize`` and centre-cropped to
    ``context_size``; each h×w map is upsampled onto the frame region that crop shows, divided by its
    maximum, and the faces' maps are combined by their maximum.
    """
    import cv2

    maps = [a for a in pred.attention if a is not None]
    if not maps:
        return None
    width, height = pred.image.size
    rh, rw = data_config.context_resize
    ch, cw = data_config.context_size
    top, left = (rh - ch) // 2, (rw - cw) // 2
    x1, x2 = round(left * width / rw), round((left + cw) * width / rw)
    y1, y2 = round(top * height / rh), round((top + ch) * height / rh)
    combined = np.max(np.stack([a / max(float(a.max()), 1e-12) for a in maps]), axis=0)
    overlay = np.full((height, width), np.nan, dtype=np.float32)
    if x2 > x1 and y2 > y1:
        overlay[y1:y2, x1:x2] = cv2.resize(combined.astype(np.float32), (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
    return overlay


def write_visualisations(pred: Prediction, data_config, out: Path, writers: dict[str, Any],
                         video_file: Path | None = None) -> None:
    """Per-face PNGs for a still image (``out/<name>_face<i>.png``); frames of a video go to
    ``video_file`` or ``out/<name>_vis.mp4`` (one writer per source, kept in ``writers``; close them at the end
    with :func:`close_writers`)."""

    frame = pred.frame
    stems: dict[str, str] = writers.setdefault("__stems__", {})
    if frame.source not in stems:  # photos with the same name in different folders get _2, _3, ...
        stem, taken = _stem(frame.source), set(stems.values())
        unique, n = stem, 1
        while unique in taken:
            n += 1
            unique = f"{stem}_{n}"
        stems[frame.source] = unique
    name = stems[frame.source]
    if frame.is_video:
        if frame.source not in writers:
            writers[frame.source] = VideoVisWriter(video_file or out / f"{name}_vis.mp4")
        writers[frame.source].write(pred.image, pred.entry["faces"], attention_overlay(pred, data_config), frame.rate)
        return
    for i, face_entry in enumerate(pred.entry["faces"]):
        inputs = pred.inputs[i] if pred.inputs else {}
        attention = torch.from_numpy(pred.attention[i]) if pred.attention[i] is not None else None
        box = face_entry["box"] or [0, 0, pred.image.size[0], pred.image.size[1]]
        face_entry["vis"] = str(prediction_figure(
            out / f"{name}_face{i}.png", pred.image, box, inputs.get("context"), inputs.get("face"),
            attention, data_config, face_entry))


def close_writers(writers: dict[str, Any]) -> None:
    for key, writer in writers.items():
        if key != "__stems__":
            writer.close()


CSV_COLUMNS = ("source", "frame", "timestamp", "face", "track", "x1", "y1", "x2", "y2", "det_score", "label", "score")


class CsvWriter:
    """``--csv FILE``: one row per face: source, frame, timestamp, face index, track, box, detector score,
    label, its probability (``score``) and ``prob_<class>`` per class. Rows are written (and flushed) as
    frames arrive."""

    def __init__(self, path: str | os.PathLike[str], label_names: Sequence[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.names = list(label_names)
        self._file = open(self.path, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow([*CSV_COLUMNS, *(f"prob_{n}" for n in self.names)])
        self.rows = 0

    def write(self, entry: dict[str, Any]) -> None:
        for face in entry["faces"]:
            box = face["box"] or [None] * 4
            values = [entry["image"], entry.get("frame"), entry.get("timestamp"), face["face"], face.get("track"),
                      *(None if v is None else round(v, 2) for v in box),
                      None if face["score"] is None else round(face["score"], 4), face["label"],
                      round(face["probability"], 6), *(round(face["probs"][n], 6) for n in self.names)]
            self._csv.writerow(["" if v is None else v for v in values])
            self.rows += 1
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class JsonStreamWriter:
    """A JSON array written one entry at a time (valid JSON once closed)."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.count = 0

    def write(self, entry: dict[str, Any]) -> None:
        text = json.dumps(entry, indent=2, allow_nan=False)  # strict JSON: NaN is no JSON value
        self.echo(("[\n" if self.count == 0 else ",\n") + "\n".join("  " + line for line in text.splitlines()))
        self.count += 1

    def close(self) -> None:
        self.echo("[]" if self.count == 0 else "\n]")


def _check_finite(output: Any, sources: list[str]) -> None:
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
