"""``zoo-cli train``: a thin layer over ``zoo.train``."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Optional

import typer

from zoo.cli.common import OVERRIDES_HELP, configure_logging, metrics_summary, split_model_and_overrides


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler's stop) ends the run as Ctrl-C would: the stack unwinds, so the run lock is
    released and files are closed, instead of the process vanishing mid-write. Exit status 143 (128 + 15)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        print("stopped by SIGTERM; the last checkpoint is kept: continue with the same command, --resume instead of "
              "--overwrite", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def train_command(
    model: Optional[str] = typer.Argument(None, help="recipe, preset or local-dir:DIR (see --list-recipes)"),
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP),
    data: Optional[str] = typer.Option(None, "--data", help="training data spec, e.g. caer_s:/data/CAER-S"),
    val: Optional[str] = typer.Option(None, "--val", help="validation data spec (default: --data, split val)"),
    out: Optional[str] = typer.Option(None, "--out", help="run directory (default runs/<recipe>)"),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="train MODEL with this recipe's settings"),
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
    model, overrides = split_model_and_overrides(model, overrides)
    configure_logging()
    with _sigterm_unwinds():
        result = train(model, data=data, val=val, out=out, overrides=overrides, recipe=recipe, resume=resume,
                       overwrite=overwrite)
    typer.echo(f"run directory: {result.out}")
    if result.best_epoch is not None:
        typer.echo(f"best epoch {result.best_epoch}: {metrics_summary(result.best_metrics)}")
    if result.stopped_early:
        typer.echo("stopped early (no improvement for early_stopping epochs)")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("train", context_settings={"allow_extra_args": False})(train_command)
