"""``zoo-cli bench``: the benchmark suite (plain against fast path, same run)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from zoo.cli import app


@app.command("bench")
def bench_command(
    models: list[str] = typer.Argument(None, help="presets to measure (default: the CNN and ResNet-18 presets)"),
    device: str = typer.Option("cpu", help="cpu or cuda"),
    min_time: float = typer.Option(2.0, help="seconds of timing per measurement"),
    train_batch: int = typer.Option(32, help="training batch size"),
    compile: bool = typer.Option(False, "--compile", help="add torch.compile to the fast path"),
    out: Path = typer.Option(None, help="write the results as JSON here"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of the table"),
) -> None:
    """Training and inference images/s, FLOPs, GFLOP/s and peak memory, plain against fast path."""
    from zoo.bench import DEFAULT_MODELS, format_table, run_isolated

    results = []
    for name in models or DEFAULT_MODELS:
        if not as_json:
            typer.echo(f"measuring {name} ...", err=True)
        results.append(run_isolated(name, device=device, min_time=min_time, train_batch=train_batch, compile=compile))
    if out is not None:
        out.write_text(json.dumps(results, indent=2))
    typer.echo(json.dumps(results, indent=2) if as_json else format_table(results))
