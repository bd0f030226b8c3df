"""Test isolation: no third-party plugin installed on the machine, no network, a private HF cache."""

from __future__ import annotations

import os

# Before anything imports zoo.plugins or huggingface_hub.
os.environ["ZOO_LOAD_PLUGINS"] = ""
os.environ.pop("ZOO_STRICT_PLUGINS", None)
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"  # a dead loopback port: an escaped request fails fast
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
# spinning OpenMP threads thrash when test subprocesses share the 2 cores (see zoo.cli.main)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _private_hf_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("hf_home")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    yield


@pytest.fixture
def fresh_plugins(monkeypatch):
    """Reload the plugin registries under a test's environment and restore them afterwards."""
    from zoo import plugins

    plugins.reset()
    yield plugins
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "")
    monkeypatch.delenv("ZOO_STRICT_PLUGINS", raising=False)
    plugins.reset()
