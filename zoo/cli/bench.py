"""``zoo-cli bench``: the benchmark suite (plain against fast paths, same run)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def bench_command(
    models: list[str] = typer.Argument(None, help="presets to measure (default: the CNN and ResNet-18 presets)"),
    quick: bool = typer.Option(False, "--quick", help="tiny sizes: a smoke run of seconds, figures meaningless"),
    device: str = typer.Option("cpu", help="cpu or cuda"),
    threads: str = typer.Option("auto", help="torch threads: N, or auto (cores the load average leaves idle)"),
    sections: str = typer.Option("machine,models,data,ldl,knn,predict", help="comma-separated sections to run"),
    compile: bool = typer.Option(False, "--compile", help="add torch.compile (inductor, freezing) to inference"),
    out: Path = typer.Option(None, help="write the results as JSON here"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of the tables"),
) -> None:
    """Images/s, FLOPs, GFLOP/s, peak memory, data pipeline, LDL-VA, KNN and predict: plain against fast."""
    from zoo.apps.bench.suite import SECTIONS, format_tables, run_suite

    chosen = [s for s in sections.split(",") if s]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        raise typer.BadParameter(f"unknown section(s) {', '.join(unknown)}; choose from {','.join(SECTIONS)}",
                                 param_hint="--sections")
    result = run_suite(models or None, quick=quick, device=device, threads=threads, sections=chosen, compile=compile)
    if out is not None:
        out.write_text(json.dumps(result, indent=2) + "\n")
    typer.echo(json.dumps(result, indent=2) if as_json else format_tables(result))


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("bench")(bench_command)
