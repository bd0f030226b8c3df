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

from zoo.errors import UntrainedModelWarning
from zoo.factory import DEFAULT_MODEL, create_for_inference, has_trained_weights
from zoo.inference.batching import Prediction, classify_frames
from zoo.inference.inputs import iter_frames
from zoo.inference.video import Frame
from zoo.inference.writers import VisualisationWriter

__all__ = ["iter_frames", "iter_predictions", "predict", "resolve_model"]


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
    return classify_frames(frames, resolve_model(model), detector, device, min_score, batch_size, missing_face,
                           track_iou, track_max_missed, keep_inputs)


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
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Emotion probabilities for every face found in each image (or sampled video frame).

    ``images``: one input or a list of paths (files, folders, globs, videos), PIL images, numpy arrays
    (``channels`` "RGB" or "BGR") and tensors; see :mod:`zoo.inference.predict`. ``model`` is an
    :class:`zoo.models.model.EmotionModel`, a preset (its published weights), ``local-dir:DIR`` or ``hf-hub:REPO``;
    None is the bundled default model (:data:`zoo.factory.DEFAULT_MODEL`). A model without trained weights
    gives an :class:`zoo.factory.UntrainedModelWarning`. ``detector``: a registered
    name (``"auto"``: MTCNN when its weights are present, else Haar) or a callable. ``boxes`` (one list of
    ``(x1, y1, x2, y2)`` per input, or ``{path: boxes}``) gives known face boxes and skips detection.
    ``save_vis``: a folder for one PNG per face (image, box, context attention) and ``<name>_vis.mp4`` per video;
    one that is not empty is refused unless ``overwrite=True`` (files of the same name are then replaced).

    Returns one entry per image / frame: ``{"image", ["frame", "timestamp",] "faces": [{"face", "box", "score",
    "label", "probability", "probs", ["fusion_weights", "track", "clipped", "vis"]}], ["note"]}``. For long
    videos iterate :func:`iter_predictions` instead, which never holds more than a batch.
    """
    if save_vis is not None:
        from zoo.outputs import check_folder_output

        check_folder_output(save_vis, force=overwrite, option="save_vis")
    net = resolve_model(model)
    frames = iter_frames(images, channels=channels, every=every, fps=fps, boxes=boxes)
    vis = VisualisationWriter(Path(save_vis), net.config.data) if save_vis is not None else None
    results = []
    try:
        for pred in classify_frames(frames, net, detector, device, min_score, batch_size, missing_face, 0.3, None,
                                    vis is not None):
            if vis is not None:
                vis.write(pred)
            results.append(pred.entry)
    finally:
        if vis is not None:
            vis.close()
    return results
