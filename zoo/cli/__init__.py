"""``zoo-cli``: a thin typer layer over the Python API.

Commands live in one module per area (``zoo.cli.models``, ``zoo.cli.train``, ...) as plain functions; each
module's ``register(app)`` adds them, and :func:`build_app` calls those explicitly, in :data:`COMMAND_MODULES`
order, then every plugin's ``register_commands(app)`` hook. Importing a command module registers nothing.
``zoo.cli.app`` is built on first use, so plugins registered in-process before that get their commands in.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import typer
import typer.main

from zoo.cli import ablate, bench, data, demo, export, hub, models, predict, serve, train
from zoo.cli import eval as eval_
from zoo.cli.common import (
    configure_logging,
    echo_fields,
    error_message,
    expected_errors,
    is_user_error,
    report_bug,
)
from zoo.errors import RegistryClashError
from zoo.registry.entries import Registry
from zoo.registry.plugins import run_plugin_hooks

__all__ = ["COMMAND_MODULES", "app", "build_app", "configure_logging", "echo_fields", "expected_errors", "main"]

#: the command modules, in the order their commands appear in ``zoo-cli --help``
COMMAND_MODULES = (models, data, train, eval_, predict, ablate, hub, bench, demo, export, serve)
#: the owner named when a plugin's command clashes with a built-in one
BUILTIN_COMMANDS = "zoo.cli"


def build_app() -> typer.Typer:
    """A new ``zoo-cli`` app: the built-in commands, then the commands of the plugins loaded now."""
    app = typer.Typer(
        name="zoo-cli",
        help="emotion-zoo: emotion recognition models from faces and their context. Errors are one 'error:' line "
             "(exit status 1); add --debug anywhere on the command line (or set ZOO_DEBUG=1) for the traceback.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for module in COMMAND_MODULES:
        module.register(app)
    _add_plugin_commands(app)
    return app


@dataclass(frozen=True)
class _Command:
    name: str
    plugin: str


def _add_plugin_commands(app: typer.Typer) -> None:
    """Each plugin's ``register_commands`` adds to a staging app first; its commands join ``app`` only if they
    build and no name is taken, so a refused plugin leaves no command behind."""
    owners: Registry | None = None

    def add(plugin: str, register_commands: Any) -> None:
        nonlocal owners
        staging = typer.Typer()
        register_commands(app=staging)
        if staging.registered_callback is not None:
            raise ValueError("register_commands set a callback on the zoo-cli app; add commands (@app.command()) or "
                             "sub-apps (app.add_typer(sub, name=...)) only.")
        names = _command_names(staging)
        if owners is None:
            owners = Registry("command", "zoo-cli command")
            for name in _command_names(app):
                owners.add(_Command(name, BUILTIN_COMMANDS))
        for number, name in enumerate(names):
            if name in names[:number]:
                raise RegistryClashError(f"plugin {plugin!r} adds the zoo-cli command {name!r} twice; add it once.")
            owners.check_free(name, plugin)
        for name in names:
            owners.add(_Command(name, plugin))
        app.registered_commands.extend(staging.registered_commands)
        app.registered_groups.extend(staging.registered_groups)

    run_plugin_hooks("register_commands", add)


def _command_names(app: typer.Typer) -> list[str]:
    """The names ``app``'s commands and sub-apps add, one build each so that a name given twice shows (a
    nameless sub-app adds its own commands). Building them is what finds a broken command."""
    names = []
    for commands, groups in [*(([c], []) for c in app.registered_commands), *(([], [g]) for g in app.registered_groups)]:
        probe = typer.Typer()
        probe.registered_commands, probe.registered_groups = commands, groups
        names += list(typer.main.get_group(probe).commands)
    return names


def __getattr__(name: str) -> Any:
    if name == "app":  # built on first use (PEP 562), then an ordinary module attribute
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(f"module 'zoo.cli' has no attribute {name!r}")


def main() -> None:
    """The ``zoo-cli`` entry point: the user's mistakes become one ``error: ...`` line and exit status 1; a bug
    (an error the library's own logic raised, :func:`zoo.cli.common.is_user_error`) prints its traceback and a
    line asking to report it; Ctrl-C is ``error: interrupted`` (130). ``--debug`` anywhere before a ``--``, or
    ``ZOO_DEBUG=1``, re-raises every error with its traceback."""
    # OpenMP threads that spin while waiting slow tiny CPU workloads down by 10-30× when the cores are
    # shared (measured: 2.2 s vs 0.10 s per training step of the demo model at load 6 on 2 cores). Passive
    # waiting costs little on an idle machine. Set before torch is imported; an explicit value wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    end = sys.argv.index("--") if "--" in sys.argv else len(sys.argv)
    debug = "--debug" in sys.argv[1:end] or os.environ.get("ZOO_DEBUG", "").strip() not in ("", "0")
    sys.argv = [a for i, a in enumerate(sys.argv) if not (a == "--debug" and 0 < i < end)]
    configure_logging()
    try:
        build_app()()
    except KeyboardInterrupt:  # Ctrl-C, or a plugin hook raising it: no traceback
        if debug:
            raise
        typer.secho("error: interrupted (KeyboardInterrupt).", err=True, fg=typer.colors.RED)
        raise SystemExit(130) from None
    except Exception as exc:  # noqa: BLE001 - the user's mistakes get one line, bugs their traceback
        if debug:
            raise
        if isinstance(exc, expected_errors()) and is_user_error(exc):
            typer.secho(f"error: {error_message(exc)}", err=True, fg=typer.colors.RED)
        else:
            report_bug(exc)
        raise SystemExit(1) from None
