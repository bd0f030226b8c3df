"""Face detectors on the scene photos: faces found, false boxes and time per photo (not a test).

    python -m benchmarks.bench_detection [--scenes DIR] [--detector NAME[:JSON]]... [--repeats 3] [--threads 1]
                                         [--results DIR] [--per-image]

Reads the photos named in ``benchmarks/data/scene_faces.csv`` (this project's own annotation: 34 face boxes
in 14 photos, made by looking at each photo) from ``DIR`` (default: ``shared/data/scenes`` in the first
ancestor of this repository that has one; exits 0 with a message when absent). For each detector
(default: the raw Haar cascade as it was, Haar with NMS and its minimum score, MTCNN with and without
its pyramid limits) and photo:

* **found**: a detection whose IoU with an annotated face is >= 0.3, one detection per face, taken best
  score first (the IoU is lenient because detectors draw faces differently: Haar square, MTCNN tight);
* **false**: every other detection, duplicates included, except one lying mostly (>= 50 % of its area)
  inside an ``ignore`` region (the out-of-focus crowd in ``messi5``), which is counted as ``ignored``;
* **time**: the detector call on the decoded RGB photo, the median of ``--repeats`` runs after one warm-up
  call, with ``--threads`` torch / OpenCV threads, as CPU time of this process (the work done; what the wall
  time is on an idle machine with one thread) and as wall time (what it took on the machine as loaded: on a
  shared machine several times the CPU time). The load average before and after is recorded.

Writes ``results.json`` and ``table.md`` (the table in docs/prediction.md) to ``--results``
(default ``benchmarks/results/detection``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANNOTATIONS = REPO / "benchmarks" / "data" / "scene_faces.csv"
RESULTS = REPO / "benchmarks" / "results" / "detection"
#: the detectors compared by default: name, registry name, arguments
DEFAULT_DETECTORS = (
    ("haar (raw cascade, before)", "haar", {"nms_threshold": 1.0, "min_score": None}),
    ("haar (NMS + min score 3)", "haar", {}),
    ("mtcnn (default)", "mtcnn", {}),
    ("mtcnn, no pyramid limits (20 px faces at full size)", "mtcnn", {"min_face_fraction": 0.0, "max_size": 0}),
)
MATCH_IOU = 0.3
IGNORE_FRACTION = 0.5


def find_scenes() -> Path | None:
    for parent in REPO.parents:
        candidate = parent / "shared" / "data" / "scenes"
        if candidate.is_dir():
            return candidate
    return None


def read_annotations(path: Path = ANNOTATIONS) -> dict[str, dict[str, list[tuple[float, ...]]]]:
    """``{image: {"face": [boxes], "ignore": [boxes]}}`` from the CSV (``#`` lines are comments)."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
    out: dict[str, dict[str, list[tuple[float, ...]]]] = {}
    for row in csv.DictReader(lines):
        if row["kind"] not in ("face", "ignore"):
            raise ValueError(f"{path}: kind must be face or ignore, got {row['kind']!r} ({row['image']}).")
        entry = out.setdefault(row["image"], {"face": [], "ignore": []})
        entry[row["kind"]].append(tuple(float(row[k]) for k in ("x1", "y1", "x2", "y2")))
    return out


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def inside_fraction(box: tuple[float, ...], region: tuple[float, ...]) -> float:
    w = max(0.0, min(box[2], region[2]) - max(box[0], region[0]))
    h = max(0.0, min(box[3], region[3]) - max(box[1], region[1]))
    area = (box[2] - box[0]) * (box[3] - box[1])
    return w * h / area if area > 0 else 0.0


def match(detections: list[tuple[float, ...]], faces: list[tuple[float, ...]],
          ignore: list[tuple[float, ...]] = ()) -> dict[str, list[int]]:
    """Greedy one-to-one matching, best score first. ``detections`` are ``(x1, y1, x2, y2, score)``.

    Returns the indices of the detections that are ``found`` / ``false`` / ``ignored`` and of the ``missed``
    faces.
    """
    order = sorted(range(len(detections)), key=lambda i: -detections[i][4])
    free = set(range(len(faces)))
    result: dict[str, list[int]] = {"found": [], "false": [], "ignored": [], "missed": []}
    for i in order:
        box = detections[i][:4]
        best = max(free, key=lambda f: iou(box, faces[f]), default=None)
        if best is not None and iou(box, faces[best]) >= MATCH_IOU:
            free.discard(best)
            result["found"].append(i)
        elif any(inside_fraction(box, r) >= IGNORE_FRACTION for r in ignore):
            result["ignored"].append(i)
        else:
            result["false"].append(i)
    result["missed"] = sorted(free)
    return result


def hardware(threads: int) -> dict:
    import cv2
    import torch

    from zoo.apps.bench.timing import cpu_model

    cpu = cpu_model()
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "threads": threads, "torch": torch.__version__,
            "opencv": cv2.__version__, "python": platform.python_version(), "load_average": os.getloadavg()}


