"""Built-in dataset readers: CAER-S / NCAER-S, AffectNet, RAF-DB, SFEW, FER2013, FER+, generic folder / CSV.

Each reader parses its dataset's published on-disk format into :class:`Sample` records and
returns a :class:`FaceDataset`, through the base plugins' readers use too (:mod:`zoo.data.reader_kit`). Class orders are explicit per family (:mod:`zoo.data.classes`); folder names
and codes are mapped onto them, and anything unknown is an error naming it (or a counted skip with
``on_error='skip'``). Nothing is downloaded: every reader reads the user's disk.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data import classes
from zoo.data.boxes import FaceBox, make_box, read_box_file, read_list_file
from zoo.data.images import MAX_IMAGE_PIXELS, load_image
from zoo.data.reader_kit import (
    SPLIT_ALIASES,
    SPLIT_OPTIONS,
    ReaderCall,
    class_folder_dataset,
    dataset_root,
    detected_samples,
    not_utf8,
    whole_image_samples,
)
from zoo.data.records import (
    WHOLE,
    ClassMap,
    FaceDataset,
    Sample,
    SplitNotFoundError,
    check_choice,
    find_split_dir,
    image_header_size,
    relpath,
    scan_class_folders,
)
from zoo.errors import AnnotationError, DataError, ImageReadError, UnknownClassError

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
    root = dataset_root(path, "caer_s", "/data/CAER-S")
    name = "ncaer_s" if (root / "images").is_dir() else "caer_s"
    call = ReaderCall(name, split, options, ("boxes", "detector", "detector_args", "box_cache", *SPLIT_OPTIONS))
    images_root = root / "images" if (root / "images").is_dir() else root
    crop_root = root / "crop"
    split_dir = find_split_dir(images_root, call.source_split, SPLIT_ALIASES)
    class_map = ClassMap(classes.CAER, classes.CAER_ALIASES)
    items = scan_class_folders(split_dir, class_map, call.on_error, call.report)

    boxes = call.own.get("boxes")
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
            f"{name}: no face boxes found for split {call.source_split!r}: expected {crop_root / split_dir.name}/ "
            f"(per-image x1,y1,x2,y2 files) or {root / (split_dir.name + '.txt')} (relpath,label,x1,y1,x2,y2). "
            f"Pass boxes=PATH to point at them, or boxes='detect' to detect faces once (cached)."
        )

    samples: list[Sample] = []
    if list_file is not None:
        samples = _caer_from_list(list_file, split_dir, class_map, call)
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
                call.fail_or_skip(exc, str(image_path))
    else:
        det = {"detector": call.own.get("detector", "haar"), "detector_args": call.own.get("detector_args"),
               "box_cache": call.own.get("box_cache")}
        samples = detected_samples(items, split_dir, split_dir.name, det, all_faces=False)
    return call.finish(call.carve(samples), classes.CAER)


def _caer_from_list(list_file: Path, split_dir: Path, class_map: ClassMap, call: ReaderCall) -> list[Sample]:
    """Samples of a CAER-S list file restricted to ``split_dir``; its label must match the folder's class."""
    samples = []
    split_names = {"train", "test", "val", "validation"}
    for entry, error, where in read_list_file(list_file):
        if error is not None:
            call.fail_or_skip(error, where)
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
            call.fail_or_skip(exc, entry.where)
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
    root = dataset_root(path, name, "/data/AffectNet")
    call = ReaderCall(name, split, options, ("num_classes", "images_dir"))
    opts = call.own
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
    required = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "expression", "valence", "arousal")
    try:
        samples = _affectnet_rows(csv_file, required, images_dir, num_classes, call)
    except UnicodeDecodeError as exc:
        raise not_utf8(csv_file, exc) from None
    return call.finish(samples, label_names)


def _affectnet_rows(csv_file: Path, required: Sequence[str], images_dir: Path, num_classes: int,
                    call: ReaderCall) -> list[Sample]:
    samples = []
    with csv_file.open(newline="", encoding="utf-8-sig") as handle:
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
                call.fail_or_skip(error, where)
                continue
            if code >= num_classes:
                call.report.counts[f"dropped_expression_{code}"] += 1
                continue
            samples.append(Sample(code, str(images_dir / row["subDirectory_filePath"]), box=box, extra={"va": va}))
    return samples


