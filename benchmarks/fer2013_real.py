"""FER2013 (real faces): one-hot ResNet-18 vs LDL-VA ResNet-18, clean and with synthetic label noise (not a test).

    python -m benchmarks.fer2013_real [--fer2013 DIR] [--train-size 4000] [--epochs 3] [--noise 0,0.3,0.1]

Reads ``fer2013-dev.tar.gz`` from ``DIR`` (default: ``shared/data/fer2013`` in the first ancestor of this
repository that has one; exits 0 with a message when absent), extracts it once into ``--cache`` (default
``~/.cache/emotion-zoo/fer2013-dev``, never inside the repository) and, per noise rate, trains with the
engine (``zoo.train``):

1. ``fer_resnet18`` with one-hot targets on the (noisy) training labels;
2. ``ldlva_resnet18`` (``ldl_va``, ``neighbor_mode="memory_bank"``) whose neighbour space is pseudo-VA
   from a teacher: the one-hot model of step 1, i.e. trained on the **same noisy labels** (a teacher
   trained on clean labels would leak the clean labels into the noisy runs).

Noise is ``data.label_noise`` (uniform: exactly round(rate·N) training labels flipped to another class,
seed 0), applied to the training split only; both models of a rate see the same flips. Validation and
model selection use the ``val`` split (FER2013 PublicTest), always clean. Run directories (weights,
checkpoints, noise records) go to ``--runs`` (outside the repository); an interrupted benchmark resumes
each run from its checkpoint. The results JSON, a Markdown table and each run's resolved config are
written to ``--results`` (default ``benchmarks/results/fer2013_real/``: small JSON/Markdown only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "fer2013_real"
ARCHIVE = "fer2013-dev.tar.gz"


def find_fer2013() -> Path | None:
    for parent in REPO.parents:
        candidate = parent / "shared" / "data" / "fer2013"
        if (candidate / ARCHIVE).is_file():
            return candidate
    return None


def extract_once(archive: Path, cache: Path) -> Path:
    """Extract ``archive`` into ``cache`` unless a complete extraction is already there (marker file)."""
    marker = cache / ".extracted"
    if marker.is_file() and marker.read_text().strip() == f"{archive.stat().st_size}":
        return cache
    if REPO in cache.resolve().parents or cache.resolve() == REPO:
        sys.exit(f"--cache {cache} lies inside the repository; choose a folder outside it (FER2013 must not be "
                 f"committed).")
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    print(f"extracting {archive} -> {cache}", flush=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    shutil.rmtree(cache, ignore_errors=True)
    tmp.rename(cache)
    marker.write_text(f"{archive.stat().st_size}\n")
    return cache


def hardware() -> dict:
    import torch

    from zoo.apps.bench.timing import cpu_model

    cpu = cpu_model()
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "device": "cpu"}


def train_or_resume(name: str, model: str, overrides: dict, data: str, runs: Path, recipe: str | None = None,
                    val: str | None = None) -> Path:
    """Train ``runs/name``, resume it from its checkpoint, or leave a finished one (``eval.json``) alone; the
    run's wall time, summed over resumptions, goes to ``wall_time.json``. Returns the run directory."""
    import zoo
    from zoo.training.rundir import EVAL_JSON, LAST_CHECKPOINT

    out = runs / name
    timing = out / "wall_time.json"
    if not (out / EVAL_JSON).is_file():
        resume = (out / LAST_CHECKPOINT).exists()
        print(f"== {name}: {'resuming' if resume else 'training'} {model} -> {out}", flush=True)
        start = time.time()
        previous = json.loads(timing.read_text())["wall_s"] if resume and timing.is_file() else 0.0
        # without a checkpoint or eval.json, a run directory holds nothing to keep: start it again
        zoo.train(model, data=data, val=val, out=out, overrides=overrides, resume=resume, recipe=recipe,
                  overwrite=not resume)
        out.mkdir(parents=True, exist_ok=True)
        timing.write_text(json.dumps({"wall_s": previous + time.time() - start}))
    return out


