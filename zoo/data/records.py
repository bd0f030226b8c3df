"""The dataset every reader returns: samples (image source, label, face box) + the shared preprocessing.

Readers only parse their on-disk format into :class:`Sample` records; :class:`FaceDataset` loads, crops,
masks, resizes, augments and normalises them through :mod:`zoo.data.transforms` and fulfils the
``zoo.data`` contract (``ds[i]`` -> ``{"face", "context", "label", "index"}``; ``label_names``,
``num_classes``, ``labels``). Everything a reader skipped or substituted is counted in ``ds.report``.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from zoo.config import DataConfig
from zoo.data import VA_ATTRIBUTE
from zoo.data.boxes import FaceBox
from zoo.data.classes import class_key
from zoo.data.images import image_from_array, load_image
from zoo.data.transforms import (
    MISSING_FACE_POLICIES,
    MissingFaceError,
    PreparedStreams,
    finish_streams,
    parse_augment,
    prepare_streams,
)
from zoo.errors import DataError, ImageReadError, UnknownClassError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")
ON_ERROR = ("raise", "skip")
#: the face box is the whole image (pre-cropped face datasets: FER2013, RAF-DB aligned, SFEW, ...)
WHOLE: Literal["whole"] = "whole"


class DataWarning(UserWarning):
    """Samples were skipped or substituted under an explicit option; ``dataset.report`` lists them."""


@dataclass
class Sample:
    """One training example: where its pixels come from, its label and its face box."""

    label: int
    path: str | None = None
    #: in-memory uint8 pixels (H×W grey or H×W×3), e.g. FER2013's CSV; used instead of ``path``
    pixels: np.ndarray | None = None
    #: a FaceBox, ``None`` (no face found) or ``"whole"`` (the image is the face)
    box: FaceBox | None | Literal["whole"] = WHOLE
    #: optional per-sample reference label distribution (FER+ votes)
    distribution: tuple[float, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return self.path or "<in-memory pixels>"


@dataclass
class DatasetReport:
    """What a reader left out or changed, with the reason for each (shown by ``str(report)``)."""

    skipped: list[tuple[str, str]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def skip(self, where: str, reason: str) -> None:
        self.skipped.append((where, reason))
        self.counts["skipped"] += 1

    def __bool__(self) -> bool:
        return bool(self.skipped or self.counts)

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in sorted(self.counts.items())]
        lines = [", ".join(parts) or "nothing skipped"]
        lines += [f"  skipped {w}: {r}" for w, r in self.skipped[:20]]
        if len(self.skipped) > 20:
            lines.append(f"  ... and {len(self.skipped) - 20} more (dataset.report.skipped)")
        return "\n".join(lines)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise DataError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}.")
    return value


def fail_or_skip(report: DatasetReport, on_error: str, error: DataError, where: str) -> None:
    """Raise ``error`` (``on_error='raise'``) or record it as a skip (``'skip'``)."""
    if on_error == "raise":
        raise error
    report.skip(where, str(error))


class ClassMap:
    """Folder or label names -> class index, ignoring case and surrounding spaces, with explicit aliases (never
    guessed). Two class names that differ only in case or spaces (``Happy`` / ``happy``) are refused: one of
    them would be a class no sample ever gets."""

    def __init__(self, label_names: Sequence[str], aliases: dict[str, str] | None = None) -> None:
        self.label_names = tuple(label_names)
        self._index: dict[str, int] = {}
        for i, name in enumerate(self.label_names):
            if not isinstance(name, str) or not name.strip():
                raise DataError(f"Class names must be non-empty strings, got {name!r} in {list(self.label_names)}.")
            key = class_key(name)
            if key in self._index:
                raise DataError(
                    f"Class names {self.label_names[self._index[key]]!r} and {name!r} differ only in case or "
                    f"surrounding spaces, so they would be two classes for one emotion; rename or merge the folders "
                    f"(or labels) so that each class has one spelling."
                )
            self._index[key] = i
        for alias, target in (aliases or {}).items():
            self._index[class_key(alias)] = self._index[class_key(target)]

    def get(self, name: str) -> int | None:
        return self._index.get(class_key(name))

    def known(self) -> str:
        return ", ".join(sorted(self._index))


def list_images(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: p.name,
    )


def scan_class_folders(
    split_dir: Path, class_map: ClassMap, on_error: str, report: DatasetReport
) -> list[tuple[Path, int]]:
    """``split_dir/<Class>/*`` -> (image path, label); unknown class folders are an error naming them."""
    if not split_dir.is_dir():
        raise DataError(f"Folder {str(split_dir)!r} does not exist; check the dataset path and split.")
    folders = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [f.name for f in folders if class_map.get(f.name) is None]
    if unknown:
        error = UnknownClassError(
            f"{split_dir}: unknown class folder(s) {', '.join(map(repr, unknown))}; this dataset's classes are "
            f"{', '.join(class_map.label_names)} (accepted folder names: {class_map.known()}). Rename or remove "
            f"the folder(s), or pass on_error='skip' to leave them out (they are counted in dataset.report)."
        )
        if on_error == "raise":
            raise error
        for name in unknown:
            report.skip(str(split_dir / name), "unknown class folder")
    items = []
    for folder in folders:
        label = class_map.get(folder.name)
        if label is not None:
            items.extend((path, label) for path in list_images(folder))
    if not items:
        raise DataError(f"No images found under {str(split_dir)!r} (expected {split_dir}/<Class>/<image>).")
    return items


class SplitNotFoundError(DataError):
    """No folder for the asked split; ``splits`` are the splits that are there (canonical names: ``test`` for a
    ``PrivateTest`` folder), so a caller that asked for none can take the only one."""

    def __init__(self, message: str, split: str, splits: Sequence[str]) -> None:
        super().__init__(message)
        self.split = split
        self.splits = tuple(splits)


def find_split_dir(root: Path, split: str, aliases: dict[str, Sequence[str]]) -> Path:
    """``root/<split>`` under any of the split's accepted names (case-insensitive). Missing, it is a
    :class:`SplitNotFoundError` listing the split folders that are there (those named as a split in ``aliases``)."""
    names = [split, *aliases.get(split, ())]
    present = {p.name.lower(): p for p in root.iterdir() if p.is_dir()} if root.is_dir() else {}
    for name in names:
        if name.lower() in present:
            return present[name.lower()]
    canonical = {alias.lower(): key for key, others in aliases.items() for alias in (key, *others)}
    splits = sorted({canonical[name] for name in present if name in canonical})
    folders = ", ".join(sorted(p.name for p in present.values())) or "nothing"
    shown = sorted(present[n].name + ("" if n == canonical[n] else f" (= {canonical[n]})") for n in present
                   if n in canonical)
    found = (f"found the split folder(s) {', '.join(shown)}: ask for one of them as the split "
             f"(zoo-cli eval --split NAME; data.val_split=NAME in training)" if splits
             else f"found no split folder (only {folders}); put the class folders under {root}/<split>/")
    raise SplitNotFoundError(f"{root}: no folder for split {split!r} (looked for {', '.join(names)}); {found}.",
                             split, splits)


def seeded_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(kept, held_out)`` of a seeded random split holding out ``round(fraction·n)`` items."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"val_fraction must be between 0 and 1, got {fraction!r}.")
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(fraction * n)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def image_header_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(width, height) of an image file as :func:`load_image` will return it (EXIF orientation applied), read
    from the header only; None when the file is missing or unreadable (or not a regular file: a FIFO would block)."""
    if not Path(path).is_file():
        return None
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - an unreadable file is reported when it is loaded (or by verify=True)
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


class FaceDataset(Dataset):
    """A list of :class:`Sample` records behind the shared face/context preprocessing.

    Options (every reader accepts them): ``data_config`` (:class:`zoo.config.DataConfig`; default
    ``DataConfig()``), ``train`` (random crop and augmentations), ``streams`` ("both", "face", "context"),
    ``missing_face`` (see :mod:`zoo.data.transforms`), ``face_augment`` / ``context_augment`` (names or
    sets from ``zoo.data.transforms.AUGMENT_PRESETS``), ``cache``: ``None`` (default), ``"memory"`` (keeps
    the decoded, cropped, masked and resized uint8 streams in this process, so later epochs skip decoding;
    DataLoader workers each keep their own, so use it with ``num_workers=0`` or persistent workers), or a
    folder path (the same streams as one ``.npy`` per sample, shared by all workers and runs; the
    sub-folder name is a hash of the samples, boxes, sizes, interpolation and masking, so a change of any
    of them never reads stale pixels; so does replacing an image file, as each file's size and modification
    time are part of the hash).
    """

    def __init__(
        self,
        samples: Iterable[Sample],
        label_names: Sequence[str],
        *,
        name: str = "dataset",
        data_config: DataConfig | dict | None = None,
        train: bool = False,
        streams: str = "both",
        missing_face: str = "zeros",
        face_augment: str | Sequence[str] | None = None,
        context_augment: str | Sequence[str] | None = None,
        cache: str | None = None,
        report: DatasetReport | None = None,
        image_loader: Callable[[Sample], Image.Image] | None = None,
    ) -> None:
        if isinstance(data_config, dict):
            from zoo.config import _data_config_from_dict

            data_config = _data_config_from_dict(data_config)
        self.data_config = data_config or DataConfig()
        self.train = bool(train)
        self.streams = check_choice("streams", streams, ("both", "face", "context"))
        self.missing_face = check_choice("missing_face", missing_face, MISSING_FACE_POLICIES)
        self.face_augment = parse_augment(face_augment)
        self.context_augment = parse_augment(context_augment)
        self.cache_mode = "none" if cache is None else ("memory" if cache == "memory" else "disk")
        self._cache_root = Path(cache) if self.cache_mode == "disk" else None  # type: ignore[arg-type]
        self._cache_dir: Path | None = None
        self._cache: dict[int, PreparedStreams] = {}
        self.report = report or DatasetReport()
        self.name = name
        self.label_names = tuple(label_names)
        self.num_classes = len(self.label_names)
        self._image_loader = image_loader
        samples = self._check_boxes(list(samples))
        if self.missing_face == "skip":
            kept = []
            for sample in samples:
                if sample.box is None:
                    self.report.skip(sample.where, "no face (missing_face='skip')")
                else:
                    kept.append(sample)
            samples = kept
        no_face = sum(1 for s in samples if s.box is None)
        if no_face:
            self.report.counts[f"no_face_{self.missing_face}"] += no_face
        self.samples = samples
        bad = [s.label for s in samples if not 0 <= s.label < self.num_classes]
        if bad:
            raise DataError(f"{name}: labels {sorted(set(bad))[:10]} are outside 0..{self.num_classes - 1}.")
        self.labels = torch.tensor([s.label for s in samples], dtype=torch.long)
        if samples and samples[0].distribution is not None:
            self.label_distribution = torch.tensor([s.distribution for s in samples], dtype=torch.float32)
        self._set_va(samples)
        if self.report:
            warnings.warn(f"{name}: {self.report}", DataWarning, stacklevel=3)

    def _check_boxes(self, samples: list[Sample]) -> list[Sample]:
        """At open time: a box with a NaN or infinite coordinate is an error naming the sample; a box entirely
        outside its image (size read from the file header) is a sample without a face, counted in
        ``report.counts["box_outside_image"]`` and handled by ``missing_face`` like any other."""
        import dataclasses
        import math

        checked = []
        outside = 0
        for sample in samples:
            box = sample.box
            if isinstance(box, FaceBox):
                if not all(math.isfinite(v) for v in (box.x1, box.y1, box.x2, box.y2)):
                    raise DataError(f"{sample.where}: face box {box.x1}, {box.y1}, {box.x2}, {box.y2} has a NaN or "
                                    f"infinite coordinate; fix the annotation.")
                size = self._image_size(sample)
                if size is not None and box.clamp(*size) is None:
                    if self.missing_face == "error":
                        raise MissingFaceError(
                            f"{sample.where}: face box {box.as_tuple()} lies outside the {size[0]}×{size[1]} image; "
                            f"fix the annotation, or choose missing_face='zeros', 'whole' or 'skip'."
                        )
                    outside += 1
                    sample = dataclasses.replace(sample, box=None)
            checked.append(sample)
        if outside:
            self.report.counts["box_outside_image"] += outside
        return checked

    def _image_size(self, sample: Sample) -> tuple[int, int] | None:
        """(width, height) as :func:`load_image` will return it, from the header only; None if unknown."""
        if sample.pixels is not None:
            return int(sample.pixels.shape[1]), int(sample.pixels.shape[0])
        if self._image_loader is not None or sample.path is None:
            return None
        return image_header_size(sample.path)

    def __len__(self) -> int:
        return len(self.samples)

    def _set_va(self, samples: Sequence[Sample]) -> None:
        """Valence-arousal from the samples' ``extra["va"]`` as ``self.va`` (N×2; :data:`zoo.data.VA_ATTRIBUTE`)."""

        if samples and "va" in samples[0].extra:
            setattr(self, VA_ATTRIBUTE, torch.tensor([s.extra["va"] for s in samples], dtype=torch.float32))

    def load_image(self, index: int) -> Image.Image:
        sample = self.samples[index]
        if self._image_loader is not None:
            return self._image_loader(sample)
        if sample.pixels is not None:
            return image_from_array(sample.pixels, source=f"{self.name}[{index}]")
        if sample.path is None:
            raise DataError(f"{self.name}[{index}] has neither a path nor pixels.")
        return load_image(sample.path)

    def face_box(self, index: int, image: Image.Image) -> FaceBox | None:
        box = self.samples[index].box
        if box == WHOLE:
            return FaceBox(0, 0, image.size[0], image.size[1])
        return box  # type: ignore[return-value]

    def prepared(self, index: int) -> PreparedStreams:
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        if self.cache_mode == "disk":
            cached = self._read_disk_cache(index)
            if cached is not None:
                return cached
        image = self.load_image(index)
        try:
            prepared = prepare_streams(
                image, self.face_box(index, image), self.data_config, self.streams, self.missing_face
            )
        except MissingFaceError as exc:
            raise MissingFaceError(f"{self.samples[index].where}: {exc}") from None
        if self.cache_mode == "memory":
            self._cache[index] = prepared
        elif self.cache_mode == "disk":
            self._write_disk_cache(index, prepared)
        return prepared

    def cache_dir(self) -> Path:
        """The folder of this dataset's disk cache (``cache=PATH``), named by a fingerprint of its inputs."""
        if self._cache_root is None:
            raise DataError(f"{self.name}: no disk cache; open the dataset with cache='/some/folder'.")
        if self._cache_dir is None:
            import hashlib
            import json

            cfg = self.data_config

            def stamp(path: str | None) -> list[int] | None:
                try:
                    st = os.stat(path) if path is not None else None
                except OSError:
                    return None
                # ctime and inode too: cp -p / rsync -t restore the mtime of a replaced image, never its ctime
                return None if st is None else [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]

            key = {
                "version": 2,
                "streams": self.streams,
                "missing_face": self.missing_face,
                "data": [cfg.face_size, cfg.context_resize, cfg.interpolation, cfg.mask_face_in_context, cfg.grayscale,
                         # appended only when set, so caches written before these settings keep their names
                         *([] if cfg.antialias and cfg.context_jpeg_quality is None
                           else [cfg.antialias, cfg.context_jpeg_quality]),
                         *([cfg.face_margin] if cfg.face_margin else []),
                         *([cfg.align] if cfg.align != "none" else []),
                         *([] if cfg.context_mask_fill == "black" and cfg.context_grayscale is None
                           else [cfg.context_mask_fill, cfg.context_grayscale])],
                "samples": [
                    [s.path, s.box if isinstance(s.box, str) else (s.box.as_tuple() if s.box else None),
                     None if s.pixels is None else hashlib.sha1(s.pixels.tobytes()).hexdigest(),
                     repr(s.extra.get("scene")), stamp(s.path)]
                    for s in self.samples
                ],
            }
            digest = hashlib.sha1(json.dumps(key, default=list).encode()).hexdigest()[:20]
            self._cache_dir = self._cache_root / f"{self.name.split('[')[0]}-{digest}"
            self._cache_dir.mkdir(parents=True, exist_ok=True)
        return self._cache_dir

    def _read_disk_cache(self, index: int) -> PreparedStreams | None:
        path = self.cache_dir() / f"{index}.npy"
        if not path.is_file():
            return None
        expected = 1 + sum(3 * h * w for h, w, used in (
            (*self.data_config.face_size, self.streams in ("both", "face")),
            (*self.data_config.context_resize, self.streams in ("both", "context"))) if used)
        try:
            array = np.load(path, allow_pickle=False)
            if array.dtype != np.uint8 or array.shape != (expected,):
                raise ValueError(f"{array.dtype} array of shape {array.shape}, expected uint8 ({expected},)")
        except (OSError, ValueError, EOFError) as exc:
            warnings.warn(f"{self.name}: the cache file {path} is damaged ({exc}); it is rebuilt from the image.",
                          DataWarning, stacklevel=3)
            return None
        flat = torch.from_numpy(array)
        face = context = None
        offset = 0
        if self.streams in ("both", "face"):
            fh, fw = self.data_config.face_size
            face = flat[: 3 * fh * fw].view(3, fh, fw)
            offset = 3 * fh * fw
        if self.streams in ("both", "context"):
            rh, rw = self.data_config.context_resize
            context = flat[offset : offset + 3 * rh * rw].view(3, rh, rw)
        return PreparedStreams(face, context, bool(flat[-1]))

    def _write_disk_cache(self, index: int, prepared: PreparedStreams) -> None:
        parts = [t.reshape(-1) for t in (prepared.face, prepared.context) if t is not None]
        parts.append(torch.tensor([int(prepared.face_found)], dtype=torch.uint8))
        path = self.cache_dir() / f"{index}.npy"
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, torch.cat(parts).numpy())
        os.replace(tmp, path)  # atomic: a concurrent reader sees the whole file or none

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.name}: index {index} out of range for {len(self)} samples.")
        index = index % len(self)
        item: dict[str, Any] = finish_streams(
            self.prepared(index), self.data_config, self.train, self.face_augment, self.context_augment
        )
        item["label"] = int(self.samples[index].label)
        item["index"] = index
        if self.samples[index].distribution is not None:
            # "distribution": the reference the evaluation compares predictions with (KL, JS, majority)
            item["label_distribution"] = item["distribution"] = self.label_distribution[index]
        return item

    def verify_images(self, on_error: str = "raise", headers_only: bool = False) -> None:
        """Decode every image now; unreadable ones raise, or are dropped and counted with ``on_error='skip'``.
        ``headers_only``: read each file's header only (missing, not an image, over-size), which is what
        ``on_error='skip'`` alone does when a dataset is opened; ``verify=True`` decodes them all."""
        from zoo.data.images import MAX_IMAGE_PIXELS

        kept = []
        for i, sample in enumerate(self.samples):
            try:
                if not headers_only:
                    self.load_image(i)
                elif sample.pixels is None and self._image_loader is None and sample.path is not None:
                    size = image_header_size(sample.path)
                    if size is None or size[0] * size[1] > MAX_IMAGE_PIXELS:
                        self.load_image(i)  # raises the reason
            except ImageReadError as exc:
                fail_or_skip(self.report, on_error, exc, sample.where)
                continue
            kept.append(sample)
        if len(kept) != len(self.samples):
            self.samples = kept
            self.labels = torch.tensor([s.label for s in kept], dtype=torch.long)
            if hasattr(self, "label_distribution"):
                self.label_distribution = torch.tensor([s.distribution for s in kept], dtype=torch.float32)
            self._set_va(kept)
            self._cache.clear()
            self._cache_dir = None
            warnings.warn(f"{self.name}: {self.report}", DataWarning, stacklevel=2)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, {len(self)} samples, {self.num_classes} classes, "
            f"streams={self.streams!r}, train={self.train})"
        )


def relpath(path: Path, root: Path) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")
