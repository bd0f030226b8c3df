"""``zoo-cli predict`` as one call: :func:`predict_and_write` checks the options together, loads the model,
streams the predictions of files, folders, globs or the webcam into the writers asked for and closes them, also
when Ctrl-C stops it."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.inference.batching import classify_frames
from zoo.inference.inputs import InputSkippedWarning, input_files, iter_frames, read_boxes_csv
from zoo.inference.loading import DEFAULT_MODEL, create_for_inference, model_files
from zoo.inference.options import PredictOptions, PredictOutputs
from zoo.inference.video import check_camera, check_max_frames, check_sampling, is_video, iter_video_frames
from zoo.inference.writers import CsvWriter, JsonStreamWriter, PredictionTable, VisualisationWriter
from zoo.runtime import progress_bar

logger = logging.getLogger(__name__)


@dataclass
class PredictSummary:
    """What :func:`predict_and_write` did: frames and faces classified, CSV rows written (None without a
    CSV), the inputs that failed (``on_error`` skip) and whether Ctrl-C stopped it."""

    frames: int = 0
    faces: int = 0
    csv_rows: int | None = None
    stopped: bool = False
    failed: list[str] = field(default_factory=list)


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
    on_error: str = "auto",
    tta: str = "none",
    vis_attention: bool = True,
    progress: bool | None = False,
    options: PredictOptions | None = None,
    outputs: PredictOutputs | None = None,
    echo: Callable[[str], None] = print,
    echo_err: Callable[[str], None] = _print_to_stderr,
) -> PredictSummary:
    """Predict on ``inputs`` (images, videos, folders, globs; or the images a ``boxes`` CSV lists) or webcam
    ``camera``, with ``model`` (None: :data:`zoo.inference.defaults.DEFAULT_MODEL`), and write each frame as it comes:
    the table (or, ``as_json``, a JSON array) through ``echo``, one CSV row per face to ``csv_out``, and
    ``save_vis`` (a folder, or an ``.mp4`` / ``.avi`` for one video or the webcam). ``options`` / ``outputs``
    replace the corresponding keyword arguments when given. Options that contradict each other are a
    :class:`zoo.errors.ZooError` before the model loads. An input that fails under ``on_error`` skip is
    reported, written with its error, and listed in the summary's ``failed``. Outputs follow :mod:`zoo.outputs`:
    none may be an input, an existing ``csv_out`` or video file (or a non-empty ``save_vis`` folder) is refused
    unless ``force``, and files are written under a temporary name, row by row, and renamed into place when the
    run ends, also after an error or Ctrl-C (which ends the run with ``"stopped"`` through ``echo_err``), so
    every row finished before is kept."""
    options = options or PredictOptions(detector=detector, device=device, min_score=min_score, batch_size=batch_size,
                                        missing_face=missing_face, on_error=on_error, tta=tta)
    outputs = outputs or PredictOutputs(save_vis=save_vis, vis_attention=vis_attention, csv=csv_out,
                                        as_json=as_json, progress=progress, overwrite=force)
    check_sampling(every, fps)
    check_max_frames(max_frames)
    if camera is not None:
        check_camera(camera)
    known = read_boxes_csv(boxes) if boxes is not None else None
    if camera is not None and (inputs or known is not None):
        raise ZooError("--camera reads the webcam; give no INPUTS and no --boxes with it.")
    if not inputs and camera is None:
        if known is None:
            raise ZooError("Nothing to predict: give images, videos, folders or globs, --boxes FILE, or --camera N.")
        inputs = list(known)
    video_file = _video_file(outputs.save_vis, inputs, camera)
    vis_folder = outputs.save_vis if video_file is None else None
    # zoo.outputs: no output is an input, nothing existing is replaced without --force; before the model loads
    outputs.check([*(input_files(inputs, vis_folder) if inputs else ()),
                   *(p for p in (boxes, checkpoint) if p is not None), *model_files(model)], video_file)
    # the one trained-weights check: create_for_inference refuses (or, allow_untrained, warns once)
    net = create_for_inference(model or DEFAULT_MODEL, checkpoint=checkpoint, allow_untrained=allow_untrained)
    logger.info("model: %s%s, %s", model or DEFAULT_MODEL, " (the default)" if model is None else "",
                "face + context" if net.config.uses_context else "face only")
    if camera is not None:
        frames = iter_video_frames(camera, every=every, fps=fps, max_frames=max_frames)
    else:
        frames = iter_frames(inputs, every=every, fps=fps, max_frames=max_frames, boxes=known,
                             on_error=options.on_error, outputs_folder=vis_folder)
    names = list(net.label_names)
    vis = (VisualisationWriter(Path(outputs.save_vis), net.config.data, video_file=video_file,
                               attention=outputs.vis_attention, bars=outputs.vis_bars)
           if outputs.save_vis is not None else None)
    csv_writer = CsvWriter(outputs.csv, names) if outputs.csv is not None else None
    printer = (JsonStreamWriter(echo) if outputs.as_json
               else PredictionTable(names, [str(s) for s in inputs or [f"camera:{camera}"]], echo))
    summary = PredictSummary()
    try:
        # a skipped input is one log line here (the table or JSON records it too), not a Python warning
        with progress_bar(outputs.progress, unit="frame", desc="predict") as bar, warnings.catch_warnings():
            warnings.simplefilter("ignore", InputSkippedWarning)
            for pred in classify_frames(frames, net, options):
                result = vis.write(pred) if vis is not None else pred.result
                summary.frames += 1
                summary.faces += len(result.faces)
                if result.error is not None:
                    logger.warning("skipped %s: %s", result.image, result.error)
                    summary.failed.append(result.image)
                if csv_writer is not None:
                    csv_writer.write(result)
                printer.write(result)
                bar.update(1)
    except KeyboardInterrupt:
        summary.stopped = True
        echo_err("stopped")
    finally:  # also after an error: the rows and frames finished so far are renamed into place, not lost
        if vis is not None:
            vis.close()
        if csv_writer is not None:
            csv_writer.close()
            summary.csv_rows = csv_writer.rows
        printer.close()
    return summary


def _video_file(save_vis: str | os.PathLike[str] | None, inputs: Sequence[str | os.PathLike[str]] | None,
                camera: int | None) -> Path | None:
    """``save_vis`` when it names a video file (for one video or the webcam, refused otherwise), else None."""
    if save_vis is None or not is_video(save_vis):
        return None
    if not (camera is not None or (len(inputs or []) == 1 and is_video(inputs[0]))):
        raise ZooError(f"--save-vis {save_vis} is a video file: use it with one video or --camera; for images "
                       f"give a folder.")
    return Path(save_vis)
