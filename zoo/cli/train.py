"""``zoo-cli train / eval / predict / ablate``: thin layers over ``zoo.train``, ``zoo.evaluate``,
``zoo.predict`` and ``zoo.training.ablate.ablate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from zoo.cli import app

_OVERRIDES_HELP = "settings as KEY=VALUE: epochs=5 optimizer.lr=0.01 attention=ca model_args.data.face_size=[64,64]"


def _split_model_and_overrides(model: str | None, overrides: list[str] | None) -> tuple[str | None, list[str]]:
    overrides = list(overrides or [])
    if model is not None and "=" in model:
        return None, [model, *overrides]
    return model, overrides


def _metrics_summary(metrics: dict) -> str:
    return "  ".join(f"{k} {100 * metrics[k]:.2f}%" for k in ("accuracy", "balanced_accuracy", "macro_f1")
                     if metrics.get(k) is not None)


@app.command("train", context_settings={"allow_extra_args": False})
def train_command(
    model: Optional[str] = typer.Argument(None, help="recipe, preset or local-dir:DIR (see --list-recipes)"),  # noqa: UP045
    overrides: Optional[list[str]] = typer.Argument(None, help=_OVERRIDES_HELP),  # noqa: UP045
    data: Optional[str] = typer.Option(None, "--data", help="training data spec, e.g. caer_s:/data/CAER-S"),  # noqa: UP045
    val: Optional[str] = typer.Option(None, "--val", help="validation data spec (default: --data, split val)"),  # noqa: UP045
    out: Optional[str] = typer.Option(None, "--out", help="run directory (default runs/<recipe>)"),  # noqa: UP045
    recipe: Optional[str] = typer.Option(None, "--recipe", help="train MODEL with this recipe's settings"),  # noqa: UP045
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out from its last checkpoint"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace the run in a non-empty --out"),
    list_recipes: bool = typer.Option(False, "--list-recipes", help="list the recipes and exit"),
) -> None:
    """Train a model with a paper recipe; writes run_config.json, metrics.jsonl, best/, eval.json."""
    from zoo.training.engine import train
    from zoo.training.recipes import list_recipes as recipes

    if list_recipes:
        for name, description in recipes().items():
            typer.echo(f"{name:<26}{description}")
        return
    model, overrides = _split_model_and_overrides(model, overrides)
    result = train(model, data=data, val=val, out=out, overrides=overrides, recipe=recipe, resume=resume,
                   overwrite=overwrite)
    typer.echo(f"run directory: {result.out}")
    if result.best_epoch is not None:
        typer.echo(f"best epoch {result.best_epoch}: {_metrics_summary(result.best_metrics)}")
    if result.stopped_early:
        typer.echo("stopped early (no improvement for early_stopping epochs)")


@app.command("eval")
def eval_command(
    model: str = typer.Argument(..., help="preset, local-dir:DIR (e.g. RUN/best) or hf-hub:REPO"),
    data: str = typer.Option(..., "--data", help="data spec"),
    split: str = typer.Option("val", "--split", help="split to evaluate"),
    batch_size: int = typer.Option(64, "--batch-size"),
    device: str = typer.Option("auto", "--device"),
    amp: str = typer.Option("none", "--amp", help="none, bf16 or fp16 (CUDA)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    plots: Optional[Path] = typer.Option(  # noqa: UP045
        None, "--plots", help="write the confusion matrix (and, for a run's best/, its training curves) here"
    ),
) -> None:
    """Accuracy, balanced accuracy, macro-F1, per-class recall and confusion matrix of MODEL on --data."""
    from zoo.training.engine import evaluate

    metrics = evaluate(model, data, split=split, batch_size=batch_size, device=device, amp=amp)
    if plots is not None:
        for path in write_eval_plots(model, metrics, plots):
            typer.echo(f"wrote {path}", err=as_json)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
        return
    typer.echo(f"{model} on {data} ({split}, {metrics['num_samples']} samples)")
    typer.echo(_metrics_summary(metrics))
    for key in ("kl", "js", "majority_agreement"):
        if key in metrics:
            typer.echo(f"{key}: {metrics[key]:.4f}")
    for name, recall in metrics["per_class_recall"].items():
        typer.echo(f"  recall {name:<12}{'-' if recall is None else f'{100 * recall:.2f}%'}")


def write_eval_plots(model: str, metrics: dict, folder: Path) -> list[Path]:
    """Confusion matrix of an evaluation; training curves too when MODEL is a run's ``local-dir:RUN/best``."""
    from zoo import viz

    paths = [viz.confusion_matrix_figure(metrics["confusion"], list(metrics["per_class_recall"]),
                                         folder / "confusion.png", title=f"{model} ({metrics['num_samples']} samples)")]
    if model.startswith("local-dir:"):
        log = Path(model.split(":", 1)[1]).parent / "metrics.jsonl"
        if log.exists():
            paths.append(viz.training_curves_figure(viz.metrics_log_rows(log), folder / "training_curves.png",
                                                    title=str(log.parent)))
    return paths


@app.command("predict")
def predict_command(
    images: list[str] = typer.Argument(..., help="image files"),
    model: str = typer.Option(..., "--model", help="preset, local-dir:DIR or hf-hub:REPO"),
    detector: str = typer.Option("haar", "--detector", help="face detector"),
    min_score: float = typer.Option(0.0, "--min-score", help="drop faces scored below this"),
    device: str = typer.Option("auto", "--device"),
    save_vis: Optional[str] = typer.Option(None, "--save-vis", help="write an attention overlay per face here"),  # noqa: UP045
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Detect the faces in each image and print the emotion probabilities of each face."""
    from zoo.inference import predict

    results = predict(images, model=model, detector=detector, device=device, min_score=min_score,
                      save_vis=save_vis)
    if as_json:
        typer.echo(json.dumps(results, indent=2, allow_nan=False))  # strict JSON: NaN is not JSON
        return
    for entry in results:
        if not entry["faces"]:
            typer.echo(f"{entry['image']}: no face found")
            continue
        names = list(entry["faces"][0]["probs"])
        header = ["image", "face", "box", "emotion", *names]
        rows = [[entry["image"], str(f["face"]), ",".join(str(round(v)) for v in f["box"]), f["label"],
                 *(f"{f['probs'][n]:.3f}" for n in names)] for f in entry["faces"]]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@app.command("ablate")
def ablate_command(
    base: str = typer.Argument("glamor_net", help="recipe or preset every cell starts from"),
    overrides: Optional[list[str]] = typer.Argument(None, help=_OVERRIDES_HELP),  # noqa: UP045
    data: str = typer.Option(..., "--data", help="training data spec"),
    grid: list[str] = typer.Option(..., "--grid", help="KEY=V1,V2,... (repeat for more axes)"),
    val: Optional[str] = typer.Option(None, "--val", help="validation data spec"),  # noqa: UP045
    out: str = typer.Option("runs/ablate", "--out", help="directory for the cells and the tables"),
    recipe: Optional[str] = typer.Option(None, "--recipe"),  # noqa: UP045
) -> None:
    """Train every cell of a grid (seeded, resumable) and write ablation.md and ablation.csv."""
    from pathlib import Path

    from zoo.training.ablate import ablate

    base_name, overrides = _split_model_and_overrides(base, overrides)
    ablate(data, grid, base=base_name or "glamor_net", val=val, out=out, overrides=overrides, recipe=recipe)
    typer.echo((Path(out) / "ablation.md").read_text())
