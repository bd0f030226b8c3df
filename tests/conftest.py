"""Test isolation: no third-party plugin installed on the machine, no network, a private HF cache.

Every Hugging Face setting is fixed per test with ``monkeypatch`` (not only at import), so the suite behaves the
same whatever the starting environment holds (``HF_HUB_OFFLINE=1``, a token, a mirror) and whether or not
``huggingface_hub`` was imported before this file: ``zoo.weights.hub`` reads the environment at call time.
"""

from __future__ import annotations

import os
import sys

os.environ["ZOO_LOAD_PLUGINS"] = ""  # before anything imports zoo.registry.plugins
os.environ.pop("ZOO_STRICT_PLUGINS", None)
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
# a safety net for code that reads huggingface_hub's import-time endpoint; each test sets its own below
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"
# spinning OpenMP threads thrash when test subprocesses share the 2 cores (see zoo.cli.main)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

#: a dead loopback port: a request that escapes a test's own server fails fast
DEAD_ENDPOINT = "http://127.0.0.1:9"
#: settings from the starting environment that would change what the hub code does
_HF_UNSET = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH",
             "HUGGINGFACE_HUB_CACHE")


@pytest.fixture(autouse=True)
def _private_hf_env(tmp_path_factory, monkeypatch):
    """Online (HF_HUB_OFFLINE unset), endpoint dead, no token, a fresh HF home and cache for every test."""
    for name in _HF_UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", DEAD_ENDPOINT)
    home = tmp_path_factory.mktemp("hf_home")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    yield


@pytest.fixture
def tiny_plugin():
    """The tiny test components (``tiny_training``) registered, one torch thread, both undone afterwards."""
    import tiny_training

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tiny_training.register()
    yield
    tiny_training.unregister()
    torch.set_num_threads(threads)


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """``run_cli(args) -> (exit status, stdout, stderr)``: ``zoo-cli ARGS`` in this process through the real
    entry point (``zoo.cli.main``)."""
    import zoo.cli

    def run(args: list[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["zoo-cli", *args])
        try:
            zoo.cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def fresh_plugins(monkeypatch):
    """Reload the plugin registries under a test's environment and restore them afterwards."""
    from zoo.registry import plugins

    plugins.reset()
    yield plugins
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "")
    monkeypatch.delenv("ZOO_STRICT_PLUGINS", raising=False)
    plugins.reset()


@pytest.fixture
def site(tmp_path, monkeypatch, fresh_plugins):
    """A fresh folder on ``sys.path`` for fake installed distributions (plugins); the modules imported from it
    are forgotten afterwards."""
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    monkeypatch.delenv("ZOO_LOAD_PLUGINS", raising=False)
    before = set(sys.modules)
    yield path
    for name in set(sys.modules) - before:
        if str(getattr(sys.modules[name], "__file__", None) or "").startswith(str(path)):
            del sys.modules[name]
