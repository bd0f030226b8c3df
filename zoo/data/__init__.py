"""Datasets: readers behind the ``dataset`` registry kind, named by specs such as ``caer_s:/data/CAER-S``.

Contract every dataset returned by :func:`open_dataset` follows (the training engine relies on it):

* ``ds[i]`` is a dict: ``"face"`` (float 3×H×W, normalised per the model's ``DataConfig``) when the face
  stream is used, ``"context"`` (float 3×H×W) when the context stream is used, ``"label"`` (int), ``"index"``
  (int, = i), and optionally ``"clean_label"`` (int, when labels were noised);
* attributes ``label_names`` (tuple of str), ``num_classes`` (int), ``labels`` (LongTensor of every label);
* a dataset with valence-arousal annotations (AffectNet) holds them as ``va`` (float N×2, dataset order), the
  one name every reader uses and ``ldl_va``'s ``auxiliary="dataset"`` reads (:data:`VA_ATTRIBUTE`).
"""

from __future__ import annotations

from typing import Any

from zoo.errors import ZooError
from zoo.names import split_spec
from zoo.registry.plugins import get_component

#: the dataset attribute holding per-sample valence-arousal (N×2), for every reader that has it
VA_ATTRIBUTE = "va"


class DatasetSpecError(ZooError, ValueError):
    """A dataset spec that names no registered dataset or cannot be opened."""


def parse_dataset_spec(spec: str) -> tuple[str, str | None]:
    """``"caer_s:/data/CAER-S"`` -> ``("caer_s", "/data/CAER-S")``; ``"synth_caer"`` -> ``("synth_caer", None)``."""
    name, rest = split_spec(spec)
    if not name:
        raise DatasetSpecError(f"Dataset spec {spec!r} has no dataset name; write NAME:PATH, e.g. caer_s:/data/CAER-S.")
    return name, rest


def open_dataset(spec: str, split: str = "train", **options: Any):
    """Open the dataset named by ``spec`` (``"name:path"`` or ``"name"``) for ``split``.

    ``options`` go to the reader, typically ``data_config`` (a :class:`zoo.config.DataConfig`), ``train``
    (random augmentation on/off) and ``streams`` ("both", "face" or "context").
    """
    name, path = parse_dataset_spec(spec)
    try:
        entry, _ = get_component("dataset", name)
    except KeyError as exc:
        raise DatasetSpecError(f"Dataset spec {spec!r}: {exc}") from None
    return entry.factory(path, split=split, **options)


#: public helpers for inference and plugins, imported on first use (keeps ``import zoo.data`` light)
_EXPORTS = {
    "load_image": "zoo.data.images",
    "FaceBox": "zoo.data.boxes",
    "detect_faces": "zoo.data.detection",
    "get_face_detector": "zoo.data.detection",
    "preprocess": "zoo.data.transforms",
    "FaceDataset": "zoo.data.records",
    "Sample": "zoo.data.records",
    "DataError": "zoo.errors",
    "ImageReadError": "zoo.errors",
    "AnnotationError": "zoo.errors",
    "UnknownClassError": "zoo.errors",
    "MissingFaceError": "zoo.data.transforms",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zoo.data' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
