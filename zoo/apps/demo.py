"""``zoo-cli demo``: the whole library on ``synth_caer``, offline, in a few minutes on 2 CPU cores.

1. Table-2-style comparison (GLAMOR-Net Table 2): a small CNN trained face-only, and as face + context models
   (both streams fused) with no attention (``none``), CAER-Net-S context attention (``ca``) and global-local
   attention (``gla``).
2. Label noise: a face-only model trained with ``onehot`` and with ``ldl_va`` targets on a split whose labels
   were flipped at random (pseudo-VA from the one-hot model trained on the same noisy labels).
3. The best model is saved with ``zoo.save_pretrained``, reloaded with ``zoo.create("local-dir:...")`` and
   run through ``zoo.predict`` on a scene image.
4. Figures: attention overlays (GLAMOR Fig. 5), a prediction grid (Fig. 6), the λ grid (LDLVA Fig. 4),
   confusion matrices and training curves.

Every model is trained by the real engine (``zoo.train``) on the real data pipeline (``synth_caer``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from zoo import viz
from zoo.data import open_dataset
from zoo.data.synth import matching_cue_share
from zoo.errors import ZooError
from zoo.ldl.target import readout_from_state_dict
from zoo.training.checkpoint import load_checkpoint
from zoo.training.engine import train
from zoo.training.rundir import BEST_DIR, EVAL_JSON, LAST_CHECKPOINT, METRICS_LOG

#: the variants of the comparison: name -> model overrides (all but the first fuse the face and context streams)
VARIANTS: dict[str, dict[str, Any]] = {
    "face only": {"streams": "face"},
    "face + context, no attention": {"streams": "both", "attention": "none"},
    "face + context + CA": {"streams": "both", "attention": "ca"},
    # the paper's scorer, Dense -> ReLU -> Dense: BN inside the scorer (the official code's form) normalises
    # each hidden unit over all cells of the batch, which kept GLA's map near uniform on synth_caer
    "face + context + GLA": {"streams": "both", "attention": "gla", "attention_args": {"scorer_bn": False}},
}
CA_RUN, GLA_RUN = "face + context + CA", "face + context + GLA"


@dataclass
class DemoSettings:
    """Sizes of one demo run; :meth:`fast` is the smoke run used by the tests."""

    #: training samples (None: synth_caer's default, 2048)
    n: int | None = None
    #: validation samples: 2,048 puts one standard error of an accuracy near 80% at 0.9 points
    val_n: int = 2048
    epochs: int = 10
    noise_epochs: int = 8
    noise_fraction: float = 0.3
    #: 4 blocks (3 max-pools): a 48² context gives a 6×6 map whose cells are small enough to hold one cue
    #: (5 blocks give 3×3 cells that hold both cues and most of the scene, and GLA cannot pick one)
    channels: tuple[int, ...] = (16, 32, 64, 64)
    batch_size: int = 32
    lr: float = 2e-3
    seed: int = 0

    @classmethod
    def fast(cls) -> DemoSettings:
        return cls(n=96, val_n=96, epochs=1, noise_epochs=1, channels=(8, 8, 16, 16))


@dataclass
class DemoResult:
    out: Path
    comparison: list[dict[str, Any]] = field(default_factory=list)
    noise: list[dict[str, Any]] = field(default_factory=list)
    #: mean share of attention on the matching cue per attention model, plus "chance" (uniform attention)
    cue_share: dict[str, float] = field(default_factory=dict)
    prediction: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)
    best_model_dir: Path | None = None
    seconds: float = 0.0


def _data_options(settings: DemoSettings) -> dict[str, Any]:
    n = {"val": settings.val_n}
    if settings.n is not None:
        n["train"] = settings.n
    return {"seed": settings.seed, "cache": "memory", "n": n}


def _model_args(settings: DemoSettings, **overrides: Any) -> dict[str, Any]:
    args = {
        "backbone": "caer_cnn",
        "backbone_args": {"channels": list(settings.channels)},
        "attention_args": {},
        "head_hidden": 64,
        "head_dropout": 0.0,
        # one fusion for every row, so that the rows differ only in the attention; concatenation, because
        # adaptive fusion left plain pooling below the face-only model in 10 epochs (55%), an unfair baseline
        "fusion": "concat",
        # small scenes: the 48×48 context is used whole (no resize-and-crop), so no cue is ever cut off
        "data": {"face_size": [32, 32], "context_size": [48, 48], "context_resize": [48, 48]},
    }
    return {**args, **overrides}


def _run_overrides(settings: DemoSettings, epochs: int, model_args: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "model_args": model_args,
        "optimizer": {"name": "adam", "lr": settings.lr},
        "schedule": {"name": "cosine"},
        "batch_size": settings.batch_size,
        "epochs": epochs,
        "seed": settings.seed,
        "data.options": _data_options(settings),
        "device": "cpu",
        **extra,
    }


def _train(name: str, out: Path, overrides: dict[str, Any], log: Callable[[str], None]):
    log(f"training {name} -> {out}")
    result = train("caer_net_s", data="synth_caer", out=out, overrides=overrides)
    return result


def _row(name: str, result, seconds: float) -> dict[str, Any]:
    metrics = result.eval_metrics or result.best_metrics
    return {
        "model": name,
        "accuracy": float(metrics["accuracy"]),
        "macro_f1": float(metrics["macro_f1"]),
        "best_epoch": result.best_epoch,
        "seconds": round(seconds, 1),
        "run": str(result.out),
    }


def standard_error(accuracy: float, n: int) -> float:
    """Binomial standard error of an accuracy measured on ``n`` samples: sqrt(p(1-p)/n)."""
    return math.sqrt(max(accuracy * (1.0 - accuracy), 0.0) / max(n, 1))


def markdown_table(rows: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> str:
    header = ["model", "val accuracy ± s.e.", "macro-F1", "best epoch", "train s", *extra]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        acc = f"{100 * r['accuracy']:.1f}%"
        if "n_val" in r:
            acc += f" ± {100 * standard_error(r['accuracy'], r['n_val']):.1f}"
        cells = [r["model"], acc, f"{100 * r['macro_f1']:.1f}%", str(r["best_epoch"]),
                 f"{r['seconds']:.0f}", *(str(r.get(k, "")) for k in extra)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_demo(
    out: str | Path = "demo_out",
    fast: bool = False,
    settings: DemoSettings | None = None,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Run the demo into ``out`` (which must not hold an earlier demo's runs); returns tables and figure paths."""

    settings = settings or (DemoSettings.fast() if fast else DemoSettings())
    out = Path(out)
    if (out / "runs").exists():
        raise ZooError(f"{out} already holds a demo run; remove it or pass another --out.")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    start = time.perf_counter()
    result = DemoResult(out=out)

    # 1. Table 2: face only, no attention, CA, GLA
    runs = {}
    for name, variant in VARIANTS.items():
        t0 = time.perf_counter()
        slug = name.replace(" ", "_").replace(",", "").replace("+", "plus")
        runs[name] = _train(name, out / "runs" / slug,
                            _run_overrides(settings, settings.epochs, _model_args(settings, **variant)), log)
        result.comparison.append({**_row(name, runs[name], time.perf_counter() - t0), "n_val": settings.val_n})
    result.cue_share = attention_on_matching_cue(runs, settings)
    for row in result.comparison:
        if row["model"] in result.cue_share:
            row["matching_cue_share"] = round(result.cue_share[row["model"]], 3)
    chance = result.cue_share.get("chance", float("nan"))
    log(f"\nsynth_caer, validation split of {settings.val_n} scenes (ceilings: face only 57.1%, face + context "
        "pooled without binding colour to bit 78.6%, with GLA 100%)")
    log(markdown_table(result.comparison, ("matching_cue_share",)))
    log(f"matching_cue_share: share of the attention mass on cues that lands on the cue whose colour matches the "
        f"face (chance, i.e. uniform attention: {chance:.3f})")

    # 2. label noise: onehot vs ldl_va, face only
    noise = {"fraction": settings.noise_fraction, "seed": settings.seed, "mode": "uniform"}
    face_args = _model_args(settings, streams="face")
    t0 = time.perf_counter()
    onehot = _train("face only, one-hot, noisy labels", out / "runs" / "noisy_onehot",
                    _run_overrides(settings, settings.noise_epochs, face_args, **{"data.label_noise": noise}), log)
    result.noise.append({**_row("one-hot", onehot, time.perf_counter() - t0), "noise": settings.noise_fraction,
                         "n_val": settings.val_n})
    ldl_args = {
        **face_args,
        "target": "ldl_va",
        "target_args": {"auxiliary": f"teacher:local-dir:{onehot.out / BEST_DIR}", "neighbor_mode": "memory_bank"},
    }
    t0 = time.perf_counter()
    ldl = _train("face only, LDL-VA, noisy labels", out / "runs" / "noisy_ldl_va",
                 _run_overrides(settings, settings.noise_epochs, ldl_args, **{"data.label_noise": noise}), log)
    result.noise.append({**_row("LDL-VA", ldl, time.perf_counter() - t0), "noise": settings.noise_fraction,
                         "n_val": settings.val_n})
    log(f"\nface-only model, {100 * settings.noise_fraction:.0f}% of the training labels flipped at random "
        f"(validation labels clean; ceiling 57.1%)")
    log(markdown_table(result.noise))

    # 3. save the best model, reload it, predict on a scene
    best_name = max(result.comparison, key=lambda r: r["accuracy"])["model"]
    import zoo

    best = zoo.create(f"local-dir:{runs[best_name].out / BEST_DIR}")
    result.best_model_dir = zoo.save_pretrained(best, out / "best_model")
    reloaded = zoo.create(f"local-dir:{result.best_model_dir}")
    scene_path, box, truth = _write_scene(out / "scene.png", settings)
    result.prediction = zoo.predict([scene_path], model=reloaded, boxes=[[box]], save_vis=out / "figures" / "predict")
    face = result.prediction[0]["faces"][0]
    log(f"\nbest model: {best_name}; saved to {result.best_model_dir}, reloaded with "
        f"zoo.create('local-dir:{result.best_model_dir}')")
    log(f"predict {scene_path}: true {truth}, predicted {face['label']} (p={face['probability']:.2f})")

    # 4. figures
    result.figures = make_figures(out / "figures", runs, ldl, settings)
    result.figures["predict overlay"] = Path(result.prediction[0]["vis"])
    result.seconds = time.perf_counter() - start
    (out / "demo_results.json").write_text(json.dumps(
        {"comparison": result.comparison, "noise": result.noise, "cue_share": result.cue_share, "prediction": result.prediction,
         "figures": {k: str(v) for k, v in result.figures.items()}, "seconds": result.seconds}, indent=2))
    log("\nfigures:")
    for name, path in result.figures.items():
        log(f"  {name:<34} {path}")
    log(f"\ndemo finished in {result.seconds:.0f} s; results in {out / 'demo_results.json'}")
    return result


