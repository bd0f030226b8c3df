"""``zoo-cli pull / push / convert``: the Hugging Face Hub and weight conversion."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from zoo.cli import app


@app.command("pull")
def pull_command(
    names: list[str] = typer.Argument(..., help="presets with a tag (glamor_net.caer_s) or hf-hub:ORG/NAME[@REV]"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Download models' config.json and weights into the Hugging Face cache, for offline use."""
    from zoo.hub import prefetch

    rows = [prefetch(name) for name in names]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(f"{row['name']}: {row['hf_hub_id']}@{row['revision']} -> commit {row['commit']}")
        typer.echo(f"  {Path(row['weights']).parent}")
