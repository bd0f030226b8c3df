"""The base every dataset reader is built on, the built-in ones (:mod:`zoo.data.readers`) and plugins' alike.

A reader is ``reader(path, split="train", **options) -> FaceDataset``, registered with the ``register_datasets``
hook and opened by a spec ``"name:path"`` (:func:`zoo.data.open_dataset`). Built on this kit, a plugin's reader
takes the same options, raises the same errors and returns the same dataset as a built-in one:

* :class:`ReaderCall` sorts the options into those of :class:`~zoo.data.records.FaceDataset`, which every
  reader accepts (:data:`DATASET_OPTIONS`), and the reader's own; it refuses unknown names, reads
  ``on_error`` / ``verify`` (:data:`CHECK_OPTIONS`), counts skips in a :class:`~zoo.data.records.DatasetReport`,
  carves a seeded validation split out of train (:data:`SPLIT_OPTIONS`) and finishes the dataset;
* :func:`dataset_root` checks the spec's path, :func:`not_utf8` words an encoding error;
* :func:`detect_boxes` / :func:`detected_samples` find faces once and cache them, :func:`attach_votes` adds
  reference label distributions from a vote-count CSV;
* :func:`class_folder_dataset` is a whole reader for ``<root>/<split>/<Class>/*`` images in a fixed class order.

A whole reader::

    def toy(path, split="train", **options):
        return class_folder_dataset("toy", path, split, options, ("happy", "sad"), example="/data/toy")
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from zoo.data.boxes import FaceBox
from zoo.data.detection import detect_faces
from zoo.data.images import load_image
from zoo.data.records import (
    ON_ERROR,
    WHOLE,
    ClassMap,
    DatasetReport,
    FaceDataset,
    Sample,
    check_choice,
    fail_or_skip,
    find_split_dir,
    relpath,
    scan_class_folders,
    seeded_split,
)
from zoo.errors import AnnotationError, DataError

#: the kit, with the record types and scanners it works with (importable from here in one line)
__all__ = [
    "ClassMap",
    "DatasetReport",
    "FaceDataset",
    "ReaderCall",
    "Sample",
    "CHECK_OPTIONS",
    "CLASS_FOLDER_OPTIONS",
    "DATASET_OPTIONS",
    "SPLIT_ALIASES",
    "SPLIT_OPTIONS",
    "attach_votes",
    "class_folder_dataset",
    "dataset_root",
    "detect_boxes",
    "detected_samples",
    "find_split_dir",
    "not_utf8",
    "scan_class_folders",
    "whole_image_samples",
]

#: options every reader accepts and hands to :class:`~zoo.data.records.FaceDataset` (``train``: augmentation
#: on/off, default on for the train split)
DATASET_OPTIONS = ("data_config", "streams", "missing_face", "face_augment", "context_augment", "cache", "train")
#: options every reader accepts and :class:`ReaderCall` handles: ``on_error`` ("raise" or "skip") and
#: ``verify`` (decode every image when the dataset is opened)
CHECK_OPTIONS = ("on_error", "verify")
#: the options of a reader that can carve its validation split out of train (:meth:`ReaderCall.carve`)
SPLIT_OPTIONS = ("val_fraction", "split_seed")
#: other folder names accepted for a split (case-insensitive), as :func:`~zoo.data.records.find_split_dir` takes them
SPLIT_ALIASES = {"val": ("validation", "valid", "publictest"), "test": ("privatetest",), "train": ("training",)}

T = TypeVar("T")


def dataset_root(path: str | None, name: str, example: str) -> Path:
    """The existing file or folder a spec ``name:path`` points at; a missing or absent path is an error that
    shows how to write the spec (``example`` is a typical path)."""
    if not path:
        raise DataError(f"Dataset {name!r} needs a path: write {name}:{example}.")
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{name}: {str(root)!r} does not exist; check the path in the spec {name}:{path}.")
    return root


def not_utf8(path: Path, exc: UnicodeDecodeError) -> AnnotationError:
    """The error for an annotation file that is not UTF-8 text (raise it ``from None``)."""
    return AnnotationError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8.")


class ReaderCall:
    """One call of a reader: ``name`` (shown in messages and as ``dataset.name = "name[split]"``), ``split`` and
    the caller's ``options``, of which ``own`` are the reader's own option names.

    ``dataset_options`` go to the dataset, ``own`` holds the own options that were given, ``on_error`` and
    ``report`` serve :meth:`fail_or_skip`. An option name that neither the reader nor every reader knows is a
    :class:`~zoo.errors.DataError` listing the accepted ones.
    """

    def __init__(self, name: str, split: str, options: dict[str, Any], own: Sequence[str] = ()) -> None:
        accepted = {*DATASET_OPTIONS, *CHECK_OPTIONS, *own}
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise DataError(f"{name}: unknown option(s) {', '.join(unknown)}; this reader accepts "
                            f"{', '.join(sorted(accepted))}.")
        self.name = name
        self.split = split
        self.dataset_options: dict[str, Any] = {k: options[k] for k in DATASET_OPTIONS if k in options}
        self.dataset_options.setdefault("train", split == "train")
        self.own: dict[str, Any] = {k: options[k] for k in own if k in options}
        self.on_error = check_choice("on_error", options.get("on_error", "raise"), ON_ERROR)
        self.verify = bool(options.get("verify", False))
        self.report = DatasetReport()

    def fail_or_skip(self, error: DataError, where: str) -> None:
        """Raise ``error`` (``on_error="raise"``, the default) or count it as a skip of ``where`` in the report."""
        fail_or_skip(self.report, self.on_error, error, where)

    @property
    def val_fraction(self) -> float | None:
        """The ``val_fraction`` option (None when not given)."""
        value = self.own.get("val_fraction")
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise DataError(f"{self.name}: val_fraction must be a number between 0 and 1, got {value!r}.") from None

    @property
    def split_seed(self) -> int:
        value = self.own.get("split_seed", 0)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DataError(f"{self.name}: split_seed must be an integer >= 0, got {value!r}.")
        return value

    @property
    def source_split(self) -> str:
        """The split to read from disk: ``"train"`` when val is carved out of it (``val_fraction`` given)."""
        return "train" if self.val_fraction is not None and self.split == "val" else self.split

    def carve(self, items: list[T], fraction: float | None = None, group: Callable[[T], Hashable] | None = None,
              ) -> list[T]:
        """The items of this split when val is carved out of the source split: a seeded random
        ``fraction`` (default: the ``val_fraction`` option; None keeps every item) is val, the rest is
        every other split. With ``group`` the items of one group (say, one photo's faces) stay together."""
        fraction = self.val_fraction if fraction is None else fraction
        if fraction is None:
            return items
        if group is None:
            kept, held = seeded_split(len(items), fraction, self.split_seed)
            return [items[i] for i in (held if self.split == "val" else kept)]
        groups = sorted({group(item) for item in items})
        kept, held = seeded_split(len(groups), fraction, self.split_seed)
        chosen = {groups[i] for i in (held if self.split == "val" else kept)}
        return [item for item in items if group(item) in chosen]

    def finish(self, samples: list[Sample], label_names: Sequence[str], **dataset_args: Any) -> FaceDataset:
        """The :class:`~zoo.data.records.FaceDataset` of ``samples``; none left is an error showing the report,
        ``verify=True`` decodes every image now. ``dataset_args`` go to the dataset too (``image_loader``)."""
        dataset = FaceDataset(samples, label_names, name=f"{self.name}[{self.split}]", report=self.report,
                              **self.dataset_options, **dataset_args)
        if not len(dataset):
            raise DataError(f"{self.name}: no samples left (report: {self.report}).")
        if self.verify or self.on_error == "skip":  # skip: at least what a file's header shows is skipped now
            dataset.verify_images(self.on_error, headers_only=not self.verify)
            if not len(dataset):
                raise DataError(f"{self.name}: no samples left (report: {self.report}).")
        return dataset


def whole_image_samples(items: Sequence[tuple[Path, int]]) -> list[Sample]:
    """``(image path, label)`` pairs (as :func:`~zoo.data.records.scan_class_folders` returns them) -> samples
    whose face is the whole image."""
    return [Sample(label, str(path), box=WHOLE) for path, label in items]


# --------------------------------------------------------------------------------------------- boxes


def _box_cache_file(root: Path, split: str, detector: str, detector_args: dict) -> Path:
    base = Path(os.environ.get("ZOO_CACHE_DIR", Path.home() / ".cache" / "emotion-zoo")) / "boxes"
    key = json.dumps([str(root.resolve()), split, detector, sorted(detector_args.items())], default=str)
    return base / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


def detect_boxes(
    paths: Sequence[Path],
    root: Path,
    split: str,
    detector: str,
    detector_args: dict | None = None,
    box_cache: str | os.PathLike[str] | None = None,
    all_faces: bool = False,
) -> dict[str, list[FaceBox]]:
    """Faces of every image (best first), computed once and cached in a JSON file keyed by relative path."""

    detector_args = dict(detector_args or {})
    cache_file = Path(box_cache) if box_cache else _box_cache_file(root, split, detector, detector_args)
    cached: dict[str, list[list[float]]] = {}
    if cache_file.is_file():
        cached = json.loads(cache_file.read_text(encoding="utf-8"))
    changed = False
    result: dict[str, list[FaceBox]] = {}
    for path in paths:
        key = relpath(path, root)
        if key not in cached:
            boxes = detect_faces(load_image(path), detector, **detector_args)
            cached[key] = [[b.x1, b.y1, b.x2, b.y2, b.score] for b in boxes]
            changed = True
        faces = [FaceBox(*row) for row in cached[key]]
        result[key] = faces if all_faces else faces[:1]
    if changed:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(cached), encoding="utf-8")
        tmp.replace(cache_file)
    return result