def _write_scene(path: Path, settings: DemoSettings) -> tuple[Path, tuple[int, int, int, int], str]:
    """A fresh synth_caer test scene (not seen in training), saved as PNG, with its face box and label."""

    ds = open_dataset("synth_caer", "test", n=1, seed=settings.seed + 1)
    image = ds.load_image(0)
    box = ds.face_box(0, image)
    image.save(path)
    return path, (box.x1, box.y1, box.x2, box.y2), ds.label_names[int(ds.labels[0])]


def attention_on_matching_cue(runs: dict[str, Any], settings: DemoSettings, limit: int = 512) -> dict[str, float]:
    """Mean :func:`zoo.data.synth.matching_cue_share` of the CA and GLA runs' best models on the first
    ``limit`` validation scenes, and ``"chance"`` (uniform attention)."""
    import numpy as np

    import zoo

    shares: dict[str, float] = {}
    for name in (CA_RUN, GLA_RUN):
        model = zoo.create(f"local-dir:{runs[name].out / BEST_DIR}")
        val = open_dataset("synth_caer", "val", **{**_data_options(settings), "cache": None},
                           data_config=model.config.data, train=False, streams="both")
        picks = list(range(min(limit, len(val))))
        out, _ = _collect(model, val, picks)
        share, chance = matching_cue_share(out.attention, [val.samples[i].extra["scene"] for i in picks])
        shares[name] = float(np.mean(share))
        shares["chance"] = float(np.mean(chance))
    return shares


