"""The Hub settings are read when a model is created (one frozen ``HubSettings``): no request at all under
HF_HUB_OFFLINE=1 (a server that records every request), the endpoint / cache / token passed explicitly on every
huggingface_hub call, huggingface_hub's own offline switch never flipped (a process that imported it offline
stays offline), and published configs that differ from their preset refused field by field.

Downloads run against the in-memory Hub double (``tests/hub_double.py``) on 127.0.0.1."""

from __future__ import annotations

import pytest
import torch
from hub_double import HubDouble, Repo
from hub_servers import eval_logits

import zoo
from zoo.registry.hookspecs import hookimpl
from zoo.weights import hub

TINY = {"backbone_args": {"channels": [8, 8, 8, 8, 8]}}
REPO = "zoo-env/tiny"


def publish(double: HubDouble, tmp_path, repo_id: str, model) -> str:
    """Put ``config.json`` + ``model.safetensors`` of ``model`` in a new repo of the double; returns the commit."""
    directory = zoo.save_pretrained(model, tmp_path / repo_id.replace("/", "--"))
    files = {name: (directory / name).read_bytes() for name in (hub.CONFIG_NAME, hub.WEIGHTS_NAME)}
    repo = Repo(private=False)
    repo.refs["main"] = double.new_commit(repo, None, files, "weights")
    double.repos[repo_id] = repo
    return repo.refs["main"]


@pytest.fixture
def double(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = zoo.create("glamor_net", **TINY)
    with HubDouble() as server:
        server.sha = publish(server, tmp_path, REPO, model)
        server.logits = eval_logits(model)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.fixture(params=[False, True], ids=["started-online", "started-offline"])
def import_time_offline(request, monkeypatch):
    """huggingface_hub's own copy of HF_HUB_OFFLINE, taken when it was imported: both ways a process can start."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", request.param)
    return request.param


def test_offline_makes_no_request_at_all(double, import_time_offline, monkeypatch):
    from huggingface_hub import constants

    if import_time_offline:  # huggingface_hub owns its offline mode: a process that imported it offline stays so
        with pytest.raises(hub.HubError, match="HF_HUB_OFFLINE is set"):
            zoo.create(f"hf-hub:{REPO}")
        assert double.requests == [] and constants.HF_HUB_OFFLINE is True
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the same process, had it started online
    online = zoo.create(f"hf-hub:{REPO}")
    torch.testing.assert_close(eval_logits(online), double.logits, rtol=0, atol=0)
    assert online.pretrained_cfg["commit"] == double.sha
    assert constants.HF_HUB_OFFLINE is False  # huggingface_hub's own setting is left as it was
    seen = len(double.requests)
    assert seen > 0

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in (f"hf-hub:{REPO}", f"hf-hub:{REPO}@{double.sha}"):  # a branch (cached ref) and a commit
        cached = zoo.create(name)
        torch.testing.assert_close(eval_logits(cached), double.logits, rtol=0, atol=0)
        assert cached.pretrained_cfg["commit"] == double.sha
    with pytest.raises(hub.HubError, match=r"'config.json' of Hub repo 'zoo-env/other'.*HF_HUB_OFFLINE is set"):
        zoo.create("hf-hub:zoo-env/other")
    with pytest.raises(hub.HubError, match="HF_HUB_OFFLINE is set"):
        zoo.create(f"hf-hub:{REPO}@v9")  # a revision never fetched
    assert len(double.requests) == seen, double.requests[seen:]  # not one request while offline
    assert constants.HF_HUB_OFFLINE is False


def test_every_download_passes_the_settings_read_now(double, import_time_offline, monkeypatch, tmp_path):
    """local_files_only, endpoint, cache_dir and token go explicitly into every hf_hub_download call, and
    huggingface_hub's HTTP-layer offline switch is never flipped (offline at its import: every call stays local)."""
    import huggingface_hub
    from huggingface_hub import constants

    calls = []
    real = huggingface_hub.hf_hub_download

    def spy(*args, **kwargs):
        calls.append({**kwargs, "http_offline": constants.HF_HUB_OFFLINE})
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", spy)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache-now"))
    monkeypatch.setenv("HF_TOKEN", "hf_token_now")
    if import_time_offline:  # nothing cached yet: the first model cannot be fetched, and nothing is asked
        with pytest.raises(hub.HubError, match="HF_HUB_OFFLINE is set"):
            zoo.create(f"hf-hub:{REPO}")
        assert double.requests == [] and calls and all(c["local_files_only"] and c["http_offline"] for c in calls)
        calls.clear()
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    zoo.create(f"hf-hub:{REPO}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    zoo.create(f"hf-hub:{REPO}@{double.sha}")

    assert len(calls) == 4  # config.json, then the weights at its commit; twice
    for i, call in enumerate(calls):
        offline = i >= 2
        assert call["local_files_only"] is offline and call["http_offline"] is False
        assert call["endpoint"] == double.url
        assert call["cache_dir"] == str(tmp_path / "cache-now")
        assert call["token"] == "hf_token_now"
    assert (tmp_path / "cache-now" / "models--zoo-env--tiny" / "snapshots" / double.sha / "config.json").is_file()
    assert {r["authorization"] for r in double.requests} == {"Bearer hf_token_now"}


def test_token_file_of_the_current_hf_home_is_used(double, monkeypatch, tmp_path):
    home = tmp_path / "home-now"
    home.mkdir()
    (home / "token").write_text("hf_from_file\n")
    monkeypatch.setenv("HF_HOME", str(home))
    assert hub.hub_token() == "hf_from_file"
    zoo.create(f"hf-hub:{REPO}")
    assert {r["authorization"] for r in double.requests} == {"Bearer hf_from_file"}
    monkeypatch.setenv("HF_TOKEN", "hf_env_wins")
    assert hub.hub_token() == "hf_env_wins"


def test_endpoint_set_after_a_first_call_is_used(double, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    import time
    import types

    import huggingface_hub.utils._http as hf_http

    # huggingface_hub retries a refused connection with exponential backoff (~20 s): skip the waiting only
    no_wait = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("_")})
    no_wait.sleep = lambda seconds: None
    monkeypatch.setattr(hf_http, "time", no_wait)
    with pytest.raises(hub.HubError, match="could not be reached"):
        zoo.create(f"hf-hub:{REPO}")
    assert double.requests == []
    monkeypatch.setenv("HF_ENDPOINT", double.url + "/")  # a mirror set in the running session
    assert zoo.create(f"hf-hub:{REPO}").pretrained_cfg["commit"] == double.sha