def bench_detector(label: str, name: str, args: dict, scenes: Path, annotations: dict, repeats: int) -> dict:
    from zoo.data import load_image
    from zoo.data.detection import get_face_detector

    detector = get_face_detector(name, **args)
    images = {image: load_image(scenes / image) for image in annotations}
    detector(next(iter(images.values())))  # warm-up: weights, OpenCV cascade, allocator
    rows = []
    for image, pil in images.items():
        times, cpu_times, boxes = [], [], []
        for _ in range(repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            boxes = detector(pil)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        dets = [(b.x1, b.y1, b.x2, b.y2, b.score) for b in boxes]
        m = match(dets, annotations[image]["face"], annotations[image]["ignore"])
        rows.append({
            "image": image, "size": list(pil.size), "faces": len(annotations[image]["face"]),
            "found": len(m["found"]), "false": len(m["false"]), "ignored": len(m["ignored"]),
            "missed": [list(annotations[image]["face"][f]) for f in m["missed"]],
            "false_boxes": [[round(v, 1) for v in dets[i][:4]] + [round(dets[i][4], 3)] for i in m["false"]],
            "found_scores": sorted(round(dets[i][4], 3) for i in m["found"]),
            "seconds": statistics.median(times), "cpu_seconds": statistics.median(cpu_times),
        })
    big = [r["cpu_seconds"] for r in rows if max(r["size"]) >= 1920]
    return {
        "detector": label, "name": name, "args": args, "images": rows,
        "faces": sum(r["faces"] for r in rows), "found": sum(r["found"] for r in rows),
        "false": sum(r["false"] for r in rows), "ignored": sum(r["ignored"] for r in rows),
        "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in rows),
        "max_cpu_seconds": max(r["cpu_seconds"] for r in rows),
        "cpu_seconds_1920": statistics.mean(big) if big else None,
        "cpu_seconds_1920x1280": next((r["cpu_seconds"] for r in rows if r["size"] == [1920, 1280]), None),
        "wall_seconds_1920x1280": next((r["seconds"] for r in rows if r["size"] == [1920, 1280]), None),
        "median_wall_seconds": statistics.median(r["seconds"] for r in rows),
    }


def table(results: list[dict]) -> str:
    """The table in docs/prediction.md: counts, then CPU times (median and max over the photos, the 1920×1280 photo, the
    mean of the six 1920-wide photos) and the 1920×1280 photo's wall time as measured."""
    lines = ["| detector | faces found | false boxes | CPU / photo: median (max) | 1920×1280 photo: CPU (wall) "
             "| 1920-wide photos: CPU, mean |", "|---|---|---|---|---|---|"]
    for r in results:
        def ms(s):
            return "–" if s is None else f"{1000 * s:.0f} ms"
        lines.append(f"| {r['detector']} | {r['found']} / {r['faces']} | {r['false']} | "
                     f"{ms(r['median_cpu_seconds'])} ({ms(r['max_cpu_seconds'])}) | "
                     f"{ms(r['cpu_seconds_1920x1280'])} ({ms(r['wall_seconds_1920x1280'])}) | "
                     f"{ms(r['cpu_seconds_1920'])} |")
    return "\n".join(lines) + "\n"


def parse_detector(spec: str) -> tuple[str, str, dict]:
    from zoo.names import split_spec
    name, args = split_spec(spec)
    try:
        parsed = json.loads(args) if args else {}
    except json.JSONDecodeError as exc:
        sys.exit(f"--detector {spec!r}: the arguments after ':' must be a JSON object ({exc}).")
    return spec, name, parsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=Path, default=None, help="folder of the scene photos")
    parser.add_argument("--annotations", type=Path, default=ANNOTATIONS)
    parser.add_argument("--detector", action="append", default=None,
                        help="NAME[:JSON arguments], repeatable (default: raw haar, haar, mtcnn)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per photo (median kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--per-image", action="store_true", help="print every photo's counts")
    args = parser.parse_args(argv)

    scenes = args.scenes or find_scenes()
    if scenes is None or not scenes.is_dir():
        print("No scene photos found (shared/data/scenes above the checkout, or --scenes DIR); nothing to do.")
        return 0
    annotations = read_annotations(args.annotations)
    absent = [name for name in annotations if not (scenes / name).is_file()]
    if absent:
        print(f"{scenes} lacks {len(absent)} of the annotated photos ({', '.join(absent[:3])}...); nothing to do.")
        return 0
    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    detectors = [parse_detector(s) for s in args.detector] if args.detector else list(DEFAULT_DETECTORS)
    machine = hardware(args.threads)
    results = []
    for label, name, det_args in detectors:
        result = bench_detector(label, name, det_args, scenes, annotations, args.repeats)
        results.append(result)
        print(f"{label}: found {result['found']}/{result['faces']}, false {result['false']}, "
              f"median CPU {1000 * result['median_cpu_seconds']:.0f} ms", flush=True)
        if args.per_image:
            for r in result["images"]:
                print(f"    {r['image']:<26}{r['found']}/{r['faces']} false {r['false']} "
                      f"CPU {1000 * r['cpu_seconds']:.0f} ms wall {1000 * r['seconds']:.0f} ms "
                      f"scores {r['found_scores']} false {r['false_boxes']}")
    machine["load_average_after"] = os.getloadavg()
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "results.json").write_text(json.dumps({"machine": machine, "results": results}, indent=1) + "\n")
    text = table(results)
    (args.results / "table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
