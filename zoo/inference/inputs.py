"""What ``zoo.predict`` runs on, turned into :class:`zoo.inference.video.Frame` objects one at a time.

File paths (images, and videos by extension: :data:`zoo.inference.video.VIDEO_EXTENSIONS`), folders (searched
recursively for images and videos), glob patterns (``"photos/**/*.jpg"``), ``PIL`` images, numpy arrays
(H×W×3 uint8, or H×W grey, or N×H×W×3; ``channels="RGB"`` or ``"BGR"`` says the channel order) and torch
tensors (3×H×W or N×3×H×W, uint8, or float in [0, 1]; ``channels`` applies too). Known face boxes come as
lists or from a ``--boxes`` CSV (:func:`read_boxes_csv`).
"""

from __future__ import annotations

import csv
import glob
import io
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.data import load_image
from zoo.data.boxes import make_box
from zoo.data.images import ImageReadError, image_from_array, to_rgb
from zoo.errors import ZooError
from zoo.inference.options import ON_ERROR_CHOICES
from zoo.inference.video import VIDEO_EXTENSIONS, Frame, check_sampling, is_video, iter_video_frames
from zoo.outputs import is_inside

_GLOB_CHARS = set("*?[")


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


def _expand(item: str | os.PathLike[str], outputs_folder: str | os.PathLike[str] | None) -> list[str]:
    """:func:`expand_inputs` of one item, less the files inside ``outputs_folder``; nothing left is an error."""
    expanded = expand_inputs([item])
    if outputs_folder is None:
        return expanded
    kept = [f for f in expanded if not is_inside(f, outputs_folder)]
    if not kept:
        raise ZooError(f"{item}: holds only files inside the --save-vis folder {outputs_folder}, which are outputs "
                       f"(an earlier run's pictures), not inputs.")
    return kept


def input_files(inputs: Any, outputs_folder: str | os.PathLike[str] | None = None) -> list[str]:
    """The files that the paths among ``inputs`` stand for, as :func:`iter_frames` reads them (folders and globs
    expanded, ``outputs_folder`` left out): the files that no output of the command may be."""
    given = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    return [f for item in given if isinstance(item, (str, os.PathLike)) for f in _expand(item, outputs_folder)]


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


class InputSkippedWarning(UserWarning):
    """An input could not be read and was skipped (``on_error="skip"``); its entry has an ``error``."""


def iter_frames(
    inputs: Any,
    channels: str = "RGB",
    every: int | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    boxes: Sequence[Sequence[Any]] | dict[str, Sequence[Any]] | None = None,
    on_error: str = "auto",
    outputs_folder: str | os.PathLike[str] | None = None,
) -> Iterator[Frame]:
    """Every image / sampled video frame of ``inputs`` (see this module's docstring), one at a time.

    ``boxes``: a list with one list of boxes per input (stills only), or ``{path: boxes}`` (as
    :func:`read_boxes_csv` returns; a path not in it has no face). Both skip detection.

    ``on_error``: a file that cannot be read raises (``"raise"``) or is skipped with an
    :class:`InputSkippedWarning` and passed on as a frame with ``error`` set and no image (``"skip"``);
    ``"auto"`` skips files found in folders or globs and videos, and raises for an image named directly.

    ``outputs_folder`` (the ``save_vis`` folder): files inside it are an earlier run's pictures, no inputs.
    """
    from PIL import Image

    check_sampling(every, fps)
    if on_error not in ON_ERROR_CHOICES:
        raise ZooError(f"on_error must be one of {', '.join(ON_ERROR_CHOICES)}, got {on_error!r}.")
    given = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if isinstance(boxes, (list, tuple)) and len(boxes) != len(given):
        raise ZooError(f"boxes: one list of boxes per image is needed ({len(given)} images, {len(boxes)} lists).")
    items: list[tuple[int, Any, bool]] = []  # (position among the inputs given, item, found in a folder / glob)
    for position, item in enumerate(given):
        if not isinstance(item, (str, os.PathLike)):
            items.append((position, item, False))
            continue
        expanded = _expand(item, outputs_folder)
        if isinstance(boxes, (list, tuple)) and (len(expanded) != 1 or expanded[0] != str(item)):
            raise ZooError(f"boxes given as a list need one file per input; input {position} ({item}) is a folder "
                           f"or pattern. Pass boxes as {{path: boxes}} instead.")
        found = len(expanded) != 1 or expanded[0] != str(item)
        for path in expanded:
            if boxes is not None and is_video(path):
                raise ZooError(f"{path}: known boxes apply to images, not to videos (--boxes); predict the video "
                               f"without boxes (its faces are then detected).")
            items.append((position, path, found))
    by_path = {_path_key(k): v for k, v in boxes.items()} if isinstance(boxes, dict) else None
    for position, item, found in items:
        known = boxes[position] if isinstance(boxes, (list, tuple)) else None
        if isinstance(item, (str, os.PathLike)):
            skip = on_error == "skip" or (on_error == "auto" and (found or is_video(item)))
            if is_video(item):
                yield from _video_frames(str(item), every, fps, max_frames, skip)
                continue
            if by_path is not None:  # an image the boxes file does not list has no face
                known = by_path.get(_path_key(item), [])
            try:
                image = load_image(item)
            except ImageReadError as exc:
                if not skip:  # the reader's advice names the datasets' option; predict has its own
                    raise ImageReadError(f"{_without_dataset_hint(exc)} To record such a file and go on, predict "
                                         f"with on_error='skip' (zoo-cli predict --on-error skip).") from None
                yield _skipped(str(item), exc)
                continue
            except (ZooError, OSError) as exc:
                if not skip:
                    raise
                yield _skipped(str(item), exc)
                continue
            yield Frame(str(item), image, boxes=_box_list(known))
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


def _video_frames(path: str, every: int | None, fps: float | None, max_frames: int | None,
                  skip: bool) -> Iterator[Frame]:
    """The frames of one video; a video that fails to open or to decode ends with an error frame when ``skip``."""
    try:
        yield from iter_video_frames(path, every=every, fps=fps, max_frames=max_frames)
    except (ZooError, OSError) as exc:
        if not skip:
            raise
        yield _skipped(path, exc)


def _without_dataset_hint(exc: BaseException) -> str:
    """An image reader's message without its advice for datasets (``open the dataset with on_error='skip'``)."""
    return re.sub(r",? or open the dataset with on_error='skip'( to skip it)?", "", str(exc))


def _skipped(source: str, exc: BaseException) -> Frame:
    message = _without_dataset_hint(exc)
    warnings.warn(f"skipped {source}: {message}", InputSkippedWarning, stacklevel=3)
    return Frame(source, None, error=message)


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
