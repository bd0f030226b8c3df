"""LDL-VA against one-hot and label smoothing under uniform label noise, on real faces (FER2013; not a test).

    python -m benchmarks.fer2013_noise [--noise 0.3,0.5] [--seeds 0,1] [--epochs 40] [--train-size 8000]

LDLVA's claim (Le et al., WACV 2023, Table 5: +4.7 points at 10% and +6.93 at 30% noise on RAF-DB) is that
label distributions built from valence-arousal neighbours protect a model from memorising flipped labels.
Memorisation takes many epochs, so each run here is long (40 epochs by default) on a small set:

* **data:** FER2013's training split; a seeded 10% (``val_fraction=0.1``, ``split_seed=0``) is carved off as
  the clean validation split, which also carries the FER+ vote distributions (``votes=``, 10 annotators
  per image) for KL(votes ‖ prediction). From the remaining 90%, a class-stratified subset of
  ``--train-size`` images (``data.train_subset``, seed = the run's seed) gets exactly round(rate·N) labels
  flipped uniformly to another class (``data.label_noise``, seed = the run's seed). PublicTest is not read.
* **model and recipe:** the bundled model's recipe ``fer2013_cnn`` (SGD Nesterov 0.1, weight decay 5e-4,
  warm-up + cosine, bf16) on a half-width ``fer_cnn`` (16-32-64-128 channels, 0.3 M parameters) so that 12
  runs fit on a 2-core CPU, 40 epochs; the final epoch is kept. Face augmentation is horizontal flip only
  (``--augmentation``): with the recipe's flip + affine + erasing, a 30%-noise one-hot run was still climbing
  at epoch 28 of 45 (51% validation accuracy, no memorisation in sight).
* **targets:** ``onehot`` (label smoothing 0), ``smooth`` (label smoothing 0.1, the cheap baseline) and
  ``ldl_va`` (memory bank; pseudo-VA from a teacher: the one-hot run of the same noise rate and seed, i.e.
  trained on the **same noisy labels**).

Reported per run: best and final-epoch validation accuracy, final KL to the FER+ votes and FER+ majority
agreement, and for LDL-VA the AUROC of its per-sample uncertainty λ for the flipped samples. Runs live in
``--runs`` (outside the repository) and resume from their checkpoints; results (JSON, Markdown table, the
validation curves as PNG) go to ``--results``. Exits 0 with a message when the data are absent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks.fer2013_real import (
    ARCHIVE,
    REPO,
    extract_once,
    find_fer2013,
    hardware,
    train_or_resume,
    uncertainty_auroc,
)
from zoo.training.rundir import BEST_DIR, EVAL_JSON

RESULTS = REPO / "benchmarks" / "results" / "fer2013_noise"
VOTES = "ferplus-votes-dev.csv"
TARGETS = ("onehot", "smooth", "ldl_va")


def overrides_for(target: str, rate: float, seed: int, args: argparse.Namespace, teacher: Path | None) -> dict:
    data_options = {"cache": "memory", "val_fraction": 0.1, "split_seed": 0, "votes": str(args.votes)}
    common = {
        "epochs": args.epochs, "seed": seed, "threads": args.threads, "progress": False,
        "data.options": data_options,
        "data.train_subset": {"size": args.train_size, "seed": seed},
        "data.label_noise": {"fraction": rate, "seed": seed, "mode": "uniform"},
        "model_args.backbone_args": {"channels": list(args.channels)},
        "augmentation": {"face": args.augmentation, "context": None},
    }
    if target == "onehot":
        return {**common, "model_args.target_args": {"label_smoothing": 0.0}}
    if target == "smooth":
        return {**common, "model_args.target_args": {"label_smoothing": 0.1}}
    return {**common, "model_args.target": "ldl_va",
            "model_args.target_args": {"auxiliary": f"teacher:local-dir:{teacher}", "neighbor_mode": "memory_bank"}}


def summarise(out: Path, target: str, rate: float, seed: int) -> dict:
    from zoo.training.rundir import METRICS_LOG, read_metrics_log

    history = read_metrics_log(out / METRICS_LOG)
    final = json.loads((out / EVAL_JSON).read_text())
    curve = [row["val"]["accuracy"] for row in history]
    wall = out / "wall_time.json"
    return {
        "target": target, "noise": rate, "seed": seed, "run": out.name,
        "best_accuracy": max(curve), "best_epoch": 1 + curve.index(max(curve)),
        "final_accuracy": final["accuracy"], "final_macro_f1": final["macro_f1"],
        "final_kl_votes": final.get("kl"), "final_majority_agreement": final.get("majority_agreement"),
        "kl_votes_per_epoch": [row["val"].get("kl") for row in history],
        "val_accuracy_per_epoch": curve,
        "lambda_auroc_flipped": uncertainty_auroc(out) if target == "ldl_va" else None,
        "wall_s": round(json.loads(wall.read_text())["wall_s"], 1) if wall.is_file() else None,
    }


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1%}"
    return f"{statistics.mean(values):.1%} ± {statistics.stdev(values):.1%}"


def mean_of(group: list[dict], key: str, spec: str) -> str:
    """The mean of ``key`` over the runs that have it, formatted; "–" when none has it."""
    values = [r[key] for r in group if r[key] is not None]
    return format(statistics.mean(values), spec) if values else "–"


def markdown(rows: list[dict]) -> str:
    lines = ["| noise | target | best val acc | final val acc | drop best→final | KL(votes‖pred) | FER+ majority "
             "| λ AUROC (flipped) | seeds |", "|---|---|---|---|---|---|---|---|---|"]
    for rate in sorted({r["noise"] for r in rows}):
        for target in TARGETS:
            group = [r for r in rows if r["noise"] == rate and r["target"] == target]
            if not group:
                continue
            best = [r["best_accuracy"] for r in group]
            final = [r["final_accuracy"] for r in group]
            drop = [b - f for b, f in zip(best, final, strict=True)]
            lines.append(
                f"| {rate:.0%} | {target} | {mean_sd(best)} | {mean_sd(final)} | {statistics.mean(drop) * 100:.1f} pts "
                f"| {mean_of(group, 'final_kl_votes', '.3f')} | {mean_of(group, 'final_majority_agreement', '.1%')} "
                f"| {mean_of(group, 'lambda_auroc_flipped', '.3f')} | {len(group)} |")
    return "\n".join(lines) + "\n"


def plot_curves(rows: list[dict], path: Path) -> None:
    from zoo.viz import pyplot, save_figure

    plt = pyplot()

    rates = sorted({r["noise"] for r in rows})
    fig, axes = plt.subplots(1, len(rates), figsize=(5.5 * len(rates), 4), squeeze=False)
    for ax, rate in zip(axes[0], rates, strict=True):
        for target, colour in zip(TARGETS, ("tab:red", "tab:blue", "tab:green"), strict=True):
            group = [r for r in rows if r["noise"] == rate and r["target"] == target]
            for i, r in enumerate(group):
                curve = r["val_accuracy_per_epoch"]
                ax.plot(range(1, len(curve) + 1), [100 * a for a in curve], color=colour, alpha=0.8,
                        linestyle="-" if i == 0 else "--", label=f"{target} (seed {r['seed']})")
        ax.set_title(f"FER2013, {rate:.0%} uniform label noise")
        ax.set_xlabel("epoch")
        ax.set_ylabel("clean validation accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fer2013", type=Path, default=None, help="folder holding fer2013-dev.tar.gz")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "emotion-zoo" / "fer2013-dev")
    parser.add_argument("--runs", type=Path, default=Path.home() / ".cache" / "emotion-zoo" / "fer2013-noise")
    parser.add_argument("--noise", default="0.3,0.5", help="uniform noise rates, in run order")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--augmentation", default="hflip", help="face augmentation of the training split (the "
                        "recipe's 'fer' = flip, affine and erasing slows memorisation beyond 45 epochs)")
    parser.add_argument("--train-size", type=int, default=8000)
    parser.add_argument("--channels", default="16,32,64,128", help="fer_cnn stage widths")
    parser.add_argument("--threads", default="auto")
    parser.add_argument("--targets", default=",".join(TARGETS), help="subset of onehot,smooth,ldl_va")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true", help="summarise finished runs, train nothing")
    args = parser.parse_args()
    args.channels = [int(c) for c in args.channels.split(",")]
    args.threads = args.threads if args.threads == "auto" else int(args.threads)

    source = args.fer2013 or find_fer2013()
    if source is None or not (source / ARCHIVE).is_file() or not (source / VOTES).is_file():
        print(f"FER2013 development split or FER+ votes not found ({source or 'no shared/data/fer2013 above ' + str(REPO)}); "
              f"pass --fer2013 DIR holding {ARCHIVE} and {VOTES}. Nothing to do.")
        return
    args.votes = source / VOTES
    data = f"fer2013:{extract_once(source / ARCHIVE, args.cache)}"
    targets = [t for t in TARGETS if t in args.targets.split(",")]
    rows, started = [], time.time()
    for rate in [float(r) for r in args.noise.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            for target in targets:
                name = f"{target}_noise{round(rate * 100):02d}_seed{seed}"
                out = args.runs / name
                if args.report_only and not (out / EVAL_JSON).is_file():
                    continue
                teacher = args.runs / f"onehot_noise{round(rate * 100):02d}_seed{seed}" / BEST_DIR
                if not args.report_only:
                    train_or_resume(name, "fer2013_cnn", overrides_for(target, rate, seed, args, teacher), data,
                                    args.runs)
                rows.append(summarise(out, target, rate, seed))
                write(rows, args, started)
    print(markdown(rows))


def write(rows: list[dict], args: argparse.Namespace, started: float) -> None:
    args.results.mkdir(parents=True, exist_ok=True)
    command = (f"python -m benchmarks.fer2013_noise --noise {args.noise} --seeds {args.seeds} --epochs {args.epochs} "
               f"--train-size {args.train_size} --channels {','.join(map(str, args.channels))} "
               f"--augmentation {args.augmentation}")
    doc = {"dataset": "FER2013 Training: 10% carved as clean val (split_seed 0, FER+ votes); noisy subset of the rest",
           "command": command, "hardware": hardware(), "wall_s_of_this_invocation": round(time.time() - started, 1),
           "runs": rows}
    (args.results / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.results / "table.md").write_text(markdown(rows))
    plot_curves(rows, args.results / "curves.png")


if __name__ == "__main__":
    main()
