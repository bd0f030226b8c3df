"""``zoo.predict``: find the faces in images and videos, build each face's face and context inputs, classify them.

(The module is ``zoo.inference.predict``, not ``zoo.predict``, so that importing it never shadows the function.)

**Inputs.** File paths (images, videos), folders (searched recursively), glob patterns (``"photos/**/*.jpg"``),
``PIL`` images, numpy arrays and torch tensors; :mod:`zoo.inference.inputs` says which shapes, dtypes and
channel orders.

**Pipeline** (:mod:`zoo.inference.batching`). Frames stream through one at a time (:func:`iter_predictions`):
each is decoded, its faces are found (``zoo.data.detect_faces``; or taken from known ``boxes``), each face is
prepared exactly as the model's ``DataConfig`` and the evaluation pipeline prepare it (``zoo.data.preprocess``),
and the faces of consecutive images / frames are classified together in batches of ``batch_size``. A frame is
handed on as soon as its faces are classified, so memory stays flat on long videos. Video faces carry a
``track`` id (:class:`zoo.inference.tracking.IoUTracker`). Writers for the outputs are in
:mod:`zoo.inference.writers`; ``zoo-cli predict`` is :func:`zoo.inference.run.predict_and_write`.

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

import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from zoo.errors import UntrainedModelWarning, ZooError
from zoo.inference.batching import Prediction, classify_frames
from zoo.inference.inputs import input_files, iter_frames
from zoo.inference.loading import DEFAULT_MODEL, create_for_inference, has_trained_weights, model_files
from zoo.inference.options import PredictOptions, PredictOutputs
from zoo.inference.results import FrameResult, Predictions
from zoo.inference.video import Frame
from zoo.inference.writers import CsvWriter, VisualisationWriter
from zoo.runtime import progress_bar

__all__ = ["PredictOptions", "PredictOutputs", "Predictions", "iter_frames", "iter_predictions", "predict",
           "resolve_model"]


def resolve_model(model: Any, checkpoint: str | os.PathLike[str] | None = None, allow_untrained: bool = True) -> Any:
    """The model to predict with, and the predict path's one trained-weights check: None -> the bundled default
    (:data:`zoo.inference.defaults.DEFAULT_MODEL`); a name -> :func:`zoo.inference.loading.create_for_inference` (which refuses an
    untrained preset unless ``allow_untrained``, then warns); a model object as it is, with an
    :class:`zoo.errors.UntrainedModelWarning` when no weights were loaded into it."""
    if model is None or isinstance(model, str):
        return create_for_inference(model or DEFAULT_MODEL, checkpoint=checkpoint, allow_untrained=allow_untrained)
    if not has_trained_weights(model):
        warnings.warn("zoo.predict: this model has no trained weights (none were loaded into it); its "
                      "probabilities are random.", UntrainedModelWarning, stacklevel=3)
    return model


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
    options: PredictOptions | None = None,
) -> Iterator[Prediction]:
    """Classify the faces of ``frames`` (from :func:`iter_frames`), batching faces across frames; yields one
    :class:`Prediction` per frame (its :class:`FrameResult` in ``.result``), in order, as soon as its faces are
    done. ``model`` as :func:`predict`; ``options`` replaces the keyword arguments when given."""
    options = options or PredictOptions(detector=detector, device=device, min_score=min_score, batch_size=batch_size,
                                        missing_face=missing_face, track_iou=track_iou,
                                        track_max_missed=track_max_missed)
    return classify_frames(frames, resolve_model(model), options)


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
    on_error: str = "auto",
    tta: str = "none",
    progress: bool = False,
    overwrite: bool = False,
    options: PredictOptions | None = None,
    outputs: PredictOutputs | None = None,
) -> Predictions:
    """Emotion probabilities for every face found in each image (or sampled video frame).

    ``images``: one input or a list of paths (files, folders, globs, videos), PIL images, numpy arrays
    (``channels`` "RGB" or "BGR") and tensors; see :mod:`zoo.inference.predict`. ``model`` is an
    :class:`zoo.models.model.EmotionModel`, a preset (its published weights), ``local-dir:DIR`` or ``hf-hub:REPO``;
    None is the bundled default model (:data:`zoo.inference.defaults.DEFAULT_MODEL`). A model without trained weights
    gives an :class:`zoo.errors.UntrainedModelWarning`. ``detector``: a registered
    name (``"auto"``: MTCNN when its weights are present, else Haar) or a callable. ``boxes`` (one list of
    ``(x1, y1, x2, y2)`` per input, or ``{path: boxes}``) gives known face boxes and skips detection.
    ``save_vis``: a folder for one annotated PNG per image and ``<name>_vis.mp4`` per video; one that is not
    empty is refused unless ``overwrite=True`` (files of the same name are then replaced), and one inside an
    input folder is left out of the inputs. Files are written under a temporary name and renamed into place,
    also when an error or Ctrl-C ends the run, so finished work is kept (:mod:`zoo.outputs`).
    ``on_error``: ``"skip"`` records an unreadable file as an entry with an ``error`` and goes on, ``"raise"``
    stops; ``"auto"`` skips files found in folders / globs and videos. ``tta="flip"`` averages each face with its
    mirror image. ``options`` / ``outputs`` (:class:`PredictOptions`, :class:`PredictOutputs`) replace the
    corresponding keyword arguments when given.

    Returns a :class:`zoo.inference.results.Predictions`: a list with one dict per image / frame (the schema
    of docs/prediction.md), ``.frames`` (frozen :class:`FrameResult` objects) and ``.to_pandas()``. For long
    videos iterate :func:`iter_predictions` instead, which never holds more than a batch.
    """
    options = options or PredictOptions(detector=detector, device=device, min_score=min_score, batch_size=batch_size,
                                        missing_face=missing_face, on_error=on_error, tta=tta)
    outputs = outputs or PredictOutputs(save_vis=save_vis, progress=progress, overwrite=overwrite)
    if outputs.as_json:
        raise ZooError("PredictOutputs(as_json=True) prints JSON in zoo-cli predict; zoo.predict returns the results "
                       "(results.frames[i].to_json(), or json.dumps(results)).")
    # zoo.outputs: no output is an input, nothing existing is replaced without overwrite; before the model loads
    outputs.check([*input_files(images, outputs.save_vis), *model_files(model)], cli=False)
    net = resolve_model(model)
    frames = iter_frames(images, channels=channels, every=every, fps=fps, boxes=boxes, on_error=options.on_error,
                         outputs_folder=outputs.save_vis)
    vis = (VisualisationWriter(Path(outputs.save_vis), net.config.data, attention=outputs.vis_attention,
                               bars=outputs.vis_bars) if outputs.save_vis is not None else None)
    csv_writer = CsvWriter(outputs.csv, list(net.label_names)) if outputs.csv is not None else None
    results: list[FrameResult] = []
    try:
        with progress_bar(outputs.progress, unit="image") as bar:
            for pred in classify_frames(frames, net, options):
                result = vis.write(pred) if vis is not None else pred.result
                if csv_writer is not None:
                    csv_writer.write(result)
                results.append(result)
                bar.update(1)
    finally:
        if vis is not None:
            vis.close()
        if csv_writer is not None:
            csv_writer.close()
    return Predictions(results)
