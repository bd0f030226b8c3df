"""``zoo-cli export``: ONNX, TorchScript, ``torch.export`` programs and timm's directory layout."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def export_command(
    model: str = typer.Argument(..., help="preset, local-dir:DIR or hf-hub:ORG/NAME"),
    format: str = typer.Option("onnx", "--format", "-f",
                               help="onnx | torchscript | exported-program | timm (a directory for timm)"),
    out: Path = typer.Option(..., "--out", "-o", help="the file to write (a directory for --format timm)"),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="a symbolic batch dimension (default: fixed)"),
    batch_size: int = typer.Option(1, "--batch-size", help="the fixed batch size without --dynamic-batch"),
    opset: int = typer.Option(None, "--opset", help="ONNX opset (default: torch.onnx's)"),
    check: bool = typer.Option(True, "--check/--no-check", help="run the exported file and compare with PyTorch"),
    tolerance: float = typer.Option(1e-4, "--tolerance", help="largest allowed |exported - PyTorch| when checking"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    allow_untrained: bool = typer.Option(False, "--allow-untrained", help="export a preset without trained weights"),
    force: bool = typer.Option(False, "--force", help="replace an existing --out file (timm: write into a non-empty "
                                                      "folder)"),
) -> None:
    """Export a model; the graph returns named tensors logits, probs[, attention][, fusion_weights]."""
    from zoo.inference.export import FORMATS, export_model

    if format not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}", param_hint="--format")
    result = export_model(model, out, format=format, dynamic_batch=dynamic_batch, batch_size=batch_size,
                          opset=opset, check=check, allow_untrained=allow_untrained, overwrite=force,
                          tolerance=tolerance)
    worst = max(result.max_abs_diff.values(), default=0.0)
    if as_json:
        typer.echo(json.dumps({**result.as_dict(), "tolerance": tolerance}, indent=2))
    else:
        typer.echo(f"wrote {result.path} ({result.format}; inputs {', '.join(result.inputs)}; "
                   f"outputs {', '.join(result.outputs)}; batch {'dynamic' if dynamic_batch else batch_size})")
        if result.max_abs_diff:
            runtime = {"onnx": "onnxruntime", "timm": "timm.create_model('local-dir:…', pretrained=True)"}.get(
                result.format, "the reloaded file")
            typer.echo(f"checked: {runtime} against PyTorch, max |Δ| = {worst:.2e} "
                       + ", ".join(f"{k} {v:.1e}" for k, v in result.max_abs_diff.items()))
        elif result.check_skipped:
            typer.echo(f"not checked: {result.check_skipped}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("export")(export_command)
