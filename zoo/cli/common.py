"""Helpers the command modules share: logging on stderr, aligned fields, which errors are the user's, and the
KEY=VALUE settings and metrics lines of the training commands."""

from __future__ import annotations

import logging
import os
import sys

import typer

#: the help of the KEY=VALUE arguments of ``train`` and ``ablate``
OVERRIDES_HELP = "settings as KEY=VALUE: epochs=5 optimizer.lr=0.01 attention=ca model_args.data.face_size=[64,64]"


def split_model_and_overrides(model: str | None, overrides: list[str] | None) -> tuple[str | None, list[str]]:
    """A first argument with ``=`` is a setting, not a model name (``zoo-cli train --resume epochs=5``)."""
    overrides = list(overrides or [])
    if model is not None and "=" in model:
        return None, [model, *overrides]
    return model, overrides


def metrics_summary(metrics: dict) -> str:
    """``accuracy 70.00%  balanced_accuracy ...  macro_f1 ...``: the metrics a result has."""
    return "  ".join(f"{k} {100 * metrics[k]:.2f}%" for k in ("accuracy", "balanced_accuracy", "macro_f1")
                     if metrics.get(k) is not None)


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
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (as ``logging.lastResort`` does), not to the
    stream of the moment it was made: a command run in-process (typer's test runner, a notebook) swaps stderr, and
    a handler holding the old one would write to a closed file."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def expected_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean a user mistake or an environment problem (a bad value, a missing or unreadable file,
    an unreachable server), shown as one ``error:`` line; anything else is a bug and keeps its traceback."""
    import json

    from zoo.errors import TRANSPORT_ERRORS, ZooError, optional_exceptions

    found: tuple[type[BaseException], ...] = (ZooError, ValueError, TypeError, OSError, KeyError, IndexError,
                                              json.JSONDecodeError, UnicodeError, RecursionError, MemoryError)
    return found + optional_exceptions("PIL.Image:DecompressionBombError", "safetensors:SafetensorError",
                                       *TRANSPORT_ERRORS, "huggingface_hub.errors:HfHubHTTPError")


#: where a bug is reported (pyproject.toml's Homepage)
ISSUES_URL = "https://github.com/emotion-zoo/emotion-zoo/issues"


def is_user_error(exc: BaseException) -> bool:
    """Whether an :func:`expected_errors` exception is the user's (a bad value or file, the environment) rather
    than a bug. Errors raised on purpose are the user's: every :class:`zoo.errors.ZooError`, ``OSError`` and the
    libraries' own error types. A bare ``ValueError``, ``TypeError``, ``KeyError`` or ``IndexError`` is the
    user's only when a ``raise`` statement raised it (a check, here or in a library); one that an operation
    inside ``zoo`` raised (``int(...)``, ``d[key]``, ``None + 1``) is the library's own logic failing: a bug."""
    import json

    from zoo.errors import ZooError

    if isinstance(exc, (ZooError, OSError, json.JSONDecodeError, UnicodeError, RecursionError, MemoryError)):
        return True
    if not isinstance(exc, (ValueError, TypeError, KeyError, IndexError)) or type(exc).__module__ != "builtins":
        return True  # a library's own error type (SafetensorError, DecompressionBombError, HTTPError, ...)
    return _raised_on_purpose(exc)


def _raised_on_purpose(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is a ``raise`` statement, or lies outside ``zoo``."""
    import linecache

    tb = exc.__traceback__
    if tb is None:
        return True
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../zoo
    if not os.path.abspath(filename).startswith(package + os.sep):
        return True  # a library checked the value it was given
    return linecache.getline(filename, tb.tb_lineno).lstrip().startswith("raise")


def report_bug(exc: BaseException) -> None:
    """Print ``exc``'s traceback and a line asking to report it, on stderr."""
    import traceback

    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    typer.secho(f"error: an internal error in emotion-zoo ({type(exc).__name__}: {exc}); this is a bug, not "
                f"your mistake. Please report it at {ISSUES_URL} with the command and the traceback above.",
                err=True, fg=typer.colors.RED)


def error_message(exc: BaseException) -> str:
    from zoo.errors import ZooError

    text = str(exc.args[0]) if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)
    if isinstance(exc, ZooError):
        return text
    return f"{text or type(exc).__name__} ({type(exc).__name__}; run with --debug for the traceback)"
