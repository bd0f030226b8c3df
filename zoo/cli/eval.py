"""``zoo-cli eval``: a thin layer over ``zoo.evaluate`` and :func:`zoo.training.eval_plots.write_eval_plots`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from zoo.cli.common import metrics_summary


def eval_command(
    model: str = typer.Argument(..., help="preset with published weights, local-dir:DIR (e.g. RUN/best) or "
                                          "hf-hub:REPO"),
    data: str = typer.Option(..., "--data", help="data spec"),
    tta: str = typer.Option("none", "--tta", help="test-time augmentation: none or flip (reported apart)"),
    data_options: Optional[list[str]] = typer.Option(
        None, "--option", "-o", help="dataset reader option KEY=VALUE (repeat), e.g. -o votes=ferplus.csv"),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="weights file to load into MODEL"),
    allow_untrained: bool = typer.Option(False, "--allow-untrained", help="evaluate a preset without weights"),
    split: Optional[str] = typer.Option(
        None, "--split", help="split to evaluate (default val; a dataset with one split folder, e.g. only test/, "
                              "uses that one and says so)"),
    class_map: Optional[str] = typer.Option(
        None, "--class-map", help="JSON object or a JSON file: dataset class -> model class, null to leave a class out, "
                                  "e.g. '{\"contempt\": null, \"happiness\": \"Happy\"}'; only for names the "
                                  "built-in synonyms (Anger/Angry, Happiness/Happy, ...) do not match"),
    batch_size: int = typer.Option(64, "--batch-size"),
    device: str = typer.Option("auto", "--device"),
    amp: str = typer.Option("none", "--amp", help="none, bf16 or fp16 (CUDA)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar (it shows only on a terminal)"),
    plots: Optional[Path] = typer.Option(
        None, "--plots", help="write the confusion matrix (and, for a run's best/, its training curves) here"
    ),
) -> None:
    """Accuracy, balanced accuracy, macro-F1, per-class recall and confusion matrix of MODEL on --data.

    The dataset's classes are matched to the model's by name (Anger/Angry, Happiness/Happy, Sadness/Sad, ...);
    classes the model lacks (FER+'s Contempt for a 7-class model) are left out and counted; --class-map says what
    the names that cannot be matched are."""
    from zoo.inference.loading import create_for_inference
    from zoo.training.eval_plots import write_eval_plots
    from zoo.training.evaluate import evaluate
    from zoo.training.settings import parse_key_values

    mapping = _read_class_map(class_map) if class_map is not None else None
    net = create_for_inference(model, checkpoint=checkpoint, allow_untrained=allow_untrained)

    options = parse_key_values(data_options or [], "--option")
    metrics = evaluate(net, data, split=split, batch_size=batch_size, device=device, amp=amp, tta=tta,
                       options=options, class_map=mapping, progress=False if quiet else None)
    split = metrics["split"]
    metrics["model"] = model
    if plots is not None:
        for path in write_eval_plots(model, metrics, plots):
            typer.echo(f"wrote {path}", err=as_json)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
        return
    typer.echo(f"{model} on {data} ({split}, {metrics['num_samples']} samples"
               + (", flip TTA)" if tta == "flip" else ")"))
    typer.echo(metrics_summary(metrics))
    for name, count in metrics["dropped"].items():
        typer.echo(f"left out: {name}, {count} samples (the model has no such class)")
    for key in ("kl", "js", "majority_agreement"):
        if key in metrics:
            typer.echo(f"{key}: {metrics[key]:.4f}")
    for name, recall in metrics["per_class_recall"].items():
        typer.echo(f"  recall {name:<12}{'-' if recall is None else f'{100 * recall:.2f}%'}")


def _read_class_map(value: str) -> dict:
    """``--class-map``: a JSON object, or the path of a file holding one."""
    from zoo.errors import ZooError

    path = Path(value).expanduser()
    source = f"--class-map {path}" if path.is_file() else "--class-map"
    text = path.read_text(encoding="utf-8") if path.is_file() else value
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ZooError(f"{source}: {value!r} is neither a JSON object nor a file ({exc.msg}); give e.g. "
                       f"'{{\"contempt\": null, \"happiness\": \"Happy\"}}' or a file holding one.") from None
    if not isinstance(mapping, dict):
        raise ZooError(f"{source}: expected a JSON object of dataset class -> model class (or null), got {text!r}.")
    return mapping


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("eval")(eval_command)