def _collect(model, dataset, indices: list[int]):
    batch = [dataset[i] for i in indices]
    inputs = {k: torch.stack([b[k] for b in batch]) for k in ("face", "context") if k in batch[0]}
    with torch.no_grad():
        return model.eval()(**inputs), batch


def make_figures(figures: Path, runs: dict[str, Any], ldl_run, settings: DemoSettings) -> dict[str, Path]:
    """The demo's figures from its training runs (each figure type of the papers, plus curves and confusion)."""
    import zoo

    paths: dict[str, Path] = {}
    ca = zoo.create(f"local-dir:{runs[CA_RUN].out / BEST_DIR}")
    gla = zoo.create(f"local-dir:{runs[GLA_RUN].out / BEST_DIR}")
    val = open_dataset("synth_caer", "val", **_data_options(settings), data_config=gla.config.data, train=False,
                       streams="both")
    picks = list(range(min(6, len(val))))
    out_ca, batch = _collect(ca, val, picks)
    out_gla, _ = _collect(gla, val, picks)
    names = val.label_names
    for k in picks[:3]:
        paths[f"attention {k}"] = viz.attention_figure(
            val.load_image(k), batch[k]["context"],
            {"CA": out_ca.attention[k].numpy(), "GLA": out_gla.attention[k].numpy()},
            figures / f"attention_{k}.png",
            title=f"true {names[batch[k]['label']]}: CA says {names[int(out_ca.logits[k].argmax())]}, "
                  f"GLA says {names[int(out_gla.logits[k].argmax())]}")
    paths["prediction grid"] = viz.prediction_grid_figure(
        [val.load_image(k) for k in picks], [names[batch[k]["label"]] for k in picks],
        {"CA": [names[int(i)] for i in out_ca.logits.argmax(1)],
         "GLA": [names[int(i)] for i in out_gla.logits.argmax(1)]},
        figures / "prediction_grid.png")

    for name, run in runs.items():
        metrics = json.loads((run.out / EVAL_JSON).read_text())
        slug = run.out.name
        paths[f"confusion {name}"] = viz.confusion_matrix_figure(
            metrics["confusion"], names, figures / f"confusion_{slug}.png", title=f"{name} (validation)")
    paths["training curves"] = viz.training_curves_figure(
        viz.metrics_log_rows(runs[GLA_RUN].out / METRICS_LOG), figures / "training_curves_gla.png",
        title=f"{GLA_RUN} on synth_caer")

    tensors, _ = load_checkpoint(ldl_run.out / LAST_CHECKPOINT)
    state = readout_from_state_dict(tensors, prefix="target.")
    train = open_dataset("synth_caer", "train", **{**_data_options(settings), "cache": None})
    noisy = state["labels"].long()
    by_class: dict[str, list[tuple[Any, float]]] = {}
    for i in range(len(train)):
        image = train.load_image(i)
        box = train.face_box(i, image)
        face = image.crop((box.x1, box.y1, box.x2, box.y2)).resize((48, 48))
        by_class.setdefault(names[int(noisy[i])], []).append((face, float(state["uncertainty"][i])))
        if all(len(v) >= 40 for v in by_class.values()) and len(by_class) == len(names):
            break
    paths["uncertainty grid"] = viz.uncertainty_grid_figure(
        {n: by_class.get(n, []) for n in names}, figures / "lambda_grid.png", per_class=6,
        label="λ")
    return paths
