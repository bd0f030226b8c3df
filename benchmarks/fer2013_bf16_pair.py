"""Does bf16 autocast cost accuracy? A paired short run of the ``fer2013_cnn`` recipe, fp32 against bf16.

    python -m benchmarks.fer2013_bf16_pair [--fer2013 DIR] [--train-size 8000] [--epochs 6]

Both runs use the same seed, the same stratified training subset and channels_last; only ``amp`` differs.
Model selection is not involved (``keep=last``) and validation is a split carved from the FER2013 training
folder (``val_fraction=0.1``), so PublicTest is not looked at. Resumable: runs live under
``~/.cache/emotion-zoo/fer2013-runs/bf16_pair/``. Writes ``benchmarks/results/fer2013_bf16_pair/``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.fer2013_real import ARCHIVE, REPO, extract_once, find_fer2013, hardware

RESULTS = REPO / "benchmarks" / "results" / "fer2013_bf16_pair"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fer2013", type=Path, default=None, help="folder holding fer2013-dev.tar.gz")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "emotion-zoo" / "fer2013-dev")
    parser.add_argument("--runs", type=Path, default=Path.home() / ".cache" / "emotion-zoo" / "fer2013-runs" / "bf16_pair")
    parser.add_argument("--train-size", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", default="auto")
    args = parser.parse_args()
    source = args.fer2013 or find_fer2013()
    if source is None or not (source / ARCHIVE).is_file():
        print(f"FER2013 development split not found; pass --fer2013 DIR holding {ARCHIVE}. Nothing to do.")
        return
    import zoo
    from zoo.training.rundir import EVAL_JSON, LAST_CHECKPOINT, METRICS_LOG

    root = extract_once(source / ARCHIVE, args.cache)
    rows = []
    for amp in ("none", "bf16"):
        out = args.runs / f"amp_{amp}"
        overrides = {"amp": amp, "epochs": args.epochs, "threads": args.threads, "progress": False,
                     "data.train_subset": {"size": args.train_size, "seed": 0},
                     "data.options": {"cache": "memory", "val_fraction": 0.1, "split_seed": 0}}
        timing = out / "wall_time.json"
        if not (out / EVAL_JSON).is_file():
            resume = (out / LAST_CHECKPOINT).exists()
            start = time.time()
            zoo.train("fer2013_cnn", data=f"fer2013:{root}", out=out, overrides=overrides, resume=resume)
            previous = json.loads(timing.read_text())["wall_s"] if resume and timing.is_file() else 0.0
            timing.write_text(json.dumps({"wall_s": previous + time.time() - start}))
        history = [json.loads(x) for x in (out / METRICS_LOG).read_text().splitlines() if x.strip()]
        rows.append({"amp": amp, "val_accuracy_per_epoch": [round(h["val"]["accuracy"], 4) for h in history],
                     "train_loss_per_epoch": [round(h["train_loss"], 4) for h in history],
                     "final_accuracy": history[-1]["val"]["accuracy"], "final_macro_f1": history[-1]["val"]["macro_f1"],
                     "train_s_per_epoch": [round(h["time_s"], 1) for h in history],
                     "wall_s": round(json.loads(timing.read_text())["wall_s"], 1)})
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"command": f"python -m benchmarks.fer2013_bf16_pair --train-size {args.train_size} --epochs {args.epochs}",
           "validation": "10% carved from the FER2013 training folder (split_seed 0), not PublicTest",
           "hardware": {**hardware(), "load_average_when_written": __import__("os").getloadavg()}, "runs": rows}
    (RESULTS / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = ["| amp | val acc per epoch | final val acc | final macro-F1 | s/epoch (median) |", "|---|---|---|---|---|"]
    for r in rows:
        per = sorted(r["train_s_per_epoch"])[len(r["train_s_per_epoch"]) // 2]
        lines.append(f"| {r['amp']} | {' '.join(f'{a:.3f}' for a in r['val_accuracy_per_epoch'])} | "
                     f"{r['final_accuracy']:.1%} | {r['final_macro_f1']:.3f} | {per} |")
    (RESULTS / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
