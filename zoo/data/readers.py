"""Built-in dataset readers: CAER-S / NCAER-S, AffectNet, RAF-DB, SFEW, FER2013, FER+, generic folder / CSV.

Each reader parses its dataset's published on-disk format into :class:`Sample` records and
returns a :class:`FaceDataset`. Class orders are explicit per family (:mod:`zoo.data.classes`); folder names
and codes are mapped onto them, and anything unknown is an error naming it (or a counted skip with
``on_error='skip'``). Nothing is downloaded: every reader reads the user's disk.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data import classes
from zoo.data.boxes import FaceBox, make_box, read_box_file, read_list_file
from zoo.data.detection import detect_faces
from zoo.data.images import load_image
from zoo.data.records import (
    ON_ERROR,
    WHOLE,
    ClassMap,
    DatasetReport,
    FaceDataset,
    Sample,
    SplitNotFoundError,
    check_choice,
    fail_or_skip,
    find_split_dir,
    image_header_size,
    relpath,
    scan_class_folders,
    seeded_split,
)
from zoo.errors import AnnotationError, DataError, ImageReadError, UnknownClassError

#: options every reader passes to FaceDataset
DATASET_OPTIONS = ("data_config", "streams", "missing_face", "face_augment", "context_augment", "cache")
SPLIT_ALIASES = {"val": ("validation", "valid", "publictest"), "test": ("privatetest",), "train": ("training",)}


def _root(path: str | None, name: str, example: str) -> Path:
    if not path:
        raise DataError(f"Dataset {name!r} needs a path: write {name}:{example}.")
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{name}: {str(root)!r} does not exist; check the path in the spec {name}:{path}.")
    return root


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> AnnotationError:
    return AnnotationError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8.")


def _split_options(name: str, split: str, options: dict[str, Any], own: Sequence[str]) -> tuple[dict, dict]:
    """Separate FaceDataset options from reader options; unknown option names are an error."""
    unknown = sorted(set(options) - set(DATASET_OPTIONS) - set(own) - {"train", "on_error", "verify"})
    if unknown:
        raise DataError(
            f"{name}: unknown option(s) {', '.join(unknown)}; this reader accepts "
            f"{', '.join(sorted({*DATASET_OPTIONS, *own, 'train', 'on_error', 'verify'}))}."
        )
    common = {k: options[k] for k in DATASET_OPTIONS if k in options}
    common["train"] = options.get("train", split == "train")
    return common, {k: options[k] for k in own if k in options}


def _finish(
    samples: list[Sample], label_names: Sequence[str], name: str, report: DatasetReport, common: dict, options: dict
) -> FaceDataset:
    dataset = FaceDataset(samples, label_names, name=name, report=report, **common)
    if not len(dataset):
        raise DataError(f"{name}: no samples left (report: {report}).")
    if options.get("verify", False):
        dataset.verify_images(options.get("on_error", "raise"))
    return dataset


def _carve(items: list, split: str, val_fraction: float | None, seed: int) -> list:
    """The items of ``split``, carving val out of train when ``val_fraction`` is given."""
    if val_fraction is None:
        return items
    kept, held = seeded_split(len(items), val_fraction, seed)
    return [items[i] for i in (held if split == "val" else kept)]


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


def _samples_with_detection(
    items: list[tuple[Path, int]], root: Path, split: str, det: dict, all_faces: bool
) -> list[Sample]:
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


# --------------------------------------------------------------------------------------------- CAER-S


def caer_s(path: str | None, split: str = "train", **options: Any) -> FaceDataset:
    """CAER-S (``{train,test}/<Class>/*.png``) and NCAER-S (``images/<split>/<Class>/*.jpg`` + ``crop/``).

    Face boxes, first found of: ``boxes=`` (a list file ``relpath,label,x1,y1,x2,y2``, a folder of per-image
    ``<Class>/<name>.txt`` files, or ``"detect"``), ``<root>/crop/<split>/`` (GLAMOR-Net layout), a list file
    ``<root>/<split>.txt``. ``boxes="detect"`` runs ``detector`` (default ``"haar"``) once, keeps the best
    face per image as the official code does, and caches the boxes (``box_cache=`` file, else
    ``$ZOO_CACHE_DIR`` or ``~/.cache/emotion-zoo``). ``val_fraction`` + ``split_seed`` carve a seeded val
    split out of the train folder (``split="val"``). ``Anger`` and ``Angry`` folders are both accepted.
    """
    root = _root(path, "caer_s", "/data/CAER-S")
    name = "ncaer_s" if (root / "images").is_dir() else "caer_s"
    own = ("boxes", "detector", "detector_args", "box_cache", "val_fraction", "split_seed")
    common, opts = _split_options(name, split, options, own)
    on_error = check_choice("on_error", options.get("on_error", "raise"), ON_ERROR)
    report = DatasetReport()
    images_root = root / "images" if (root / "images").is_dir() else root
    crop_root = root / "crop"
    val_fraction = opts.get("val_fraction")
    folder_split = "train" if (val_fraction is not None and split == "val") else split
    split_dir = find_split_dir(images_root, folder_split, SPLIT_ALIASES)
    class_map = ClassMap(classes.CAER, classes.CAER_ALIASES)
    items = scan_class_folders(split_dir, class_map, on_error, report)

    boxes = opts.get("boxes")
    list_file = None
    crop_dir = None
    if boxes == "detect":
        pass
    elif boxes is not None:
        boxes_path = Path(boxes).expanduser()
        if boxes_path.is_file():
            list_file = boxes_path
        elif boxes_path.is_dir():
            crop_dir = boxes_path / split_dir.name if (boxes_path / split_dir.name).is_dir() else boxes_path
        else:
            raise DataError(f"{name}: boxes={boxes!r} is neither a list file, a folder, nor 'detect'.")
    elif (crop_root / split_dir.name).is_dir():
        crop_dir = crop_root / split_dir.name
    elif (root / f"{split_dir.name}.txt").is_file():
        list_file = root / f"{split_dir.name}.txt"
    else:
        raise DataError(
            f"{name}: no face boxes found for split {folder_split!r}: expected {crop_root / split_dir.name}/ "
            f"(per-image x1,y1,x2,y2 files) or {root / (split_dir.name + '.txt')} (relpath,label,x1,y1,x2,y2). "
            f"Pass boxes=PATH to point at them, or boxes='detect' to detect faces once (cached)."
        )

    samples: list[Sample] = []
    if list_file is not None:
        samples = _caer_from_list(list_file, split_dir, class_map, on_error, report)
    elif crop_dir is not None:
        for image_path, label in items:
            rel = Path(relpath(image_path, split_dir))
            box_file = crop_dir / rel.with_suffix(".txt")
            try:
                if not box_file.is_file():
                    raise AnnotationError(
                        f"{image_path}: no face box file {box_file}; write one (0,0,0,0 = no face) or remove the image."
                    )
                samples.append(Sample(label, str(image_path), box=read_box_file(box_file)))
            except AnnotationError as exc:
                fail_or_skip(report, on_error, exc, str(image_path))
    else:
        det = {"detector": opts.get("detector", "haar"), "detector_args": opts.get("detector_args"),
               "box_cache": opts.get("box_cache")}
        samples = _samples_with_detection(items, split_dir, split_dir.name, det, all_faces=False)
    samples = _carve(samples, split, val_fraction, int(opts.get("split_seed", 0)))
    return _finish(samples, classes.CAER, f"{name}[{split}]", report, common, options)


def _caer_from_list(
    list_file: Path, split_dir: Path, class_map: ClassMap, on_error: str, report: DatasetReport
) -> list[Sample]:
    """Samples of a CAER-S list file restricted to ``split_dir``; its label must match the folder's class."""
    samples = []
    split_names = {"train", "test", "val", "validation"}
    for entry, error, where in read_list_file(list_file):
        if error is not None:
            fail_or_skip(report, on_error, error, where)
            continue
        parts = entry.relpath.split("/")
        if parts[0].lower() in split_names:
            if parts[0] != split_dir.name:
                continue  # a line of another split in a combined list file
            parts = parts[1:]
        try:
            if len(parts) < 2:
                raise AnnotationError(f"{entry.where}: path {entry.relpath!r} has no <Class>/ folder.")
            label = class_map.get(parts[0])
            if label is None:
                raise UnknownClassError(
                    f"{entry.where}: unknown class folder {parts[0]!r}; classes are {', '.join(class_map.label_names)}."
                )
            if entry.label != label:
                raise AnnotationError(
                    f"{entry.where}: label {entry.label} does not match the folder {parts[0]!r} (class {label}, "
                    f"{class_map.label_names[label]}); the list file and the folders disagree."
                )
            image_path = split_dir.joinpath(*parts)
            if not image_path.is_file():
                raise ImageReadError(f"{entry.where}: image {image_path} listed but not found.")
        except (AnnotationError, UnknownClassError, ImageReadError) as exc:
            fail_or_skip(report, on_error, exc, entry.where)
            continue
        samples.append(Sample(label, str(image_path), box=entry.box))
    return samples


# --------------------------------------------------------------------------------------------- AffectNet


def affectnet(path: str | None, split: str = "train", **options: Any) -> FaceDataset:
    """AffectNet ``training.csv`` / ``validation.csv`` (Mollahosseini et al., IEEE TAC 2019): bbox, expression, valence, arousal.

    ``num_classes`` 7 (default) or 8 (Contempt); rows with codes 7 (when 7 classes) and 8–10 (None,
    Uncertain, No-face) are dropped and counted. ``split="val"`` and ``"test"`` both read validation.csv (the
    test set is not public). Images are looked up under ``images_dir`` (default
    ``<root>/Manually_Annotated_Images`` if present, else ``<root>``). ``dataset.va`` is N×2 (valence,
    arousal), the attribute every reader with VA uses (:data:`zoo.data.VA_ATTRIBUTE`).
    """
    name = "affectnet"
    root = _root(path, name, "/data/AffectNet")
    common, opts = _split_options(name, split, options, ("num_classes", "images_dir"))
    on_error = check_choice("on_error", options.get("on_error", "raise"), ON_ERROR)
    num_classes = int(opts.get("num_classes", 7))
    if num_classes not in (7, 8):
        raise DataError(f"{name}: num_classes must be 7 or 8, got {num_classes}.")
    label_names = classes.AFFECTNET7 if num_classes == 7 else classes.AFFECTNET8
    csv_name = {"train": "training.csv", "val": "validation.csv", "test": "validation.csv"}.get(split)
    if csv_name is None:
        raise DataError(f"{name}: split must be train, val or test, got {split!r}.")
    csv_file = root / csv_name if root.is_dir() else root
    if not csv_file.is_file():
        raise DataError(f"{name}: {csv_file} not found (AffectNet ships training.csv and validation.csv).")
    images_dir = Path(opts["images_dir"]) if "images_dir" in opts else (
        root / "Manually_Annotated_Images" if (root / "Manually_Annotated_Images").is_dir() else root
    )
    report = DatasetReport()
    required = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "expression", "valence", "arousal")
    try:
        samples = _affectnet_rows(csv_file, required, images_dir, num_classes, on_error, report)
    except UnicodeDecodeError as exc:
        raise _not_utf8(csv_file, exc) from None
    return _finish(samples, label_names, f"{name}[{split}]", report, common, options)


def _affectnet_rows(csv_file: Path, required: Sequence[str], images_dir: Path, num_classes: int, on_error: str,
                    report: DatasetReport) -> list[Sample]:
    samples = []
    with csv_file.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise AnnotationError(f"{csv_file}: missing column(s) {', '.join(missing)}; expected {', '.join(required)}.")
        for number, row in enumerate(reader, start=2):
            where = f"{csv_file}:{number}"
            try:
                code = int(row["expression"])
                x, y, w, h = (float(row[k]) for k in ("face_x", "face_y", "face_width", "face_height"))
                va = (float(row["valence"]), float(row["arousal"]))
                if not 0 <= code <= 10:
                    raise AnnotationError(f"{where}: expression code {code} is outside 0..10.")
                box = make_box(x, y, x + w, y + h, where)
            except (ValueError, TypeError, AnnotationError) as exc:
                error = exc if isinstance(exc, AnnotationError) else AnnotationError(f"{where}: malformed row ({exc}).")
                fail_or_skip(report, on_error, error, where)
                continue
            if code >= num_classes:
                report.counts[f"dropped_expression_{code}"] += 1
                continue
            samples.append(Sample(code, str(images_dir / row["subDirectory_filePath"]), box=box, extra={"va": va}))
    return samples


# --------------------------------------------------------------------------------------------- RAF-DB


def rafdb(path: str | None, split: str = "train", **options: Any) -> FaceDataset:
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` (``train_00001.jpg 5``) with codes 1–7 remapped to
    AffectNet-7 order (1→3, 2→4, 3→5, 4→1, 5→2, 6→6, 7→0; LDLVA's class order); images
    ``Image/aligned/<stem>_aligned.jpg`` (the whole image is the face). ``split="val"`` reads the test list."""
    name = "rafdb"
    root = _root(path, name, "/data/RAF-DB")
    common, _ = _split_options(name, split, options, ())
    on_error = check_choice("on_error", options.get("on_error", "raise"), ON_ERROR)
    base = root / "basic" if (root / "basic").is_dir() else root
    list_file = base / "EmoLabel" / "list_patition_label.txt"
    if not list_file.is_file():
        raise DataError(f"{name}: {list_file} not found (expected RAF-DB's basic/EmoLabel/list_patition_label.txt).")
    prefix = {"train": "train_", "val": "test_", "test": "test_"}.get(split)
    if prefix is None:
        raise DataError(f"{name}: split must be train, val or test, got {split!r}.")
    report = DatasetReport()
    samples = []
    try:
        text = list_file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(list_file, exc) from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{list_file}:{number}"
        fields = line.split()
        try:
            if len(fields) != 2 or not fields[1].isdigit() or int(fields[1]) not in classes.RAFDB_TO_AFFECTNET:
                raise AnnotationError(f"{where}: expected '<name>.jpg <label 1-7>', got {line.strip()!r}.")
        except AnnotationError as exc:
            fail_or_skip(report, on_error, exc, where)
            continue
        if not fields[0].startswith(prefix):
            continue
        stem = Path(fields[0]).stem
        image = base / "Image" / "aligned" / f"{stem}_aligned.jpg"
        samples.append(Sample(classes.RAFDB_TO_AFFECTNET[int(fields[1])], str(image), box=WHOLE))
    return _finish(samples, classes.AFFECTNET7, f"{name}[{split}]", report, common, options)


# --------------------------------------------------------------------------------------------- class folders


def _class_folder_reader(
    name: str, path: str | None, split: str, options: dict, label_names: Sequence[str], aliases: dict, example: str
) -> FaceDataset:
    root = _root(path, name, example)
    common, opts = _split_options(name, split, options, ("val_fraction", "split_seed", "detector", "detector_args",
                                                         "box_cache", "votes"))
    on_error = check_choice("on_error", options.get("on_error", "raise"), ON_ERROR)
    report = DatasetReport()
    val_fraction = opts.get("val_fraction")
    folder_split = "train" if (val_fraction is not None and split == "val") else split
    split_dir = find_split_dir(root, folder_split, SPLIT_ALIASES)
    items = scan_class_folders(split_dir, ClassMap(label_names, aliases), on_error, report)
    if "detector" in opts:
        samples = _samples_with_detection(items, split_dir, split_dir.name, opts, all_faces=False)
    else:
        samples = [Sample(label, str(p), box=WHOLE) for p, label in items]
    if "votes" in opts:
        attach_votes(samples, Path(opts["votes"]), root, label_names, aliases, report)
    samples = _carve(samples, split, val_fraction, int(opts.get("split_seed", 0)))
    return _finish(samples, label_names, f"{name}[{split}]", report, common, options)


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
    with votes_csv.open(newline="", encoding="utf-8") as handle:
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


def sfew(path: str | None, split: str = "train", **options: Any) -> FaceDataset:
    """SFEW 2.0: ``{Train,Val}/<Class>/*`` (aligned faces); AffectNet-7 class order as in LDLVA."""
    return _class_folder_reader(
        "sfew", path, split, options, classes.AFFECTNET7, classes.AFFECTNET_ALIASES, "/data/SFEW"
    )


def fer2013(path: str | None, split: str = "train", **options: Any) -> FaceDataset:
    """FER2013, Kaggle class folders (``<split>/<class>/*.jpg``) or ``fer2013.csv`` (``emotion,pixels,Usage``).

    The CSV's Usage maps Training→train, PublicTest→val, PrivateTest→test. Class order: FER2013 codes 0–6.
    """
    name = "fer2013"
    root = _root(path, name, "/data/fer2013")
    csv_file = root if root.is_file() else root / "fer2013.csv"
    if not csv_file.is_file():
        return _class_folder_reader(name, path, split, options, classes.FER2013, classes.FER2013_ALIASES, "/data/fer2013")
    common, _ = _split_options(name, split, options, ())
    on_error = check_choice("on_error", options.get("on_error", "raise"), ON_ERROR)
    report = DatasetReport()
    samples = [
        Sample(label, None, pixels=pixels, box=WHOLE)
        for label, pixels in _fer_pixel_rows(csv_file, split, on_error, report)
    ]
    return _finish(samples, classes.FER2013, f"{name}[{split}]", report, common, options)


def _fer_pixel_rows(csv_file: Path, split: str, on_error: str, report: DatasetReport, keep_rows: bool = False):
    """Yield ``(label, 48×48 uint8)`` (or ``(row_number, label, pixels)``) for the rows of ``split``."""
    usage = classes.FER2013_USAGE.get(split)
    if usage is None:
        raise DataError(f"{csv_file}: split must be train, val or test, got {split!r}.")
    try:
        yield from _fer_rows(csv_file, usage, on_error, report, keep_rows)
    except UnicodeDecodeError as exc:
        raise _not_utf8(csv_file, exc) from None


def _fer_rows(csv_file: Path, usage: str, on_error: str, report: DatasetReport, keep_rows: bool):
    with csv_file.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("emotion", "pixels", "Usage") if c not in (reader.fieldnames or [])]
        if missing:
            raise AnnotationError(f"{csv_file}: missing column(s) {', '.join(missing)} (expected emotion,pixels,Usage).")
        for index, row in enumerate(reader):
            where = f"{csv_file}:{index + 2}"
            if row["Usage"] != usage:
                continue
            try:
                label = int(row["emotion"])
                values = np.array(row["pixels"].split(), dtype=np.int64)
                if not 0 <= label <= 6:
                    raise AnnotationError(f"{where}: emotion {label} is outside 0..6.")
                side = int(round(len(values) ** 0.5))
                if side * side != len(values) or values.min(initial=0) < 0 or values.max(initial=0) > 255:
                    raise AnnotationError(f"{where}: pixels must be a square number of values in 0..255.")
            except (ValueError, AnnotationError) as exc:
                error = exc if isinstance(exc, AnnotationError) else AnnotationError(f"{where}: malformed row ({exc}).")
                fail_or_skip(report, on_error, error, where)
                continue
            pixels = values.astype(np.uint8).reshape(side, side)
            yield (index, label, pixels) if keep_rows else (label, pixels)


#: FERPlus's own image folders per split (microsoft/FERPlus src/generate_training_data.py ``folder_names``)
FERPLUS_FOLDERS = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}


def _ferplus_majority(votes: np.ndarray) -> tuple[int, tuple[float, ...]] | None:
    """FER+ "majority" label: the top class needs more than half of all votes and must be one of the 8 emotions
    (not unknown / not a face); None drops the row. Returns the label and the normalised emotion votes."""
    top = int(np.argmax(votes))
    if votes.sum() <= 0 or votes[top] <= 0.5 * votes.sum() or top >= 8:
        return None
    emotion_votes = votes[:8]
    return top, tuple(emotion_votes / emotion_votes.sum())


def ferplus(path: str | None, split: str = "train", **options: Any) -> FaceDataset:
    """FER+ in either of its two layouts:

    * Microsoft's own (what microsoft/FERPlus ``src/generate_training_data.py`` writes, and how most users hold
      FER+): ``[data/]FER2013{Train,Valid,Test}/label.csv`` next to the PNG images, one headerless row per image,
      ``fer0000000.png,"(0, 0, 48, 48)",`` + the 10 vote counts (the face rectangle is read as (x, y, w, h);
      rows without it, name + 10 counts, are accepted too). train/val/test = FER2013Train/Valid/Test;
    * ``fer2013new.csv`` vote counts aligned row by row with ``fer2013.csv`` pixels (used when both files are
      in ``DIR``, or with ``pixels_csv=``).

    Label = majority vote (FER+ "majority" mode: the top class needs more than half of all votes, and must be
    one of the 8 emotions; other rows are dropped and counted). ``dataset.label_distribution`` (N×8) holds the
    normalised emotion votes as a reference distribution; items carry it as ``"label_distribution"``.
    """
    name = "ferplus"
    root = _root(path, name, "/data/FERPlus")
    common, opts = _split_options(name, split, options, ("pixels_csv",))
    on_error = check_choice("on_error", options.get("on_error", "raise"), ON_ERROR)
    votes_file = root / "fer2013new.csv" if root.is_dir() else root
    pixels_file = Path(opts["pixels_csv"]) if "pixels_csv" in opts else votes_file.parent / "fer2013.csv"
    if not (votes_file.is_file() and pixels_file.is_file()) and "pixels_csv" not in opts and root.is_dir():
        for base in (root, root / "data"):
            if any((base / folder / "label.csv").is_file() for folder in FERPLUS_FOLDERS.values()):
                return _ferplus_folders(base, split, on_error, common, options)
    for f in (votes_file, pixels_file):
        if not f.is_file():
            raise DataError(
                f"{name}: {f} not found. FER+ is read from fer2013new.csv with the original fer2013.csv, or from "
                f"Microsoft's layout [data/]FER2013Train|FER2013Valid|FER2013Test/label.csv + PNGs under {root}."
            )
    report = DatasetReport()
    try:
        with votes_file.open(newline="", encoding="utf-8") as handle:
            votes_rows = list(csv.reader(handle))
    except UnicodeDecodeError as exc:
        raise _not_utf8(votes_file, exc) from None
    if not votes_rows:
        raise AnnotationError(f"{votes_file}: empty; expected the FER+ header and one row per fer2013.csv row.")
    header, votes_rows = votes_rows[0], votes_rows[1:]
    if header[:2] != ["Usage", "Image name"] or tuple(header[2:12]) != classes.FERPLUS_COLUMNS:
        raise AnnotationError(
            f"{votes_file}: unexpected header {header}; expected Usage,Image name,{','.join(classes.FERPLUS_COLUMNS)}."
        )
    samples = []
    for index, _fer_label, pixels in _fer_pixel_rows(pixels_file, split, on_error, report, keep_rows=True):
        where = f"{votes_file}:{index + 2}"
        try:
            if index >= len(votes_rows):
                raise AnnotationError(f"{where}: fer2013new.csv has fewer rows than fer2013.csv.")
            row = votes_rows[index]
            if len(row) < 12:
                raise AnnotationError(f"{where}: expected 12 columns, got {len(row)}.")
            if not row[1].strip():
                report.counts["dropped_no_image_name"] += 1
                continue
            votes = np.array([float(v) for v in row[2:12]])
        except (ValueError, AnnotationError) as exc:
            error = exc if isinstance(exc, AnnotationError) else AnnotationError(f"{where}: malformed votes ({exc}).")
            fail_or_skip(report, on_error, error, where)
            continue
        majority = _ferplus_majority(votes)
        if majority is None:
            report.counts["dropped_no_majority"] += 1
            continue
        samples.append(Sample(majority[0], None, pixels=pixels, box=WHOLE, distribution=majority[1]))
    return _finish(samples, classes.FERPLUS, f"{name}[{split}]", report, common, options)


def _ferplus_box(text: str, where: str) -> FaceBox | None:
    """``"(x, y, w, h)"`` -> a box (x, y, x + w, y + h)."""
    parts = text.strip().strip("()").split(",")
    if len(parts) != 4:
        raise AnnotationError(f"{where}: face rectangle {text!r} is not \"(x, y, w, h)\".")
    x, y, w, h = (float(v) for v in parts)
    return make_box(x, y, x + w, y + h, where)


def _ferplus_folders(base: Path, split: str, on_error: str, common: dict, options: dict) -> FaceDataset:
    """Microsoft's FERPlus layout: ``base/FER2013<Split>/label.csv`` + the PNG images beside it."""
    name = "ferplus"
    folder = FERPLUS_FOLDERS.get(split)
    if folder is None:
        raise DataError(f"{name}: split must be train, val or test, got {split!r}.")
    label_file = base / folder / "label.csv"
    if not label_file.is_file():
        splits = [s for s, f in FERPLUS_FOLDERS.items() if (base / f / "label.csv").is_file()]
        raise SplitNotFoundError(
            f"{name}: {label_file} not found (Microsoft's FERPlus layout has FER2013Train, FER2013Valid and "
            f"FER2013Test folders, each with a label.csv); found "
            f"{', '.join(f'{FERPLUS_FOLDERS[s]} (= {s})' for s in splits)}: ask for one of them as the split.",
            split, splits)
    report = DatasetReport()
    samples = []
    with label_file.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    for number, row in enumerate(rows, start=1):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{label_file}:{number}"
        try:
            if len(row) not in (11, 12):
                raise AnnotationError(f"{where}: expected image name, \"(x, y, w, h)\" and 10 vote counts, got "
                                      f"{len(row)} fields.")
            box: Any = WHOLE if len(row) == 11 else _ferplus_box(row[1], where)
            votes = np.array([float(v) for v in row[-10:]])
            image = base / folder / row[0].strip()
            if not image.is_file():
                raise ImageReadError(f"{where}: image {image} listed but not found (FERPlus's "
                                     f"generate_training_data.py writes the PNGs from fer2013.csv).")
        except (AnnotationError, ImageReadError) as exc:  # DataErrors, hence ValueErrors: first
            fail_or_skip(report, on_error, exc, where)
            continue
        except (ValueError, TypeError) as exc:
            fail_or_skip(report, on_error, AnnotationError(f"{where}: malformed row ({exc})."), where)
            continue
        majority = _ferplus_majority(votes)
        if majority is None:
            report.counts["dropped_no_majority"] += 1
            continue
        samples.append(Sample(majority[0], str(image), box=box, distribution=majority[1]))
    return _finish(samples, classes.FERPLUS, f"{name}[{split}]", report, common, options)


# --------------------------------------------------------------------------------------------- generic


def folder(path: str | None, split: str = "train", **options: Any) -> FaceDataset:
    """Generic class folders: ``<root>/<split>/<Class>/*`` (or ``<root>/<Class>/*`` with ``val_fraction``).

    Classes are ``label_names`` if given (folders must match them), else the sorted folder names.
    Boxes: the whole image is the face, unless ``detector=`` is given: then every detected face becomes
    one sample with its own masked context (``faces="best"`` keeps only the best one).
    """
    name = "folder"
    root = _root(path, name, "/data/my_images")
    own = ("label_names", "val_fraction", "split_seed", "detector", "detector_args", "box_cache", "faces")
    common, opts = _split_options(name, split, options, own)
    on_error = check_choice("on_error", options.get("on_error", "raise"), ON_ERROR)
    report = DatasetReport()
    val_fraction = opts.get("val_fraction")
    try:
        split_dir = find_split_dir(root, "train" if (val_fraction is not None and split == "val") else split, SPLIT_ALIASES)
    except DataError:
        if val_fraction is None:
            raise
        split_dir = root
    if "label_names" in opts:
        label_names = tuple(opts["label_names"])
    else:
        label_names = tuple(sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")))
        if len(label_names) < 2:
            raise DataError(f"{name}: {split_dir} needs at least two class folders, found {list(label_names)}.")
    items = scan_class_folders(split_dir, ClassMap(label_names), on_error, report)
    if "detector" in opts:
        faces = check_choice("faces", opts.get("faces", "all"), ("all", "best"))
        samples = _samples_with_detection(items, split_dir, split_dir.name, opts, all_faces=faces == "all")
    else:
        samples = [Sample(label, str(p), box=WHOLE) for p, label in items]
    samples = _carve(samples, split, val_fraction, int(opts.get("split_seed", 0)))
    return _finish(samples, label_names, f"{name}[{split}]", report, common, options)


def csv_reader(path: str | None, split: str = "train", **options: Any) -> FaceDataset:
    """Generic CSV with a header: ``path,label`` plus optional ``x1,y1,x2,y2`` and ``split`` columns.

    ``label`` is a class name or an integer index into ``label_names``. Without ``label_names`` the classes
    are the sorted distinct names (integer labels then need ``label_names``). Paths are relative to
    ``image_root`` (default: the CSV's folder). Rows of other splits are ignored when a ``split`` column exists.
    """
    name = "csv"
    csv_file = _root(path, name, "/data/labels.csv")
    common, opts = _split_options(name, split, options, ("label_names", "image_root"))
    on_error = check_choice("on_error", options.get("on_error", "raise"), ON_ERROR)
    image_root = Path(opts.get("image_root", csv_file.parent))
    report = DatasetReport()
    try:
        with csv_file.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            if "path" not in fields or "label" not in fields:
                raise AnnotationError(f"{csv_file}: needs a header with 'path' and 'label' columns, got {fields}.")
            has_box = all(k in fields for k in ("x1", "y1", "x2", "y2"))
            rows = [(n, r) for n, r in enumerate(reader, start=2) if "split" not in fields or r["split"] == split]
    except UnicodeDecodeError as exc:
        raise _not_utf8(csv_file, exc) from None
    if "label_names" in opts:
        label_names = tuple(opts["label_names"])
    else:
        # surrounding spaces are not part of a name (" happy" is "happy"); names differing in case are refused
        names = sorted({r["label"].strip() for _, r in rows if r["label"] is not None and r["label"].strip()})
        if any(n.strip().lstrip("-").isdigit() for n in names):
            raise DataError(f"{csv_file}: integer labels need label_names=[...] to say which class each number is.")
        label_names = tuple(names)
    class_map = ClassMap(label_names)
    samples = []
    for number, row in rows:
        where = f"{csv_file}:{number}"
        try:
            text = (row.get("label") or "").strip()
            label = int(text) if text.lstrip("-").isdigit() else class_map.get(text)
            if label is None or not 0 <= label < len(label_names):
                raise UnknownClassError(f"{where}: label {text!r} is not one of {', '.join(label_names)}.")
            box: Any = WHOLE
            if has_box:
                box = make_box(*(float(row[k]) for k in ("x1", "y1", "x2", "y2")), where=where)
        except (ValueError, TypeError) as exc:
            fail_or_skip(report, on_error, AnnotationError(f"{where}: malformed row ({exc})."), where)
            continue
        except (AnnotationError, UnknownClassError) as exc:
            fail_or_skip(report, on_error, exc, where)
            continue
        samples.append(Sample(label, str(image_root / row["path"]), box=box))
    return _finish(samples, label_names, f"{name}[{split}]", report, common, options)



# --------------------------------------------------------------------------------------------- ExpW

#: ExpW's ``label.lst`` columns (Zhang, Luo, Loy, Tang, IJCV 2018; the dataset's readme.txt)
EXPW_COLUMNS = ("image_name", "face_id", "face_box_top", "face_box_left", "face_box_right", "face_box_bottom",
                "face_box_confidence", "expression_label")
#: a box may overhang its image by this fraction of its side (rounding when the photos were resized) and is then
#: clipped; a larger overhang is an annotation error
EXPW_BOX_TOLERANCE = 0.1
EXPW_VAL_FRACTION = 0.2


def expw(path: str | None, split: str = "train", **options: Any) -> FaceDataset:
    """ExpW (Expression in-the-Wild; Zhang et al., IJCV 2018) in its own layout: ``<root>/label.lst`` and
    ``<root>/Images/*.jpg`` (``origin/`` is accepted too).

    One sample per face line ``image_name face_id top left right bottom confidence label`` (labels 0–6 in the
    FER2013 order), with the face cropped from its photo and the photo, that face masked, as the context; a
    photo with several faces gives several samples. ``train`` / ``val`` carve a seeded split **by photo**
    (``val_fraction``, default 0.2, ``split_seed``, default 0): the faces of one photo are never on both sides.
    ``split="all"`` (or ``"test"``: a held-out ``label.lst`` of its own) keeps every face. A malformed line, a
    label outside 0–6, a repeated face, a box that does not fit its image or a missing image is an error naming
    the file and line, or a counted skip with ``on_error='skip'``. ``dataset.provenance`` records the
    ``label.lst`` sha256, the split's photo and face counts and the split settings.
    """
    name = "expw"
    root = _root(path, name, "/data/ExpW")
    list_file = root if root.is_file() else root / "label.lst"
    base = list_file.parent
    if not list_file.is_file():
        raise DataError(f"{name}: {list_file} not found; point the spec at the folder holding label.lst and Images/.")
    images_dir = next((base / d for d in ("Images", "images", "origin") if (base / d).is_dir()), None)
    if images_dir is None:
        raise DataError(f"{name}: no Images/ (or origin/) folder next to {list_file}.")
    common, opts = _split_options(name, split, options, ("val_fraction", "split_seed"))
    on_error = check_choice("on_error", options.get("on_error", "raise"), ON_ERROR)
    check_choice("split", split, ("train", "val", "test", "all"))
    fraction = float(opts.get("val_fraction", EXPW_VAL_FRACTION))
    seed = int(opts.get("split_seed", 0))
    report = DatasetReport()
    raw = list_file.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _not_utf8(list_file, exc) from None
    samples: list[Sample] = []
    seen: dict[tuple[str, str], str] = {}
    sizes: dict[str, tuple[int, int] | None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{list_file}:{number}"
        try:
            sample = _expw_sample(line, where, images_dir, sizes, seen)
        except (AnnotationError, ImageReadError) as exc:
            fail_or_skip(report, on_error, exc, where)
            continue
        samples.append(sample)
    photos = sorted({s.extra["photo"] for s in samples})
    if split in ("train", "val"):
        kept, held = seeded_split(len(photos), fraction, seed)
        chosen = {photos[i] for i in (held if split == "val" else kept)}
        samples = [s for s in samples if s.extra["photo"] in chosen]
    dataset = _finish(samples, classes.FER2013, f"{name}[{split}]", report, common, options)
    dataset.provenance = {
        "dataset": name, "split": split, "label_file": list_file.name,
        "label_file_sha256": hashlib.sha256(raw).hexdigest(),
        "photos": len({s.extra["photo"] for s in dataset.samples}), "faces": len(dataset),
        "photos_in_file": len(photos),
        **({"val_fraction": fraction, "split_seed": seed, "split_by": "photo"} if split in ("train", "val") else {}),
    }
    return dataset


def _expw_sample(line: str, where: str, images_dir: Path, sizes: dict, seen: dict) -> Sample:
    fields = line.split()
    if len(fields) != len(EXPW_COLUMNS):
        raise AnnotationError(f"{where}: {len(fields)} fields, expected {len(EXPW_COLUMNS)} "
                              f"({' '.join(EXPW_COLUMNS)}).")
    image_name, face_id = fields[0], fields[1]
    try:
        top, left, right, bottom, confidence = (float(v) for v in fields[2:7])
        label = int(fields[7])
    except ValueError as exc:
        raise AnnotationError(f"{where}: malformed number ({exc}).") from None
    if not 0 <= label <= 6:
        raise AnnotationError(f"{where}: expression label {label} is outside 0..6 (0 angry ... 6 neutral).")
    if (image_name, face_id) in seen:
        raise AnnotationError(f"{where}: face {face_id} of {image_name} is already on line {seen[image_name, face_id]}.")
    if not right > left or not bottom > top or not all(map(math.isfinite, (top, left, right, bottom))):
        raise AnnotationError(f"{where}: face box top {top:g} left {left:g} right {right:g} bottom {bottom:g} is "
                              f"empty or inverted (ExpW's column order is top left right bottom).")
    box = FaceBox(left, top, right, bottom)
    image_path = images_dir / image_name
    if image_name not in sizes:
        sizes[image_name] = image_header_size(image_path)
    size = sizes[image_name]
    if size is None:
        raise ImageReadError(f"{where}: image {image_path} is missing or unreadable.")
    width, height = size
    tol_x, tol_y = EXPW_BOX_TOLERANCE * box.width, EXPW_BOX_TOLERANCE * box.height
    if box.x1 < -tol_x or box.y1 < -tol_y or box.x2 > width + tol_x or box.y2 > height + tol_y:
        raise AnnotationError(f"{where}: face box left {left:g} top {top:g} right {right:g} bottom {bottom:g} does "
                              f"not fit the {width}×{height} image {image_name}; fix the line or remove it.")
    box = FaceBox(max(0.0, box.x1), max(0.0, box.y1), min(float(width), box.x2), min(float(height), box.y2))
    seen[image_name, face_id] = where.rsplit(":", 1)[-1]
    return Sample(label, str(image_path), box=box,
                  extra={"photo": image_name, "face_id": face_id, "confidence": confidence})