# --------------------------------------------------------------------------------------------- RAF-DB


def rafdb(path: str | None, split: str = "train", **options: Any) -> FaceDataset:
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` (``train_00001.jpg 5``) with codes 1–7 remapped to
    AffectNet-7 order (1→3, 2→4, 3→5, 4→1, 5→2, 6→6, 7→0; LDLVA's class order); images
    ``Image/aligned/<stem>_aligned.jpg`` (the whole image is the face). ``split="val"`` reads the test list."""
    name = "rafdb"
    root = dataset_root(path, name, "/data/RAF-DB")
    call = ReaderCall(name, split, options)
    base = root / "basic" if (root / "basic").is_dir() else root
    list_file = base / "EmoLabel" / "list_patition_label.txt"
    if not list_file.is_file():
        raise DataError(f"{name}: {list_file} not found (expected RAF-DB's basic/EmoLabel/list_patition_label.txt).")
    prefix = {"train": "train_", "val": "test_", "test": "test_"}.get(split)
    if prefix is None:
        raise DataError(f"{name}: split must be train, val or test, got {split!r}.")
    samples = []
    try:
        text = list_file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise not_utf8(list_file, exc) from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{list_file}:{number}"
        fields = line.split()
        try:
            if len(fields) != 2 or not fields[1].isdigit() or int(fields[1]) not in classes.RAFDB_TO_AFFECTNET:
                raise AnnotationError(f"{where}: expected '<name>.jpg <label 1-7>', got {line.strip()!r}.")
        except AnnotationError as exc:
            call.fail_or_skip(exc, where)
            continue
        if not fields[0].startswith(prefix):
            continue
        stem = Path(fields[0]).stem
        image = base / "Image" / "aligned" / f"{stem}_aligned.jpg"
        samples.append(Sample(classes.RAFDB_TO_AFFECTNET[int(fields[1])], str(image), box=WHOLE))
    return call.finish(samples, classes.AFFECTNET7)


# --------------------------------------------------------------------------------------------- class folders


def sfew(path: str | None, split: str = "train", **options: Any) -> FaceDataset:
    """SFEW 2.0: ``{Train,Val}/<Class>/*`` (aligned faces); AffectNet-7 class order as in LDLVA."""
    return class_folder_dataset(
        "sfew", path, split, options, classes.AFFECTNET7, classes.AFFECTNET_ALIASES, "/data/SFEW"
    )


def fer2013(path: str | None, split: str = "train", **options: Any) -> FaceDataset:
    """FER2013, Kaggle class folders (``<split>/<class>/*.jpg``) or ``fer2013.csv`` (``emotion,pixels,Usage``).

    The CSV's Usage maps Training→train, PublicTest→val, PrivateTest→test. Class order: FER2013 codes 0–6.
    """
    name = "fer2013"
    root = dataset_root(path, name, "/data/fer2013")
    csv_file = root if root.is_file() else root / "fer2013.csv"
    if not csv_file.is_file():
        return class_folder_dataset(name, path, split, options, classes.FER2013, classes.FER2013_ALIASES, "/data/fer2013")
    call = ReaderCall(name, split, options)
    samples = [Sample(label, None, pixels=pixels, box=WHOLE) for label, pixels in _fer_pixel_rows(csv_file, call)]
    return call.finish(samples, classes.FER2013)


def _fer_pixel_rows(csv_file: Path, call: ReaderCall, keep_rows: bool = False):
    """Yield ``(label, 48×48 uint8)`` (or ``(row_number, label, pixels)``) for the rows of ``split``."""
    usage = classes.FER2013_USAGE.get(call.split)
    if usage is None:
        raise DataError(f"{csv_file}: split must be train, val or test, got {call.split!r}.")
    try:
        yield from _fer_rows(csv_file, usage, call, keep_rows)
    except UnicodeDecodeError as exc:
        raise not_utf8(csv_file, exc) from None


def _fer_rows(csv_file: Path, usage: str, call: ReaderCall, keep_rows: bool):
    with csv_file.open(newline="", encoding="utf-8-sig") as handle:
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
                call.fail_or_skip(error, where)
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
    root = dataset_root(path, name, "/data/FERPlus")
    call = ReaderCall(name, split, options, ("pixels_csv",))
    opts = call.own
    votes_file = root / "fer2013new.csv" if root.is_dir() else root
    pixels_file = Path(opts["pixels_csv"]) if "pixels_csv" in opts else votes_file.parent / "fer2013.csv"
    if not (votes_file.is_file() and pixels_file.is_file()) and "pixels_csv" not in opts and root.is_dir():
        for base in (root, root / "data"):
            if any((base / folder / "label.csv").is_file() for folder in FERPLUS_FOLDERS.values()):
                return _ferplus_folders(base, call)
    missing = [str(f) for f in (votes_file, pixels_file) if not f.is_file()]
    if missing:
        raise DataError(
            f"{name}: {' and '.join(missing)} not found. FER+ is read from fer2013new.csv with the original "
            f"fer2013.csv, or from Microsoft's layout [data/]FER2013Train|FER2013Valid|FER2013Test/label.csv + PNGs "
            f"under {root}."
        )
    try:
        with votes_file.open(newline="", encoding="utf-8-sig") as handle:
            votes_rows = list(csv.reader(handle))
    except UnicodeDecodeError as exc:
        raise not_utf8(votes_file, exc) from None
    if not votes_rows:
        raise AnnotationError(f"{votes_file}: empty; expected the FER+ header and one row per fer2013.csv row.")
    header, votes_rows = votes_rows[0], votes_rows[1:]
    if header[:2] != ["Usage", "Image name"] or tuple(header[2:12]) != classes.FERPLUS_COLUMNS:
        raise AnnotationError(
            f"{votes_file}: unexpected header {header}; expected Usage,Image name,{','.join(classes.FERPLUS_COLUMNS)}."
        )
    samples = []
    for index, _fer_label, pixels in _fer_pixel_rows(pixels_file, call, keep_rows=True):
        where = f"{votes_file}:{index + 2}"
        try:
            if index >= len(votes_rows):
                raise AnnotationError(f"{where}: fer2013new.csv has fewer rows than fer2013.csv.")
            row = votes_rows[index]
            if len(row) < 12:
                raise AnnotationError(f"{where}: expected 12 columns, got {len(row)}.")
            if not row[1].strip():
                call.report.counts["dropped_no_image_name"] += 1
                continue
            votes = np.array([float(v) for v in row[2:12]])
        except (ValueError, AnnotationError) as exc:
            error = exc if isinstance(exc, AnnotationError) else AnnotationError(f"{where}: malformed votes ({exc}).")
            call.fail_or_skip(error, where)
            continue
        majority = _ferplus_majority(votes)
        if majority is None:
            call.report.counts["dropped_no_majority"] += 1
            continue
        samples.append(Sample(majority[0], None, pixels=pixels, box=WHOLE, distribution=majority[1]))
    return call.finish(samples, classes.FERPLUS)


def _ferplus_box(text: str, where: str) -> FaceBox | None:
    """``"(x, y, w, h)"`` -> a box (x, y, x + w, y + h)."""
    parts = text.strip().strip("()").split(",")
    if len(parts) != 4:
        raise AnnotationError(f"{where}: face rectangle {text!r} is not \"(x, y, w, h)\".")
    x, y, w, h = (float(v) for v in parts)
    return make_box(x, y, x + w, y + h, where)


def _ferplus_folders(base: Path, call: ReaderCall) -> FaceDataset:
    """Microsoft's FERPlus layout: ``base/FER2013<Split>/label.csv`` + the PNG images beside it."""
    name, split = call.name, call.split
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
    samples = []
    with label_file.open(newline="", encoding="utf-8-sig") as handle:
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
            call.fail_or_skip(exc, where)
            continue
        except (ValueError, TypeError) as exc:
            call.fail_or_skip(AnnotationError(f"{where}: malformed row ({exc})."), where)
            continue
        majority = _ferplus_majority(votes)
        if majority is None:
            call.report.counts["dropped_no_majority"] += 1
            continue
        samples.append(Sample(majority[0], str(image), box=box, distribution=majority[1]))
    return call.finish(samples, classes.FERPLUS)


# --------------------------------------------------------------------------------------------- generic


def folder(path: str | None, split: str = "train", **options: Any) -> FaceDataset:
    """Generic class folders: ``<root>/<split>/<Class>/*`` (or ``<root>/<Class>/*`` with ``val_fraction``).

    Classes are ``label_names`` if given (folders must match them), else the sorted folder names.
    Boxes: the whole image is the face, unless ``detector=`` is given: then every detected face becomes
    one sample with its own masked context (``faces="best"`` keeps only the best one).
    """
    name = "folder"
    root = dataset_root(path, name, "/data/my_images")
    own = ("label_names", *SPLIT_OPTIONS, "detector", "detector_args", "box_cache", "faces")
    call = ReaderCall(name, split, options, own)
    opts = call.own
    try:
        split_dir = find_split_dir(root, call.source_split, SPLIT_ALIASES)
    except DataError:
        if call.val_fraction is None:
            raise
        split_dir = root
    if "label_names" in opts:
        label_names = tuple(opts["label_names"])
    else:
        label_names = tuple(sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")))
        if len(label_names) < 2:
            raise DataError(f"{name}: {split_dir} needs at least two class folders, found {list(label_names)}.")
    items = scan_class_folders(split_dir, ClassMap(label_names), call.on_error, call.report)
    if "detector" in opts:
        faces = check_choice("faces", opts.get("faces", "all"), ("all", "best"))
        samples = detected_samples(items, split_dir, split_dir.name, opts, all_faces=faces == "all")
    else:
        samples = whole_image_samples(items)
    return call.finish(call.carve(samples), label_names)


def csv_reader(path: str | None, split: str = "train", **options: Any) -> FaceDataset:
    """Generic CSV with a header: ``path,label`` plus optional ``x1,y1,x2,y2`` and ``split`` columns.

    ``label`` is a class name or an integer index into ``label_names``. Without ``label_names`` the classes
    are the sorted distinct names (integer labels then need ``label_names``). Paths are relative to
    ``image_root`` (default: the CSV's folder). Rows of other splits are ignored when a ``split`` column exists.
    """
    name = "csv"
    csv_file = dataset_root(path, name, "/data/labels.csv")
    call = ReaderCall(name, split, options, ("label_names", "image_root"))
    opts = call.own
    image_root = Path(opts.get("image_root", csv_file.parent))
    try:
        with csv_file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            if "path" not in fields or "label" not in fields:
                raise AnnotationError(f"{csv_file}: needs a header with 'path' and 'label' columns, got {fields}.")
            has_box = all(k in fields for k in ("x1", "y1", "x2", "y2"))
            rows = [(n, r) for n, r in enumerate(reader, start=2) if "split" not in fields or r["split"] == split]
    except UnicodeDecodeError as exc:
        raise not_utf8(csv_file, exc) from None
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
            call.fail_or_skip(AnnotationError(f"{where}: malformed row ({exc})."), where)
            continue
        except (AnnotationError, UnknownClassError) as exc:
            call.fail_or_skip(exc, where)
            continue
        samples.append(Sample(label, str(image_root / row["path"]), box=box))
    return call.finish(samples, label_names)


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
    root = dataset_root(path, name, "/data/ExpW")
    list_file = root if root.is_file() else root / "label.lst"
    base = list_file.parent
    if not list_file.is_file():
        raise DataError(f"{name}: {list_file} not found; point the spec at the folder holding label.lst and Images/.")
    images_dir = next((base / d for d in ("Images", "images", "origin") if (base / d).is_dir()), None)
    if images_dir is None:
        raise DataError(f"{name}: no Images/ (or origin/) folder next to {list_file}.")
    call = ReaderCall(name, split, options, SPLIT_OPTIONS)
    check_choice("split", split, ("train", "val", "test", "all"))
    fraction = call.val_fraction if call.val_fraction is not None else EXPW_VAL_FRACTION
    seed = call.split_seed
    raw = list_file.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise not_utf8(list_file, exc) from None
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
            call.fail_or_skip(exc, where)
            continue
        samples.append(sample)
    photos_in_file = len({s.extra["photo"] for s in samples})
    if split in ("train", "val"):
        samples = call.carve(samples, fraction, group=lambda sample: sample.extra["photo"])
    dataset = call.finish(samples, classes.FER2013)
    dataset.provenance = {
        "dataset": name, "split": split, "label_file": list_file.name,
        "label_file_sha256": hashlib.sha256(raw).hexdigest(),
        "photos": len({s.extra["photo"] for s in dataset.samples}), "faces": len(dataset),
        "photos_in_file": photos_in_file,
        **({"val_fraction": fraction, "split_seed": seed, "split_by": "photo"} if split in ("train", "val") else {}),
    }
    return dataset


def _expw_image_name(name: str, where: str) -> str:
    """An image name of ``label.lst``, normalised (``./a.jpg`` is ``a.jpg``: one photo, however spelled); one
    that is absolute or climbs out of the images folder (``..``) is an error."""
    import posixpath

    text = name.replace("\\", "/")
    normal = posixpath.normpath(text)
    if text.startswith("/") or normal == ".." or normal.startswith("../") or (len(text) > 1 and text[1] == ":"):
        raise AnnotationError(f"{where}: image name {name!r} points outside the dataset's Images/ folder; image "
                              f"names are relative to it (e.g. angry_actor_104.jpg).")
    return normal


def _expw_sample(line: str, where: str, images_dir: Path, sizes: dict, seen: dict) -> Sample:
    fields = line.split()
    if len(fields) != len(EXPW_COLUMNS):
        raise AnnotationError(f"{where}: {len(fields)} fields, expected {len(EXPW_COLUMNS)} "
                              f"({' '.join(EXPW_COLUMNS)}).")
    image_name, face_id = _expw_image_name(fields[0], where), fields[1]
    if face_id.isdigit():
        face_id = str(int(face_id))  # 01 and 1 are the same face
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
    if right - left < 1 or bottom - top < 1:
        raise AnnotationError(f"{where}: face box top {top:g} left {left:g} right {right:g} bottom {bottom:g} is "
                              f"less than a pixel wide or high; fix the line or remove it.")
    box = FaceBox(left, top, right, bottom)
    image_path = images_dir / image_name
    if image_name not in sizes:
        sizes[image_name] = image_header_size(image_path)
    size = sizes[image_name]
    if size is None or size[0] * size[1] > MAX_IMAGE_PIXELS:
        if image_path.is_file():
            try:
                load_image(image_path)  # raises the reason: over-size, corrupt, unsupported
            except ImageReadError as exc:
                raise ImageReadError(f"{where}: {exc}") from None
        raise ImageReadError(f"{where}: image {image_path} is missing or unreadable (or not a regular file).")
    width, height = size
    # the overhang allowed is a fraction of the box's side, but never more than of the image's own side
    tol_x = EXPW_BOX_TOLERANCE * min(box.width, width)
    tol_y = EXPW_BOX_TOLERANCE * min(box.height, height)
    if box.x1 < -tol_x or box.y1 < -tol_y or box.x2 > width + tol_x or box.y2 > height + tol_y:
        raise AnnotationError(f"{where}: face box left {left:g} top {top:g} right {right:g} bottom {bottom:g} does "
                              f"not fit the {width}×{height} image {image_name}; fix the line or remove it.")
    box = FaceBox(max(0.0, box.x1), max(0.0, box.y1), min(float(width), box.x2), min(float(height), box.y2))
    same_box = (image_name, box.as_tuple())
    if same_box in seen:  # one face listed twice under two ids (with the same or a conflicting label)
        raise AnnotationError(f"{where}: face {face_id} of {image_name} has the box of the face on line "
                              f"{seen[same_box]}; one face is one line.")
    seen[image_name, face_id] = seen[same_box] = where.rsplit(":", 1)[-1]
    return Sample(label, str(image_path), box=box,
                  extra={"photo": image_name, "face_id": face_id, "confidence": confidence})
