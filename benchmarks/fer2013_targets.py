"""How close are LDL-VA's constructed targets to human label distributions? (not a test)

    python -m benchmarks.fer2013_targets [--teacher RUN] [--epochs 10]

LDLVA's central claim (Le et al., WACV 2023) is that a label distribution built from a sample's neighbours in
valence-arousal space is a better training target than the one-hot label. FER2013 has FER+ votes (10
annotators per image, Barsoum et al., ICMI 2016) for most training images, so the claim can be checked
directly: KL(votes ‖ target), JS and agreement of the target's argmax with the FER+ majority, over the
training images that have votes, for

* one-hot targets (the FER2013 label),
* label smoothing 0.1 (what the ``fer2013_cnn`` recipe trains with),
* LDL-VA's targets ``last_target`` at the end of a run of the ``fer2013_cnn`` recipe with ``target=ldl_va``
  (memory bank; pseudo-VA from the teacher ``--teacher``, a model trained on the same labels).

The run resumes from ``~/.cache/emotion-zoo/runs/fer2013_cnn_ldlva``. Writes
``benchmarks/results/fer2013_targets/``. KL uses ε = 1e-10 for zero target mass (one-hot puts none on the
classes annotators chose besides the label, hence its large KL).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.fer2013_real import ARCHIVE, REPO, extract_once, find_fer2013

RESULTS = REPO / "benchmarks" / "results" / "fer2013_targets"
RUNS = Path.home() / ".cache" / "emotion-zoo" / "runs"


def target_scores(targets, votes) -> dict:
    from zoo.training.metrics import distribution_metrics

    m = distribution_metrics(targets, votes)
    return {"kl": m["kl"], "js": m["js"], "majority_agreement": m["majority_agreement"], "samples": m["reference_samples"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fer2013", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "emotion-zoo" / "fer2013-dev")
    parser.add_argument("--teacher", type=Path, default=RUNS / "fer2013_cnn", help="run whose best/ gives pseudo-VA")
    parser.add_argument("--out", type=Path, default=RUNS / "fer2013_cnn_ldlva")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", default="auto")
    args = parser.parse_args()
    from zoo.training.rundir import BEST_DIR

    source = args.fer2013 or find_fer2013()
    if source is None or not (source / ARCHIVE).is_file() or not (source / "ferplus-votes-dev.csv").is_file():
        print("FER2013 development split or its FER+ votes not found; pass --fer2013 DIR. Nothing to do.")
        return
    if not (args.teacher / BEST_DIR / "config.json").is_file():
        print(f"No teacher model at {args.teacher}/best; train the fer2013_cnn recipe first.")
        return
    import torch
    import torch.nn.functional as F

    import zoo
    from zoo.data import open_dataset
    from zoo.ldl.target import readout_from_state_dict
    from zoo.training import checkpoint as ckpt
    from zoo.training.rundir import EVAL_JSON, LAST_CHECKPOINT

    root = extract_once(source / ARCHIVE, args.cache)
    votes_csv = str(source / "ferplus-votes-dev.csv")
    data = f"fer2013:{root}"
    overrides = {
        "target": "ldl_va", "epochs": args.epochs, "threads": args.threads, "progress": False,
        "model_args.target_args": {"auxiliary": f"teacher:local-dir:{args.teacher / BEST_DIR}",
                                   "neighbor_mode": "memory_bank"},
        "data.options": {"cache": "memory", "votes": votes_csv},
    }
    timing = args.out / "wall_time.json"
    if not (args.out / EVAL_JSON).is_file():
        resume = (args.out / LAST_CHECKPOINT).exists()
        start = time.time()
        zoo.train("fer2013_cnn", data=data, out=args.out, overrides=overrides, resume=resume)
        previous = json.loads(timing.read_text())["wall_s"] if resume and timing.is_file() else 0.0
        timing.write_text(json.dumps({"wall_s": previous + time.time() - start}))

    tensors, _ = ckpt.load_checkpoint(args.out / LAST_CHECKPOINT)
    state = readout_from_state_dict(tensors, prefix="target.")
    train = open_dataset(data, "train", streams="face", votes=votes_csv)
    votes, labels = train.label_distribution, train.labels
    assert torch.equal(state["labels"].long(), labels), "the run's training order differs from this dataset's"
    onehot = F.one_hot(labels, 7).double()
    smooth = onehot * 0.9 + 0.1 / 7
    rows = {"one-hot": target_scores(onehot, votes), "label smoothing 0.1": target_scores(smooth, votes),
            f"LDL-VA (end of a {args.epochs}-epoch run)": target_scores(state["target"].double(), votes)}
    usable = torch.isfinite(votes).all(1)
    disagree = usable & (votes.nan_to_num(0).argmax(1) != labels)
    ldl_fix = float((state["target"][disagree].argmax(1) == votes[disagree].argmax(1)).double().mean())
    uncertainty = state["uncertainty"].double()
    doc = {"train_images_with_votes": int(usable.sum()), "train_images": len(labels),
           "label_disagrees_with_ferplus_majority": int(disagree.sum()),
           "ldl_target_argmax_equals_ferplus_majority_where_label_disagrees": round(ldl_fix, 4),
           "mean_lambda_where_label_agrees": round(float(uncertainty[usable & ~disagree].mean()), 4),
           "mean_lambda_where_label_disagrees": round(float(uncertainty[disagree].mean()), 4),
           "ldl_run": {"epochs": args.epochs, "eval": json.loads((args.out / EVAL_JSON).read_text()),
                       "wall_s": json.loads(timing.read_text())["wall_s"] if timing.is_file() else None},
           "command": f"python -m benchmarks.fer2013_targets --epochs {args.epochs}", "targets": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = ["| training target | KL(votes ‖ target) ↓ | JS ↓ | argmax = FER+ majority |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['kl']:.3f} | {v['js']:.4f} | {v['majority_agreement']:.1%} |" for k, v in rows.items()]
    (RESULTS / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print({k: v for k, v in doc.items() if k not in ("targets", "ldl_run")})


if __name__ == "__main__":
    main()
