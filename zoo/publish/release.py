"""A release folder rebuilt from a finished training run: the model, its card and a manifest that say exactly
how it was made.

``package_release(run, out, ...)`` writes ``out/config.json`` (the run's ``best/config.json``),
``out/model.safetensors`` (the kept weights, optionally stored as float16 to fit the 10 MB package-data limit),
``out/README.md`` (the model card) and ``out/release.json`` (the same facts for machines). The card names the
one command that retrains the model, the recipe, seed and epochs, the data (each split's label-file sha256,
photo and face counts, split settings: the run's ``datasets.json``), the training wall time and hardware, the
evaluations given (``zoo-cli eval --json`` outputs, computed on the packaged weights), and the weight file's
storage type and sha256. Nothing here reads data or trains: the benchmark scripts do, then call this.
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from zoo.data.classes import OFFICIAL_SPLITS
from zoo.data.mtcnn import file_sha256
from zoo.errors import ZooError
from zoo.factory import create
from zoo.publish.cards import dataset_name, weights_file_summary
from zoo.training.rundir import BEST_DIR, DATASETS_JSON, METRICS_LOG, RUN_CONFIG, read_metrics_log
from zoo.weights.files import CONFIG_NAME, WEIGHTS_NAME

RELEASE_JSON = "release.json"
CARD_NAME = "README.md"
#: the most a weight file shipped as package data may hold
PACKAGE_LIMIT_BYTES = 10_000_000


def write_weights(source: Path, target: Path, dtype: str = "float32") -> None:
    """Copy a safetensors file, casting floating-point tensors to ``dtype`` (``float32`` or ``float16``)."""
    if dtype not in ("float32", "float16"):
        raise ZooError(f"release weights dtype must be 'float32' or 'float16', got {dtype!r}.")
    cast = torch.float16 if dtype == "float16" else torch.float32
    state = {k: (v.to(cast) if v.is_floating_point() else v).contiguous() for k, v in load_file(str(source)).items()}
    save_file(state, str(target), metadata={"format": "pt"})


def package_release(
    run: str | Path,
    out: str | Path,
    *,
    name: str,
    command: str,
    summary: str,
    train_command: str | None = None,
    dtype: str = "float32",
    evaluate: Any = None,
    hardware: str | None = None,
    limits: Sequence[str] = (),
    size_limit: int | None = PACKAGE_LIMIT_BYTES,
) -> dict[str, Any]:
    """Package ``run/best`` into ``out`` as the release ``name`` (``preset.tag``) and return its manifest.

    ``evaluate(model_dir) -> list of zoo-cli eval --json dicts`` is called on the packaged folder, so the
    card's numbers are those of the shipped (possibly float16) weights. ``size_limit`` refuses a weight file
    larger than the package-data limit (pass None for a Hub release).
    """
    run, out = Path(run), Path(out)
    best = run / BEST_DIR
    for needed in (best / CONFIG_NAME, best / WEIGHTS_NAME, run / RUN_CONFIG):
        if not needed.is_file():
            raise ZooError(f"{needed} not found: {run} is not a finished training run (train it to the end first).")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best / CONFIG_NAME, out / CONFIG_NAME)
    write_weights(best / WEIGHTS_NAME, out / WEIGHTS_NAME, dtype)
    size = (out / WEIGHTS_NAME).stat().st_size
    if size_limit is not None and size > size_limit:
        raise ZooError(f"{out / WEIGHTS_NAME} is {size / 1e6:.1f} MB, over the {size_limit / 1e6:.0f} MB limit of "
                       f"package data; store it as float16 (dtype='float16') or publish it on the Hub.")
    run_config = json.loads((run / RUN_CONFIG).read_text())
    datasets = _without_paths(json.loads((run / DATASETS_JSON).read_text())) if (run / DATASETS_JSON).is_file() else {}
    history = read_metrics_log(run / METRICS_LOG) if (run / METRICS_LOG).is_file() else []
    epoch_times = [row["time_s"] for row in history if "time_s" in row]
    evaluations = [{**ev, "dataset": dataset_name(ev.get("dataset")), "model": name}
                   for ev in (evaluate(out) if evaluate is not None else [])]
    manifest = {
        "name": name, "command": command, "train_command": train_command, "recipe": run_config.get("recipe"), "model": run_config.get("model"),
        "seed": run_config.get("seed"), "epochs": run_config.get("epochs"), "keep": run_config.get("keep"),
        "init_weights": run_config.get("init_weights"), "backbone_pretrained": run_config.get("backbone_pretrained"),
        "data": datasets,
        "train_wall_s": sum(epoch_times) if epoch_times else None,
        "epoch_s_median": statistics.median(epoch_times) if epoch_times else None,
        "hardware": hardware,
        "weights": {"file": WEIGHTS_NAME, "sha256": file_sha256(out / WEIGHTS_NAME), "bytes": size,
                    "storage": weights_file_summary(out / WEIGHTS_NAME),
                    "parameters": sum(p.numel() for p in create(f"local-dir:{out}").parameters())},
        "evaluations": evaluations,
    }
    (out / RELEASE_JSON).write_text(json.dumps(manifest, indent=2) + "\n")
    (out / CARD_NAME).write_text(release_card(manifest, summary, limits))
    return manifest


def _without_paths(value: Any) -> Any:
    """A run's ``datasets.json`` with each dataset spec reduced to its name (``expw:/data/x`` -> ``expw``): the
    builder's folders are not part of a release."""
    if isinstance(value, dict):
        return {k: (dataset_name(v) if k == "spec" else _without_paths(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_paths(v) for v in value]
    return value


def _data_rows(data: dict[str, Any]) -> list[str]:
    rows = []
    for split in ("train", "val"):
        parts = data.get(split)
        if parts is None:
            continue
        for part in parts if isinstance(parts, list) else [parts]:
            what = part.get("spec") or part.get("dataset", "?")
            sha = part.get("label_file_sha256")
            counts = ", ".join(f"{part[k]:,} {k}" for k in ("photos", "faces") if k in part) or (
                f"{part['samples']:,} samples" if "samples" in part else "")
            split_rule = (f"val_fraction {part['val_fraction']}, split_seed {part['split_seed']}, by {part['split_by']}"
                          if "val_fraction" in part else "")
            repeat = f"×{part['repeat']} per epoch" if part.get("repeat", 1) != 1 else ""
            rows.append(f"| {split} | {what} | {counts} | {'`' + sha + '`' if sha else '–'} | "
                        f"{'; '.join(x for x in (split_rule, repeat) if x) or '–'} |")
    return rows


def dataset_split_name(dataset: str, split: str) -> str:
    """``expw val``; an official split in its dataset's own words (``fer2013 val (PublicTest)``)."""
    official = OFFICIAL_SPLITS.get(dataset)
    own = official[1].get(split) if official else None
    return f"{dataset} {split}" + (f" ({own})" if own else "")


def _evaluation_rows(evaluations: Sequence[dict[str, Any]]) -> list[str]:
    rows = []
    for ev in evaluations:
        where = dataset_split_name(dataset_name(ev.get("dataset")) or "?", ev.get("split", ""))
        tta = " (flip TTA)" if ev.get("tta", "none") != "none" else ""
        rows.append(f"| {where}{tta} | {ev.get('num_samples', 0):,} | {ev['accuracy']:.2%} | "
                    f"{ev.get('balanced_accuracy', float('nan')):.2%} | {ev.get('macro_f1', float('nan')):.4f} |")
    return rows


def release_card(manifest: dict[str, Any], summary: str, limits: Sequence[str] = ()) -> str:
    """The model card of a release: what it is, how to load it, how it was made, how well it does."""
    name = manifest["name"]
    weights = manifest["weights"]
    wall = manifest.get("train_wall_s")
    wall_text = (f"{wall / 60:.0f} min ({manifest['epochs']} epochs × {manifest['epoch_s_median']:.0f} s median)"
                 if wall else "not recorded")
    lines = [
        f"# {name}", "", summary.strip(), "",
        "```python", "import zoo", f'model = zoo.create("{name}", pretrained=True)   # package data: no network',
        "```", "",
        "## How it was made", "",
        f"- **Rebuild (one command):** `{manifest['command']}`",
        f"- **Recipe:** `{manifest['recipe']}` (model `{manifest['model']}`), seed {manifest['seed']}, "
        f"{manifest['epochs']} epochs, {'final epoch kept' if manifest.get('keep') == 'last' else 'best validation epoch kept'}",
    ]
    if manifest.get("train_command"):
        lines.append(f"- **Its training step:** `{manifest['train_command']}`")
    if manifest.get("init_weights"):
        lines.append(f"- **Started from:** every weight of `{manifest['init_weights']}`")
    if manifest.get("backbone_pretrained"):
        lines.append(f"- **Face encoder started from:** `{manifest['backbone_pretrained']}`")
    lines += [f"- **Training wall time:** {wall_text}" + (f" on {manifest['hardware']}" if manifest.get("hardware") else ""),
              f"- **Weights:** `{weights['file']}`, {weights['storage']}, {weights['parameters']:,} parameters, "
              f"sha256 `{weights['sha256']}`", ""]
    data_rows = _data_rows(manifest.get("data") or {})
    if data_rows:
        lines += ["## Data", "", "| split | dataset | size | label file sha256 | split rule |", "|---|---|---|---|---|",
                  *data_rows, ""]
    eval_rows = _evaluation_rows(manifest.get("evaluations") or [])
    if eval_rows:
        lines += ["## Evaluation (the packaged weights)", "",
                  "| data | samples | accuracy | balanced accuracy | macro-F1 |", "|---|---|---|---|---|", *eval_rows, "",
                  f"Reproduce: `zoo-cli eval {name} --data SPEC --split SPLIT --json`.", ""]
    if limits:
        lines += ["## Limits", "", *[f"- {item}" for item in limits], ""]
    return "\n".join(lines)
