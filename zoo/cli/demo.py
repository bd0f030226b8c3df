"""``zoo-cli demo``."""

from __future__ import annotations

from pathlib import Path

import typer


def demo_command(
    out: Path = typer.Option(Path("demo_out"), help="output folder (runs, best model, figures)"),
    fast: bool = typer.Option(False, "--fast", help="a smoke run of well under a minute"),
    epochs: int = typer.Option(None, help="epochs of the comparison runs (default 10)"),
    seed: int = typer.Option(0, help="seed of the data and of every run"),
) -> None:
    """Train and compare face-only / none / CA / GLA and one-hot / LDL-VA on synth_caer, then draw the figures.

    Needs no data and no network; about 3-5 minutes on 2 CPU cores (--fast: well under a minute).
    """
    from zoo.apps.demo import DemoSettings, run_demo

    settings = DemoSettings.fast() if fast else DemoSettings()
    settings.seed = seed
    if epochs is not None:
        settings.epochs = epochs
    run_demo(out, settings=settings, log=typer.echo)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("demo")(demo_command)
