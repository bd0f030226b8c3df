"""``zoo-cli build-ncaer``: build NCAER-S from CAER videos (zoo.data.ncaer)."""

from __future__ import annotations

from pathlib import Path

import typer


def build_ncaer_command(
    caer_root: Path = typer.Argument(..., help="CAER root with <split>/<Class>/*.avi"),
    out: Path = typer.Argument(..., help="output folder (images/, crop/, manifest.csv)"),
    parts: int = typer.Option(5, "--parts", help="parts per video; one random frame is taken from each"),
    seed: int = typer.Option(0, "--seed", help="seed of the frame draws"),
    detector: str = typer.Option("haar", "--detector", help="face detector name, or 'none' to write 0,0,0,0"),
    quality: int = typer.Option(95, "--quality", help="JPEG quality of the written frames"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing build in OUT"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="one line per video"),
) -> None:
    """Build NCAER-S: N random frames per CAER video, train/val/test video-disjoint, with a manifest."""
    from zoo.data.ncaer import build_ncaer

    summary = build_ncaer(
        caer_root, out, parts=parts, seed=seed, detector=None if detector == "none" else detector,
        jpeg_quality=quality, overwrite=overwrite, progress=typer.echo if verbose else None,
    )
    for split, count in sorted(summary.images.items()):
        typer.echo(f"{split}: {count} images")
    for key, count in sorted(summary.counts.items()):
        if count:
            typer.echo(f"{key}: {count}")
    typer.echo(f"manifest: {summary.out / 'manifest.csv'}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("build-ncaer")(build_ncaer_command)