def run_one(name: str, model: str, overrides: dict, data: str, runs: Path, results: Path,
            recipe: str | None = None) -> dict:
    """Train (or resume, or reuse a finished) run ``runs/name``; its summary row."""
    from zoo.training.rundir import EVAL_JSON, METRICS_LOG, RUN_CONFIG

    out = train_or_resume(name, model, overrides, data, runs, recipe)
    timing = out / "wall_time.json"
    config = json.loads((out / RUN_CONFIG).read_text())
    ev = json.loads((out / EVAL_JSON).read_text())
    history = [json.loads(line) for line in (out / METRICS_LOG).read_text().splitlines() if line.strip()]
    results.joinpath("configs").mkdir(parents=True, exist_ok=True)
    home = str(Path.home())
    results.joinpath("configs", f"{name}.json").write_text(
        json.dumps(config, indent=2).replace(home, "~") + "\n")
    wall = json.loads(timing.read_text())["wall_s"] if timing.is_file() else None
    return {
        "run": name, "model": config["model"], "target": "ldl_va" if "ldlva" in config["model"] else "onehot",
        "noise": (config["data"].get("label_noise") or {}).get("fraction", 0.0),
        "accuracy": ev["accuracy"], "macro_f1": ev["macro_f1"], "balanced_accuracy": ev["balanced_accuracy"],
        "best_epoch": ev.get("best_epoch"), "epochs": config["epochs"],
        "input_size": config["model_args"]["data"]["face_size"], "train_samples": config["data"]["train_subset"],
        "wall_s": round(wall, 1) if wall is not None else None,
        "val_accuracy_per_epoch": [round(h["val"]["accuracy"], 4) for h in history],
        "epoch_time_s": [round(h["time_s"], 1) for h in history],  # train + validation; varies with the load
        "uncertainty_auroc_flipped": uncertainty_auroc(out) if "ldlva" in config["model"] else None,
    }


def uncertainty_auroc(out: Path) -> float | None:
    """How well LDL-VA's per-sample uncertainty λ ranks the flipped labels above the clean ones (AUROC)."""
    import torch

    from zoo.ldl.target import readout_from_state_dict
    from zoo.training import checkpoint as ckpt
    from zoo.training.rundir import LAST_CHECKPOINT

    if not (out / "label_noise.json").is_file():
        return None
    tensors, _ = ckpt.load_checkpoint(out / LAST_CHECKPOINT)
    lamb = torch.as_tensor(readout_from_state_dict(tensors, prefix="target.")["uncertainty"]).double()
    flipped = torch.zeros(lamb.numel(), dtype=torch.bool)
    flipped[json.loads((out / "label_noise.json").read_text())["flipped_index"]] = True
    n1, n0 = int(flipped.sum()), int((~flipped).sum())
    ranks = lamb.argsort().argsort().double() + 1  # Mann-Whitney U; float λ, ties negligible
    return round((float(ranks[flipped].sum()) - n1 * (n1 + 1) / 2) / (n1 * n0), 4)