def detected_samples(
    items: list[tuple[Path, int]], root: Path, split: str, det: dict, all_faces: bool
) -> list[Sample]:
    """One sample per face :func:`detect_boxes` finds in each ``(image path, label)`` (only the best with
    ``all_faces=False``), or one with no face box; ``det`` holds the reader's ``detector``, ``detector_args``
    and ``box_cache`` options."""
    found = detect_boxes(
        [p for p, _ in items], root, split, det["detector"], det.get("detector_args"), det.get("box_cache"), all_faces
    )
    samples = []
    for path, label in items:
        faces = found[relpath(path, root)]
        if not faces:
            samples.append(Sample(label, str(path), box=None))
        samples.extend(Sample(label, str(path), box=face) for face in faces)
    return samples


# --------------------------------------------------------------------------------------------- votes


def attach_votes(samples: list[Sample], votes_csv: Path, root: Path, label_names: Sequence[str], aliases: dict,
                 report: DatasetReport) -> None:
    """Reference label distributions from a vote-count CSV (``votes=FILE``; e.g. FER+'s 10 annotators per
    FER2013 image, Barsoum et al., ICMI 2016): a ``path`` column relative to the dataset root, then one count
    column per answer. Columns naming a class (through the reader's aliases, any case) are kept in the
    dataset's class order; the rest (FER+'s contempt, unknown, NF) are dropped. Samples without a row, or
    with no vote for any class, get a NaN row, which the distribution metrics skip (counted as
    ``no_votes`` in the report).
    """
    if not votes_csv.is_file():
        raise DataError(f"votes: {str(votes_csv)!r} does not exist; pass votes=FILE, a CSV with a path column and "
                        f"one vote-count column per class.")
    folded = {n.lower(): i for i, n in enumerate(label_names)}
    folded.update({a.lower(): label_names.index(t) for a, t in aliases.items() if t in label_names})
    with votes_csv.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        columns = {f: folded[f.strip().lower()] for f in fields if f.strip().lower() in folded}
        missing = [n for i, n in enumerate(label_names) if i not in columns.values()]
        if "path" not in fields or missing:
            raise AnnotationError(f"{votes_csv}: needs a 'path' column and a vote column for every class; "
                                  f"{'no path column' if 'path' not in fields else 'no column for ' + ', '.join(missing)} "
                                  f"(columns: {', '.join(fields)}).")
        table: dict[str, list[float]] = {}
        for line, row in enumerate(reader, start=2):
            counts = [0.0] * len(label_names)
            try:
                for field, index in columns.items():
                    counts[index] += float(row[field])
            except (TypeError, ValueError):
                raise AnnotationError(f"{votes_csv}, line {line}: vote counts must be numbers, got {row}.") from None
            table[row["path"].strip().replace("\\", "/")] = counts
    nan = [float("nan")] * len(label_names)
    for sample in samples:
        counts = table.get(relpath(Path(sample.path), root)) if sample.path else None
        total = sum(counts) if counts else 0.0
        if total > 0:
            sample.distribution = [c / total for c in counts]
        else:
            sample.distribution = nan
            report.counts["no_votes"] += 1


