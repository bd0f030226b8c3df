"""``zoo-cli predict`` as one call: :func:`predict_and_write` checks the options together, loads the model,
streams the predictions of files, folders, globs or the webcam into the writers asked for and closes them, also
when Ctrl-C stops it."""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.factory import DEFAULT_MODEL, create_for_inference
from zoo.inference.inputs import expand_inputs, iter_frames, read_boxes_csv
from zoo.inference.predict import iter_predictions
from zoo.inference.video import check_camera, check_max_frames, check_sampling, is_video, iter_video_frames
from zoo.inference.writers import CsvWriter, JsonStreamWriter, PredictionTable, VisualisationWriter
from zoo.outputs import check_folder_output, check_output, is_inside

logger = logging.getLogger(__name__)


@dataclass
class PredictSummary:
    """What :func:`predict_and_write` did: frames and faces classified, CSV rows written (None without a
    CSV), and whether Ctrl-C stopped it."""

    frames: int = 0
    faces: int = 0
    csv_rows: int | None = None
    stopped: bool = False


def _print_to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def predict_and_write(
    inputs: Sequence[str | os.PathLike[str]] | None = None,
    *,
    model: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    allow_untrained: bool = False,
    detector: str | Callable[..., Any] = "auto",
    min_score: float = 0.0,
    device: str = "auto",
    batch_size: int = 32,
    boxes: str | os.PathLike[str] | None = None,
    missing_face: str = "skip",
    every: int | None = None,
    fps: float | None = None,
    camera: int | None = None,
    max_frames: int | None = None,
    save_vis: str | os.PathLike[str] | None = None,
    csv_out: str | os.PathLike[str] | None = None,
    as_json: bool = False,
    force: bool = False,
    echo: Callable[[str], None] = print,
    echo_err: Callable[[str], None] = _print_to_stderr,
) -> PredictSummary:
    """Predict on ``inputs`` (images, videos, folders, globs; or the images a ``boxes`` CSV lists) or webcam
    ``camera``, with ``model`` (None: :data:`zoo.factory.DEFAULT_MODEL`), and write each frame as it comes:
    the table (or, ``as_json``, a JSON array) through ``echo``, one CSV row per face to ``csv_out``, and
    ``save_vis`` (a folder, or an ``.mp4`` / ``.avi`` for one video or the webcam). Options that contradict
    each other are a :class:`zoo.errors.ZooError` before the model loads. Outputs follow :mod:`zoo.outputs`:
    none may be an input, an existing ``csv_out`` or video file (or a non-empty ``save_vis`` folder) is refused
    unless ``force``, and files are written under a temporary name, renamed into place at the end (also after
    Ctrl-C, which ends the run with ``"stopped"`` through ``echo_err``; an error discards them)."""
    check_sampling(every, fps)
    check_max_frames(max_frames)
    if isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not math.isfinite(min_score):
        raise ZooError(f"min_score (--min-score) must be a finite detector score (0 keeps every face), got "
                       f"{min_score!r}.")
    if camera is not None:
        check_camera(camera)
    known = read_boxes_csv(boxes) if boxes is not None else None
    if camera is not None and (inputs or known is not None):
        raise ZooError("--camera reads the webcam; give no INPUTS and no --boxes with it.")
    if not inputs and camera is None:
        if known is None:
            raise ZooError("Nothing to predict: give images, videos, folders or globs, --boxes FILE, or --camera N.")
        inputs = list(known)
    video_file = _video_file(save_vis, inputs, camera)
    files = _input_files(inputs, save_vis if video_file is None else None)
    sources = [*(f for f in files or () if isinstance(f, (str, os.PathLike))),
               *(p for p in (boxes, checkpoint) if p is not None), *_model_files(model)]
    if csv_out is not None:
        csv_out = check_output(csv_out, inputs=sources, force=force, option="--csv")
    if video_file is not None:
        video_file = check_output(video_file, inputs=sources, force=force, option="--save-vis")
    elif save_vis is not None:
        check_folder_output(save_vis, inputs=sources, force=force, option="--save-vis")
    if files is not None:
        inputs = files
    net = create_for_inference(model or DEFAULT_MODEL, checkpoint=checkpoint, allow_untrained=allow_untrained)
    logger.info("model: %s%s, %s", model or DEFAULT_MODEL, " (the default)" if model is None else "",
                "face + context" if net.config.uses_context else "face only")
    if camera is not None:
        frames = iter_video_frames(camera, every=every, fps=fps, max_frames=max_frames)
    else:
        frames = iter_frames(inputs, every=every, fps=fps, max_frames=max_frames, boxes=known)
    names = list(net.label_names)
    vis = VisualisationWriter(Path(save_vis), net.config.data, video_file=video_file) if save_vis is not None else None
    csv_writer = CsvWriter(csv_out, names) if csv_out is not None else None
    printer = (JsonStreamWriter(echo) if as_json
               else PredictionTable(names, [str(s) for s in inputs or [f"camera:{camera}"]], echo))
    summary = PredictSummary()
    failed = True
    try:
        for pred in iter_predictions(frames, net, detector=detector, device=device, min_score=min_score,
                                     batch_size=batch_size, missing_face=missing_face,
                                     keep_inputs=lambda frame: vis is not None and not frame.is_video):
            if vis is not None:
                vis.write(pred)
            summary.frames += 1
            summary.faces += len(pred.entry["faces"])
            if csv_writer is not None:
                csv_writer.write(pred.entry)
            printer.write(pred.entry)
        failed = False
    except KeyboardInterrupt:
        summary.stopped, failed = True, False
        echo_err("stopped")
    finally:
        if vis is not None:
            vis.close(commit=not failed)
        if csv_writer is not None:
            csv_writer.close(commit=not failed)
            summary.csv_rows = csv_writer.rows
        printer.close()
    return summary


