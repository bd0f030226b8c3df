"""The NCAER-S builder (GLAMOR-Net, Le et al., 2022, "NCAER-S"): frames from CAER videos, train/test video-disjoint.

"For each video in the original CAER dataset, we split the video into multiple parts. Then we randomly
select one frame of each part"; "any original video that provides frames for the training set will be
removed from the testing set" [BLOG]. The number of parts was not published: it is ``parts`` here.

* Input: ``CAER_ROOT/<split>/<Class>/*.avi`` with split folders ``train``, ``validation`` (or ``val``) and
  ``test``. Videos are identified by the SHA-1 of their bytes: a video already used by an earlier split
  (order train, val, test) is left out of the later one, and so is a repeat inside a split; both are counted.
* Frames: ``num_frames`` is counted by decoding (container headers can be wrong); part ``k`` of ``parts``
  covers frames ``[⌊k·n/parts⌋, ⌊(k+1)·n/parts⌋)``, and one frame is drawn uniformly in it from a generator
  seeded with ``(seed, sha1(<split>/<Class>/<file>))``, so the result does not depend on processing order.
* Output (the GLAMOR-Net layout): ``OUT/images/<split>/<Class>/<video>_p<k>.jpg``,
  ``OUT/crop/<split>/<Class>/<video>_p<k>.txt`` (``x1,y1,x2,y2`` of the best face, ``0,0,0,0`` = none),
  ``OUT/manifest.csv`` (split, class, image, source video, its SHA-1, frame count, part, frame index, box,
  score) and ``OUT/build_info.json`` (parameters and counts). Same input + same arguments = same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.data import classes
from zoo.data.boxes import FaceBox, write_box_file
from zoo.data.detection import detect_faces
from zoo.data.records import ClassMap, find_split_dir
from zoo.errors import DataError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov")
#: CAER split folder -> NCAER-S split name, in priority order for video-disjointness
SPLITS = (("train", ("train",)), ("val", ("validation", "val")), ("test", ("test",)))
MANIFEST_COLUMNS = (
    "split", "class", "image", "source_video", "video_sha1", "num_frames", "part", "frame_index",
    "x1", "y1", "x2", "y2", "score",
)


@dataclass
class NcaerSummary:
    out: Path
    images: Counter = field(default_factory=Counter)
    counts: Counter = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _count_frames(path: Path) -> int:
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return 0
        count = 0
        while capture.grab():
            count += 1
        return count
    finally:
        capture.release()


def _read_frames(path: Path, indices: list[int]) -> dict[int, np.ndarray]:
    """Decode ``path`` sequentially and keep the frames at ``indices`` (BGR uint8)."""
    import cv2

    wanted = set(indices)
    frames: dict[int, np.ndarray] = {}
    capture = cv2.VideoCapture(str(path))
    try:
        index = 0
        while len(frames) < len(wanted) and capture.grab():
            if index in wanted:
                ok, frame = capture.retrieve()
                if not ok:
                    break
                frames[index] = frame
            index += 1
    finally:
        capture.release()
    return frames


def choose_frames(num_frames: int, parts: int, seed: int, key: str) -> list[int]:
    """One uniformly drawn frame index per part of ``num_frames`` split into ``parts`` equal parts."""
    n_parts = min(parts, num_frames)
    bounds = [(k * num_frames) // n_parts for k in range(n_parts + 1)]
    rng = np.random.default_rng([seed, int(hashlib.sha1(key.encode()).hexdigest()[:15], 16)])
    return [int(rng.integers(bounds[k], bounds[k + 1])) for k in range(n_parts)]


def build_ncaer(
    caer_root: str | Path,
    out: str | Path,
    parts: int = 5,
    seed: int = 0,
    detector: str | None = "haar",
    detector_args: dict | None = None,
    jpeg_quality: int = 95,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> NcaerSummary:
    """Build NCAER-S from the CAER videos under ``caer_root`` into ``out`` (see the module docstring)."""
    import cv2
    from PIL import Image


    caer_root, out = Path(caer_root), Path(out)
    if parts < 1:
        raise DataError(f"--parts must be at least 1, got {parts}.")
    if not caer_root.is_dir():
        raise DataError(f"CAER root {str(caer_root)!r} is not a folder (expected <split>/<Class>/*.avi).")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise DataError(f"Output folder {str(out)!r} is not empty; choose another one or pass --overwrite.")
        for sub in ("images", "crop", "manifest.csv", "build_info.json"):
            target = out / sub
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    class_map = ClassMap(classes.CAER, classes.CAER_ALIASES)
    summary = NcaerSummary(out)
    seen: dict[str, str] = {}  # sha1 -> split/class/name of the first video with these bytes
    rows: list[dict[str, object]] = []
    found_any = False
    for split, folder_names in SPLITS:
        split_dir = None
        for folder_name in folder_names:
            try:
                split_dir = find_split_dir(caer_root, folder_name, {})
                break
            except DataError:
                continue
        if split_dir is None:
            continue
        found_any = True
        class_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        unknown = [p.name for p in class_dirs if class_map.get(p.name) is None]
        if unknown:
            raise DataError(
                f"{split_dir}: unknown class folder(s) {', '.join(map(repr, unknown))}; CAER classes are "
                f"{', '.join(classes.CAER)} (Angry is accepted for Anger)."
            )
        for class_dir in class_dirs:
            class_name = classes.CAER[class_map.get(class_dir.name)]  # type: ignore[index]
            videos = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
            for video in videos:
                key = f"{split_dir.name}/{class_dir.name}/{video.name}"
                sha1 = _sha1(video)
                if sha1 in seen:
                    summary.counts[f"{split}_dropped_duplicate_video"] += 1
                    summary.skipped.append((key, f"same bytes as {seen[sha1]}"))
                    continue
                num_frames = _count_frames(video)
                if num_frames == 0:
                    summary.counts[f"{split}_unreadable_video"] += 1
                    summary.skipped.append((key, "no frame could be decoded"))
                    continue
                seen[sha1] = key
                if num_frames < parts:
                    summary.counts[f"{split}_videos_shorter_than_parts"] += 1
                indices = choose_frames(num_frames, parts, seed, key)
                frames = _read_frames(video, indices)
                image_dir = out / "images" / split / class_name
                crop_dir = out / "crop" / split / class_name
                image_dir.mkdir(parents=True, exist_ok=True)
                crop_dir.mkdir(parents=True, exist_ok=True)
                for part, frame_index in enumerate(indices):
                    frame = frames.get(frame_index)
                    if frame is None:
                        summary.counts[f"{split}_unreadable_frame"] += 1
                        summary.skipped.append((key, f"frame {frame_index} could not be decoded"))
                        continue
                    stem = f"{video.stem}_p{part}"
                    box: FaceBox | None = None
                    if detector:
                        rgb = Image.fromarray(np.ascontiguousarray(frame[:, :, ::-1]), "RGB")
                        faces = detect_faces(rgb, detector, **(detector_args or {}))
                        box = faces[0] if faces else None
                    if not cv2.imwrite(str(image_dir / f"{stem}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]):
                        raise DataError(f"Could not write {image_dir / (stem + '.jpg')}; check disk space.")
                    write_box_file(crop_dir / f"{stem}.txt", box)
                    x1, y1, x2, y2 = box.as_tuple() if box else (0, 0, 0, 0)
                    rows.append({
                        "split": split, "class": class_name, "image": f"{split}/{class_name}/{stem}.jpg",
                        "source_video": key, "video_sha1": sha1, "num_frames": num_frames, "part": part,
                        "frame_index": frame_index, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                        "score": f"{box.score:.4f}" if box else "",
                    })
                    summary.images[split] += 1
                    summary.counts[f"{split}_no_face"] += box is None
                if progress:
                    progress(f"{key}: {num_frames} frames -> {len(indices)} images")
    if not found_any:
        raise DataError(f"{caer_root}: no train, validation or test folder found (CAER layout <split>/<Class>/*.avi).")
    out.mkdir(parents=True, exist_ok=True)
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    info = {
        "source": str(caer_root), "parts": parts, "seed": seed, "detector": detector,
        "detector_args": detector_args or {}, "jpeg_quality": jpeg_quality, "opencv": cv2.__version__,
        "images": dict(summary.images), "counts": {k: v for k, v in summary.counts.items() if v},
        "skipped": summary.skipped,
    }
    (out / "build_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return summary