def markdown(rows: list[dict]) -> str:
    lines = ["| target | noise | val acc | val macro-F1 | best epoch / epochs | input | train samples | wall time |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        size = r["train_samples"]["size"] if r["train_samples"] else "all"
        lines.append(
            f"| {r['target']} (`{r['model']}`) | {r['noise']:.0%} | {r['accuracy']:.1%} | {r['macro_f1']:.3f} | "
            f"{r['best_epoch']} / {r['epochs']} | {r['input_size'][0]}×{r['input_size'][1]} grey→RGB | {size} | "
            f"{r['wall_s'] / 60:.1f} min |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fer2013", type=Path, default=None, help="folder holding fer2013-dev.tar.gz")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "emotion-zoo" / "fer2013-dev")
    parser.add_argument("--runs", type=Path, default=Path.home() / ".cache" / "emotion-zoo" / "fer2013-runs")
    parser.add_argument("--train-size", type=int, default=4000, help="stratified training subset (0 = all 28,709)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--face-size", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--noise", default="0,0.3,0.1", help="uniform noise rates, in run order")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where results.json, table.md, configs/ go")
    parser.add_argument("--ldl-target-args", default="{}", help='extra ldl_va target_args as JSON, e.g. '
                        '\'{"calibration_clamp": -1.3}\' (the official clamp)')
    parser.add_argument("--ldl-name-suffix", default="", help="appended to the LDL-VA run names (e.g. _clamp)")
    args = parser.parse_args()

    source = args.fer2013 or find_fer2013()
    if source is None or not (source / ARCHIVE).is_file():
        print(f"FER2013 development split not found ({source or 'no shared/data/fer2013 above ' + str(REPO)}); "
              f"pass --fer2013 DIR holding {ARCHIVE}. Nothing to do.")
        return
    import torch

    torch.set_num_threads(args.threads)
    root = extract_once(source / ARCHIVE, args.cache)
    data = f"fer2013:{root}"
    common = {
        "epochs": args.epochs, "batch_size": args.batch_size, "optimizer": {"name": "adam", "lr": args.lr, "eps": 1e-7},
        "schedule": {"name": "constant"}, "seed": args.seed, "progress": True, "num_workers": 0,
        "model_args.data.face_size": [args.face_size, args.face_size],
        "augmentation": {"face": "hflip", "context": None},
        "data.train_subset": {"size": args.train_size, "seed": args.seed} if args.train_size else None,
    }
    rows, started = [], time.time()
    hw = hardware()
    for rate in [float(r) for r in args.noise.split(",")]:
        tag = f"noise{int(round(rate * 100)):02d}"
        noise = {"data.label_noise": {"fraction": rate, "seed": args.seed, "mode": "uniform"} if rate else None}
        rows.append(run_one(f"onehot_{tag}", "fer_resnet18", {**common, **noise}, data, args.runs, args.results))
        from zoo.labels import FER2013
        from zoo.training.rundir import BEST_DIR

        teacher = f"local-dir:{args.runs / f'onehot_{tag}' / BEST_DIR}"

        ldl = {**common, **noise, "label_names": list(FER2013),
               "model_args.target_args.auxiliary": f"teacher:{teacher}",
               "model_args.target_args.neighbor_mode": "memory_bank",
               **{f"model_args.target_args.{k}": v for k, v in json.loads(args.ldl_target_args).items()}}
        # the paper's loss forms, with which the recorded runs were made (their run_config.json names the
        # recipe ldlva_resnet18_raf, which held these settings before it took the official code's forms)
        rows.append(run_one(f"ldlva_{tag}{args.ldl_name_suffix}", "ldlva_resnet18", ldl, data, args.runs,
                            args.results, recipe="ldlva_resnet18_raf_paper"))
        write(rows, hw, args, started)
    print(markdown(rows))


def write(rows: list[dict], hw: dict, args: argparse.Namespace, started: float) -> None:
    args.results.mkdir(parents=True, exist_ok=True)
    results = args.results.resolve()
    shown = results.relative_to(REPO) if REPO in results.parents else results
    command = (f"python -m benchmarks.fer2013_real --train-size {args.train_size} --epochs {args.epochs} "
               f"--face-size {args.face_size} --batch-size {args.batch_size} --lr {args.lr} --noise {args.noise} "
               f"--threads {args.threads} --seed {args.seed} --results {shown}")
    if args.ldl_target_args != "{}" or args.ldl_name_suffix:
        command += f" --ldl-target-args '{args.ldl_target_args}' --ldl-name-suffix '{args.ldl_name_suffix}'"
    doc = {"dataset": "FER2013 dev split: train (Training) -> val (PublicTest, 3,589 images)",
           "command": command, "hardware": {**hw, "load_average_when_written": os.getloadavg()},
           "total_wall_s_of_runs": round(sum(r["wall_s"] or 0.0 for r in rows), 1),
           "wall_s_of_this_invocation": round(time.time() - started, 1), "runs": rows}
    (args.results / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.results / "table.md").write_text(markdown(rows))


if __name__ == "__main__":
    main()