def _input_files(inputs: Sequence[Any] | None, vis_folder: str | os.PathLike[str] | None) -> list[Any] | None:
    """The files that path inputs expand to (objects such as arrays stay as they are), less those inside the
    ``--save-vis`` folder (the figures of an earlier run are no input); None for the webcam."""
    if inputs is None:
        return None
    files: list[Any] = []
    for item in inputs:
        if not isinstance(item, (str, os.PathLike)):
            files.append(item)
            continue
        found = expand_inputs([item])
        kept = [f for f in found if vis_folder is None or not is_inside(f, vis_folder)]
        if not kept:
            raise ZooError(f"{item}: holds only files inside the --save-vis folder {vis_folder}, which are outputs.")
        if kept != [str(item)]:  # a folder or pattern: one unreadable or over-size image is skipped, and said so
            kept = [f for f in kept if is_video(f) or _readable_header(f)]
            if not kept:
                raise ZooError(f"{item}: none of its images can be read (each is named above).")
        files.extend(kept)
    return files


def _model_files(model: str | None) -> list[Path]:
    """A ``local-dir:`` model's folder and its files: inputs that no output may be."""
    if not str(model or "").startswith("local-dir:"):
        return []
    folder = Path(os.path.expanduser(str(model).removeprefix("local-dir:")))
    return [folder, *(folder.iterdir() if folder.is_dir() else ())]


def _readable_header(path: str) -> bool:
    """Whether an image's header shows it can be read; if not, the reason is logged and it is skipped."""
    from zoo.data.images import MAX_IMAGE_PIXELS, load_image
    from zoo.data.records import image_header_size
    from zoo.errors import ImageReadError

    size = image_header_size(path)
    if size is not None and size[0] * size[1] <= MAX_IMAGE_PIXELS:
        return True
    try:
        load_image(path)
    except ImageReadError as exc:
        logger.warning("skipped %s: %s", path, exc)
        return False
    return True


def _video_file(save_vis: str | os.PathLike[str] | None, inputs: Sequence[str | os.PathLike[str]] | None,
                camera: int | None) -> Path | None:
    """``save_vis`` when it names a video file (for one video or the webcam, refused otherwise), else None."""
    if save_vis is None or not is_video(save_vis):
        return None
    if not (camera is not None or (len(inputs or []) == 1 and is_video(inputs[0]))):
        raise ZooError(f"--save-vis {save_vis} is a video file: use it with one video or --camera; for images "
                       f"give a folder.")
    return Path(save_vis)
