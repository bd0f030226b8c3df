"""``zoo-cli ablate``: a thin layer over :func:`zoo.training.ablate.ablate`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from zoo.cli.common import OVERRIDES_HELP, configure_logging, split_model_and_overrides


def ablate_command(
    base: str = typer.Argument("glamor_net", help="recipe or preset every cell starts from"),
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP),
    data: str = typer.Option(..., "--data", help="training data spec"),
    grid: list[str] = typer.Option(..., "--grid", help="KEY=V1,V2,... (repeat for more axes)"),
    val: Optional[str] = typer.Option(None, "--val", help="validation data spec"),
    out: str = typer.Option("runs/ablate", "--out", help="directory for the cells and the tables"),
    recipe: Optional[str] = typer.Option(None, "--recipe"),
) -> None:
    """Train every cell of a grid (seeded, resumable) and write ablation.md and ablation.csv."""
    from zoo.training.ablate import ablate

    base_name, overrides = split_model_and_overrides(base, overrides)
    configure_logging()
    ablate(data, grid, base=base_name or "glamor_net", val=val, out=out, overrides=overrides, recipe=recipe)
    typer.echo((Path(out) / "ablation.md").read_text())


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("ablate")(ablate_command)