# --------------------------------------------------------------------------------------------- class folders


#: the options of the class-folder readers (:func:`class_folder_dataset`)
CLASS_FOLDER_OPTIONS = (*SPLIT_OPTIONS, "detector", "detector_args", "box_cache", "votes")


def class_folder_dataset(
    name: str, path: str | None, split: str, options: dict[str, Any], label_names: Sequence[str],
    aliases: dict[str, str] | None = None, example: str = "/data/DATASET",
) -> FaceDataset:
    """A whole reader for ``<root>/<split>/<Class>/*`` images (split folders named as in :data:`SPLIT_ALIASES`,
    class folders matched to ``label_names`` ignoring case, plus ``aliases``: folder name -> class name).

    The whole image is the face, unless ``detector=`` is given (the best face found, cached: :func:`detect_boxes`).
    ``val_fraction`` / ``split_seed`` carve val out of ``<root>/train``; ``votes=FILE`` attaches reference label
    distributions (:func:`attach_votes`); plus the options of every reader.
    """
    root = dataset_root(path, name, example)
    aliases = aliases or {}
    call = ReaderCall(name, split, options, CLASS_FOLDER_OPTIONS)
    split_dir = find_split_dir(root, call.source_split, SPLIT_ALIASES)
    items = scan_class_folders(split_dir, ClassMap(label_names, aliases), call.on_error, call.report)
    if "detector" in call.own:
        samples = detected_samples(items, split_dir, split_dir.name, call.own, all_faces=False)
    else:
        samples = whole_image_samples(items)
    if "votes" in call.own:
        attach_votes(samples, Path(call.own["votes"]), root, label_names, aliases, call.report)
    return call.finish(call.carve(samples), label_names)

