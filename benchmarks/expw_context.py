"""Does the scene help on real photos? Face-only against face + context (no attention, CA, GLA, GLA guided) on
ExpW, several seeds, the same budget (not a test).

    python -m benchmarks.expw_context [--seeds 0,1] [--epochs 10] [--variants face,none,ca,gla,gla_guided]
    python -m benchmarks.expw_context --setup joint --seeds 0,1,2 --variants face,gla   # on the joint face model

The claim of CAER-Net-S (Lee et al., ICCV 2019, Table 4) and GLAMOR-Net (Le et al., Neural Comput. & Appl.
2022, Table 2) is that the scene around a face carries emotion information that a face crop lacks. Here it is
measured on real web photos:

* **data:** ExpW's development part (``expw:DIR``, 4,049 photos, 4,258 faces, 7 balanced classes); a seeded
  20% of the photos (``val_fraction=0.2``, ``split_seed=0``: 810 photos, 860 faces) is the validation split,
  carved by photo so that no photo has faces on both sides.
* **model and recipe:** ``glamor_fer_cnn`` (48² grey face through ``fer_cnn``; 112² grey masked context
  through a narrow ``fer_cnn`` -> 7×7 cells) with the recipe ``expw_glamor_fer_cnn``; every variant starts
  its face encoder from the same trained face model (``--face-init``, default the bundled FER2013 model
  ``fer_cnn.fer2013``, which has never seen ExpW), its context encoder from scratch, and trains ``--epochs``
  epochs on the ExpW train photos; the final epoch is kept (no selection on validation).
* **variants:** ``face`` (streams=face: the same model without its context stream), ``none`` (both streams,
  the context map average-pooled), ``ca`` (CAER-Net-S context attention), ``gla`` (GLAMOR-Net global-local
  attention), ``gla_guided`` (streams=context_guided: GLA steered by the face, the classifier sees the context
  vector alone; GLAMOR-Net Table 2's context row).

Runs live in ``--runs`` (outside the repository) and resume from their checkpoints. Results (JSON, a Markdown
table of mean and range over seeds of validation accuracy and balanced accuracy) go to ``--results``;
``--figures`` draws GLA's and CA's attention maps on validation photos. Exits 0 with a message when the data
are absent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks.expw_paths import RESULTS, RUNS, find_expw
from benchmarks.fer2013_real import hardware, train_or_resume
from zoo.training.rundir import EVAL_JSON, METRICS_LOG, RUN_CONFIG, read_metrics_log

RECIPE = "expw_glamor_fer_cnn"
#: variant -> model overrides
VARIANTS: dict[str, dict] = {
    "face": {"streams": "face"},
    "none": {"attention": "none"},
    "ca": {"attention": "ca"},
    "gla": {"attention": "gla"},
    "gla_guided": {"streams": "context_guided", "attention": "gla"},
}
LABELS = {"face": "face only", "none": "face + context, no attention (pooled)", "ca": "face + context, CA",
          "gla": "face + context, GLA", "gla_guided": "GLA context_guided (context vector only)"}


#: how the two-stream model is built around its face model. "joint": on the joint face model (docs/one-model.md):
#: its aligned 48² grey face and its classifier (``head_init``: the fused model starts at the face model's
#: predictions, the context half of the classifier at zero), the scene in colour with the face covered by the
#: image's mean colour; "v1": the face encoder only, a fresh 128-unit head, a grey scene with a black face
SETUPS: dict[str, dict] = {
    "v1": {"face_init": "fer_cnn.fer2013", "head_init": False, "overrides": {}},
    "joint": {
        "face_init": "fer_cnn.fer2013_expw", "head_init": True,
        "overrides": {
            "model_args.head_hidden": None, "model_args.head_dropout": 0.4,
            "model_args.data": {"face_size": [48, 48], "context_size": [112, 112], "context_resize": [128, 171],
                                "grayscale": True, "context_grayscale": False, "context_mask_fill": "mean",
                                "align": "eyes", "mean": [0.5] * 3, "std": [0.5] * 3},
        },
    },
}


def run_variant(variant: str, seed: int, args: argparse.Namespace) -> dict:
    setup = SETUPS[args.setup]
    overrides = {**setup["overrides"], **{f"model_args.{k}": v for k, v in VARIANTS[variant].items()},
                 "seed": seed, "epochs": args.epochs, "threads": args.threads, "progress": False,
                 "backbone_pretrained": args.face_init, **({"head_init": args.face_init} if setup["head_init"] else {})}
    out = train_or_resume(f"{variant}-s{seed}", RECIPE, overrides, f"expw:{args.data}", args.runs)
    history = read_metrics_log(out / METRICS_LOG)
    final = json.loads((out / EVAL_JSON).read_text())
    config = json.loads((out / RUN_CONFIG).read_text())
    timing = out / "wall_time.json"
    return {
        "variant": variant, "seed": seed, "run": str(out).replace(str(Path.home()), "~"),
        "accuracy": final["accuracy"], "balanced_accuracy": final["balanced_accuracy"], "macro_f1": final["macro_f1"],
        "per_class_recall": final.get("per_class_recall"),
        "curve": [row["val"]["accuracy"] for row in history],
        "fusion": config["model_args"].get("fusion"), "epochs": config["epochs"],
        "wall_s": json.loads(timing.read_text())["wall_s"] if timing.is_file() else None,
    }


def summarise(rows: list[dict]) -> list[dict]:
    """Per variant: mean, min and max over seeds of accuracy and balanced accuracy."""
    table = []
    for variant in VARIANTS:
        mine = [r for r in rows if r["variant"] == variant]
        if not mine:
            continue
        entry = {"variant": variant, "seeds": [r["seed"] for r in mine]}
        for key in ("accuracy", "balanced_accuracy"):
            values = [r[key] for r in mine]
            entry[key] = {"mean": statistics.mean(values), "min": min(values), "max": max(values), "values": values}
        table.append(entry)
    return table


def markdown(table: list[dict]) -> str:
    lines = ["| variant | seeds | ExpW val accuracy: mean (min–max) | balanced accuracy: mean (min–max) |",
             "|---|---|---|---|"]
    for entry in table:
        cells = [f"{100 * entry[k]['mean']:.1f}% ({100 * entry[k]['min']:.1f}–{100 * entry[k]['max']:.1f})"
                 for k in ("accuracy", "balanced_accuracy")]
        lines.append(f"| {LABELS[entry['variant']]} | {len(entry['seeds'])} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="ExpW folder (label.lst + Images/)")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--setup", default="v1", choices=sorted(SETUPS),
                        help="how the model is built around its face model (SETUPS)")
    parser.add_argument("--face-init", default=None,
                        help="trained face model the face encoder starts from (preset.tag, local-dir:DIR); default: "
                             "the setup's")
    parser.add_argument("--threads", default="auto")
    parser.add_argument("--runs", type=Path, default=None, help=f"default {RUNS}[_SETUP]")
    parser.add_argument("--results", type=Path, default=None, help=f"default {RESULTS}[_SETUP]")
    parser.add_argument("--figures", action="store_true", help="draw attention maps of the seed-0 CA/GLA runs")
    args = parser.parse_args()
    suffix = "" if args.setup == "v1" else f"_{args.setup}"
    args.face_init = args.face_init or SETUPS[args.setup]["face_init"]
    args.runs = args.runs or RUNS.with_name(RUNS.name + suffix)
    args.results = args.results or RESULTS.with_name(RESULTS.name + suffix)
    args.data = args.data or find_expw()
    if args.data is None or not (args.data / "label.lst").is_file():
        print("ExpW not found (pass --data DIR with label.lst and Images/); nothing to do.")
        return
    started = time.time()
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for variant in args.variants.split(","):
            rows.append(run_variant(variant, seed, args))
            write(rows, args, started)
    if args.figures:
        from benchmarks.expw_figures import attention_figures

        attention_figures(args.runs, args.data, args.results)


def write(rows: list[dict], args: argparse.Namespace, started: float) -> None:
    args.results.mkdir(parents=True, exist_ok=True)
    table = summarise(rows)
    payload = {"recipe": RECIPE, "setup": args.setup, "setup_overrides": SETUPS[args.setup]["overrides"],
               "face_init": args.face_init, "epochs": args.epochs, "hardware": hardware(),
               "wall_s": time.time() - started, "summary": table, "runs": rows}
    (args.results / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    (args.results / "table.md").write_text(markdown(table))
    print(markdown(table), flush=True)


if __name__ == "__main__":
    main()