# ---- pretrained=True: the published config.json must describe the preset -------------------------------


def _published_variants() -> dict[str, dict]:
    """Models that load into the preset's architecture without a shape error, but are not the preset."""
    base = zoo.create("glamor_net", **TINY)
    names = list(base.config.label_names)
    return {
        "same": {},
        "labels": {"label_names": names[1:] + names[:1]},  # another class order, same number of classes
        "size": {"data": {"face_size": [48, 48]}},
        "norm": {"data": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}},
    }


@pytest.fixture
def variant_preset(double, tmp_path):
    from zoo.factory import merge_model_args
    from zoo.registry.plugins import register_plugin, unregister_plugin

    tags = []
    for tag, args in _published_variants().items():
        torch.manual_seed(1)
        sha = publish(double, tmp_path, f"zoo-env/{tag}", zoo.create("glamor_net", **TINY, **args))
        tags.append({"tag": tag, "hf_hub_id": f"zoo-env/{tag}", "revision": sha})

    class Variants:
        @hookimpl
        def register_presets(self, register):
            args = merge_model_args(zoo.get_preset("glamor_net").model_args, TINY)
            register("tiny_env", args, description="test preset", pretrained=tags)

    register_plugin(Variants(), "hub-env-variants")
    yield
    unregister_plugin("hub-env-variants")


def test_published_config_matching_the_preset_loads(variant_preset):
    model = zoo.create("tiny_env.same", pretrained=True)
    assert model.pretrained_cfg["hf_hub_id"] == "zoo-env/same"


@pytest.mark.parametrize(("tag", "message"), ids=["labels", "size", "norm"], argvalues=[
    ("labels", r"label_names: published \['Disgust', .*'Anger'\], preset \['Anger', 'Disgust'"),
    ("size", r"data.face_size: published \[48, 48\], preset \[96, 96\]"),
    ("norm", r"data.mean: published \[0.485, 0.456, 0.406\], preset \[0.0, 0.0, 0.0\]; "
             r"data.std: published \[0.229, 0.224, 0.225\], preset \[1.0, 1.0, 1.0\]"),
])
def test_published_config_with_other_labels_size_or_normalisation_is_refused(variant_preset, tag, message):
    with pytest.raises(hub.HubError, match=rf"tiny_env.{tag} \(zoo-env/{tag}@[0-9a-f]{{40}}\): the published "
                                           rf"config.json does not describe this preset \({message}"):
        zoo.create(f"tiny_env.{tag}", pretrained=True)


def test_hub_settings_are_one_frozen_reading_of_the_environment(tmp_path, monkeypatch):
    import dataclasses

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # as a process started online

    home = tmp_path / "home"
    home.mkdir()
    (home / "token").write_text("hf_file\n")
    env = {"HF_HOME": str(home), "HF_ENDPOINT": "http://mirror.invalid/", "TRANSFORMERS_OFFLINE": "yes"}
    settings = hub.HubSettings.from_env(env)
    assert settings == hub.HubSettings("http://mirror.invalid", str(home / "hub"), True, "hf_file")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.offline = False
    assert hub.HubSettings.from_env({**env, "HF_HUB_CACHE": str(tmp_path / "c")}, token="hf_arg").token == "hf_arg"
    assert hub.HubSettings.from_env({**env, "HF_HUB_CACHE": str(tmp_path / "c")}).cache_dir == str(tmp_path / "c")
    bare = hub.HubSettings.from_env({"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert bare.cache_dir == str(tmp_path / "xdg" / "huggingface" / "hub") and bare.token is None
    assert bare.endpoint == hub.DEFAULT_ENDPOINT and bare.offline is False
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # huggingface_hub imported under HF_HUB_OFFLINE=1
    assert hub.HubSettings.from_env({}).offline is True
