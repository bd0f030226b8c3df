"""``zoo-cli``: a thin typer layer over the Python API.

Commands live in one module per area (``zoo.cli.models``, ...); each adds itself to ``app`` (so no module
here may be named ``app``).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer

app = typer.Typer(
    name="zoo-cli",
    help="emotion-zoo: emotion recognition models from faces and their context. Errors are one 'error:' line "
         "(exit status 1); add --debug anywhere on the command line (or set ZOO_DEBUG=1) for the traceback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: command modules; each registers its commands on ``app`` when imported
COMMAND_MODULES = (
    "zoo.cli.models", "zoo.cli.data", "zoo.cli.train", "zoo.cli.hub", "zoo.cli.bench", "zoo.cli.demo",
    "zoo.cli.export", "zoo.cli.serve",
)


def echo_fields(fields: list[tuple[str, object]], width: int = 0) -> None:
    """One ``label: value`` line per field whose value is not None, the labels (with their colon) padded to
    ``width``; the commands' plain-text reports."""
    for label, value in fields:
        if value is not None:
            typer.echo(f"{label + ':':<{width}} {value}")


def configure_logging() -> None:
    """Show the ``zoo`` loggers' progress and information on stderr, one plain line each. ``ZOO_LOG_LEVEL``
    (DEBUG, INFO, WARNING, ERROR; default INFO) chooses how much; a handler the user installed is kept."""
    logger = logging.getLogger("zoo")
    level = os.environ.get("ZOO_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if not isinstance(logging.getLevelName(level), int):
        raise SystemExit(f"error: ZOO_LOG_LEVEL={level!r} is not a logging level; use DEBUG, INFO, WARNING or ERROR.")
    logger.setLevel(level)
    if not any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


def _load_commands() -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(module)


def expected_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean a user mistake or an environment problem (a bad value, a missing or unreadable file,
    an unreachable server), shown as one ``error:`` line; anything else is a bug and keeps its traceback."""
    import json

    from zoo.errors import ZooError

    found: list[type[BaseException]] = [ZooError, ValueError, TypeError, OSError, KeyError, IndexError,
                                        json.JSONDecodeError, UnicodeError, RecursionError, MemoryError]
    for module, name in (("PIL.Image", "DecompressionBombError"), ("safetensors", "SafetensorError"),
                         ("requests", "RequestException"), ("httpx", "HTTPError"), ("httpx2", "HTTPError"),
                         ("huggingface_hub.errors", "HfHubHTTPError")):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _message(exc: BaseException) -> str:
    from zoo.errors import ZooError

    text = str(exc.args[0]) if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)
    if isinstance(exc, ZooError):
        return text
    return f"{text or type(exc).__name__} ({type(exc).__name__}; run with --debug for the traceback)"


def main() -> None:
    """The ``zoo-cli`` entry point: expected errors become ``error: ...`` and exit status 1 (``--debug``
    anywhere before a ``--``, or ``ZOO_DEBUG=1``, re-raises them with their traceback)."""
    # OpenMP threads that spin while waiting slow tiny CPU workloads down by 10-30× when the cores are
    # shared (measured: 2.2 s vs 0.10 s per training step of the demo model at load 6 on 2 cores). Passive
    # waiting costs little on an idle machine. Set before torch is imported; an explicit value wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    end = sys.argv.index("--") if "--" in sys.argv else len(sys.argv)
    debug = "--debug" in sys.argv[1:end] or os.environ.get("ZOO_DEBUG", "").strip() not in ("", "0")
    sys.argv = [a for i, a in enumerate(sys.argv) if not (a == "--debug" and 0 < i < end)]
    configure_logging()
    _load_commands()
    try:
        app()
    except expected_errors() as exc:
        if debug:
            raise
        typer.secho(f"error: {_message(exc)}", err=True, fg=typer.colors.RED)
        raise SystemExit(1) from None
