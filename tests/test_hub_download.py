"""pretrained=True, hf-hub: names, pinning, offline use and prefetching against a real local Hub (olah)."""

from __future__ import annotations

import json

import pytest
import torch
from hub_double import ANY_REVISION_COMMIT, AnyRevisionHub
from hub_servers import OlahServer, commit_all, eval_logits, init_repo
from tiny_face import timm_face_config, tiny_face_model

import zoo
import zoo.weights.sources
from zoo.errors import ConfigError, HubError, WeightsError, ZooError
from zoo.names import split_repo_revision
from zoo.registry.hookspecs import hookimpl
from zoo.weights import hub

REPO = "zoo-test/tiny-glamor"
TIMM_REPO = "timm/test_resnet.r160_in1k"
TINY = {"backbone_args": {"channels": [8, 8, 8, 8, 8]}}


def tiny_model(seed: int) -> zoo.EmotionModel:
    torch.manual_seed(seed)
    model = zoo.create("glamor_net", **TINY).eval()
    with torch.no_grad():  # non-default BN statistics, so that loading them is checked too
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model


def publish_timm_weights(mirrors):
    """timm's Hub layout for ``test_resnet`` (a 0.4 M-parameter timm test model): the whole classifier
    model's state in ``model.safetensors`` under its timm Hub id."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(3)
    source = timm.create_model("test_resnet")
    repo = init_repo(mirrors, TIMM_REPO)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(repo / "model.safetensors"))
    commit_all(repo, "weights")
    return source.state_dict()


@pytest.fixture(scope="session")
def hub_repo(tmp_path_factory):
    """A git repo with two commits (v1.0 tagged, then v2 on main) served by olah on 127.0.0.1."""
    server = OlahServer(tmp_path_factory.mktemp("olah"))
    repo = init_repo(server.mirrors, REPO)
    v1, v2 = tiny_model(1), tiny_model(2)
    zoo.save_pretrained(v1, repo)
    sha1 = commit_all(repo, "v1", tag="v1.0")
    zoo.save_pretrained(v2, repo)
    sha2 = commit_all(repo, "v2")
    timm_state = publish_timm_weights(server.mirrors)
    server.start(REPO)
    try:
        yield {"url": server.url, "sha1": sha1, "sha2": sha2, "v1": eval_logits(v1), "v2": eval_logits(v2),
               "timm_state": timm_state}
    finally:
        server.stop()


@pytest.fixture
def online(hub_repo, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub_repo["url"])
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return hub_repo


class TinyPresetPlugin:
    """A preset with published weights: a tag on a branch-like ref and one pinned to a commit sha."""

    def __init__(self, sha: str) -> None:
        self.sha = sha

    @hookimpl
    def register_presets(self, register):
        from zoo.factory import merge_model_args

        args = merge_model_args(zoo.get_preset("glamor_net").model_args, TINY)
        register(
            "tiny_glamor",
            args,
            description="test preset",
            pretrained=[
                {"tag": "v1", "hf_hub_id": REPO, "revision": "v1.0", "dataset": "caer_s"},
                {"tag": "pinned", "hf_hub_id": REPO, "revision": self.sha},
                {"tag": "unpinned", "hf_hub_id": REPO},
            ],
        )


@pytest.fixture
def tiny_preset(online):
    from zoo.registry.plugins import register_plugin, unregister_plugin

    register_plugin(TinyPresetPlugin(online["sha2"]), "hub-test-presets")
    yield online
    unregister_plugin("hub-test-presets")


def test_pretrained_tag_loads_pinned_weights_and_records_commit(tiny_preset):
    model = zoo.create("tiny_glamor", pretrained=True)  # default tag = first: v1 at git tag v1.0
    torch.testing.assert_close(eval_logits(model), tiny_preset["v1"], rtol=0, atol=0)
    cfg = model.pretrained_cfg
    assert (cfg["hf_hub_id"], cfg["revision"], cfg["commit"], cfg["tag"]) == (REPO, "v1.0", tiny_preset["sha1"], "v1")
    pinned = zoo.create("tiny_glamor.pinned", pretrained=True)
    torch.testing.assert_close(eval_logits(pinned), tiny_preset["v2"], rtol=0, atol=0)
    assert pinned.pretrained_cfg["commit"] == tiny_preset["sha2"]
    # the files sit in the standard cache layout under HF_HUB_CACHE read at call time
    assert (hub.Path(hub.hub_cache_dir()) / "models--zoo-test--tiny-glamor" / "snapshots" / tiny_preset["sha1"]).is_dir()


def test_pretrained_tag_without_pinned_revision_is_refused(tiny_preset):
    with pytest.raises(HubError, match="tiny_glamor.unpinned.*pinned revision"):
        zoo.create("tiny_glamor.unpinned", pretrained=True)


def test_pretrained_config_must_match_the_preset(tiny_preset):
    from zoo.registry.plugins import register_plugin, unregister_plugin

    class WrongEps:
        @hookimpl
        def register_presets(self, register):
            args = {**zoo.get_preset("tiny_glamor").model_args, "backbone_args": TINY["backbone_args"]}
            register("tiny_glamor_eps", args, pretrained=[{"tag": "v1", "hf_hub_id": REPO, "revision": "v1.0"}])

    register_plugin(WrongEps(), "hub-test-wrong-eps")
    try:
        with pytest.raises(HubError, match=r"backbone_args: published .*'bn_eps': 0.001.*, preset \{'channels'"):
            zoo.create("tiny_glamor_eps", pretrained=True)
    finally:
        unregister_plugin("hub-test-wrong-eps")


def test_pretrained_with_other_classes_gets_a_fresh_output_layer_and_other_shapes_still_fail(tiny_preset):
    """Hub weights and another num_classes: all but the classifier's output layer load (timm
    ``load_pretrained``); a mismatch elsewhere (the hidden head width) is still the strict load's error."""
    names = [str(i) for i in range(8)]
    pretrained = zoo.create("tiny_glamor", pretrained=True).state_dict()
    model = zoo.create("tiny_glamor", pretrained=True, num_classes=8, label_names=names)
    state = model.state_dict()
    assert state["classifier.3.weight"].shape == (8, 128) and model.pretrained_cfg["new_head"]["num_classes"] == [7, 8]
    assert all(torch.equal(state[k], v) for k, v in pretrained.items() if not k.startswith("classifier.3."))
    with pytest.raises(WeightsError, match=r"shape mismatches: classifier.0.weight: file \(128, \d+\) vs model \(64, \d+\)"):
        zoo.create("tiny_glamor", pretrained=True, num_classes=8, label_names=names, head_hidden=64)


def test_hf_hub_names_tag_sha_and_main(online):
    by_tag = zoo.create(f"hf-hub:{REPO}@v1.0")
    by_sha = zoo.create(f"hf-hub:{REPO}@{online['sha1']}")
    latest = zoo.create(f"hf-hub:{REPO}")
    torch.testing.assert_close(eval_logits(by_tag), online["v1"], rtol=0, atol=0)
    torch.testing.assert_close(eval_logits(by_sha), online["v1"], rtol=0, atol=0)
    torch.testing.assert_close(eval_logits(latest), online["v2"], rtol=0, atol=0)
    assert by_tag.pretrained_cfg["commit"] == online["sha1"]
    assert latest.pretrained_cfg["commit"] == online["sha2"]
    assert latest.config.backbone_args == {"channels": [8, 8, 8, 8, 8], "bn_momentum": 0.01, "bn_eps": 1e-3}


def test_hf_hub_unknown_revision_and_repo_errors_name_them(online):
    with pytest.raises(HubError, match=r"'config.json' of Hub repo 'zoo-test/tiny-glamor' at revision 'nope'"):
        zoo.create(f"hf-hub:{REPO}@nope")
    with pytest.raises(HubError, match="zoo-test/missing"):
        zoo.create("hf-hub:zoo-test/missing")


def test_offline_after_cache_gives_identical_outputs(online, monkeypatch):
    first = eval_logits(zoo.create(f"hf-hub:{REPO}@v1.0"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = zoo.create(f"hf-hub:{REPO}@v1.0")
    torch.testing.assert_close(eval_logits(again), first, rtol=0, atol=0)
    assert again.pretrained_cfg["commit"] == online["sha1"]


def test_offline_without_cache_names_repo_file_revision_and_prefetch(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ZooError) as info:
        zoo.create(f"hf-hub:{REPO}@v1.0")
    message = str(info.value)
    for part in ("'config.json'", REPO, "'v1.0'", "HF_HUB_OFFLINE", f"zoo-cli pull hf-hub:{REPO}@v1.0"):
        assert part in message


def test_unreachable_hub_without_cache_says_so(monkeypatch):
    import time
    import types

    import huggingface_hub.utils._http as hf_http

    # huggingface_hub retries a refused connection with exponential backoff (~20 s): skip the waiting only
    no_wait = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("_")})
    no_wait.sleep = lambda seconds: None
    monkeypatch.setattr(hf_http, "time", no_wait)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(HubError, match=r"the Hub could not be reached and the file is not in the cache"):
        zoo.create(f"hf-hub:{REPO}@v1.0")


def test_pull_prefetches_for_offline_use(tiny_preset, monkeypatch):
    import json

    from typer.testing import CliRunner

    import zoo.cli

    result = CliRunner().invoke(zoo.cli.app, ["pull", "tiny_glamor.v1", f"hf-hub:{REPO}", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["commit"] for r in rows] == [tiny_preset["sha1"], tiny_preset["sha2"]]
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = zoo.create("tiny_glamor.v1", pretrained=True)
    torch.testing.assert_close(eval_logits(model), tiny_preset["v1"], rtol=0, atol=0)


def test_list_pretrained_shows_tags_with_repo_and_revision(tiny_preset):
    from typer.testing import CliRunner

    import zoo.cli

    result = CliRunner().invoke(zoo.cli.app, ["list", "tiny*", "--pretrained"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[2:]}
    assert lines["tiny_glamor.v1"][:2] == [REPO, "v1.0"]
    assert lines["tiny_glamor.pinned"][:2] == [REPO, tiny_preset["sha2"]]
    assert lines["tiny_glamor.unpinned"][:2] == [REPO, "-"]


def test_endpoint_and_cache_are_read_at_call_time(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.invalid")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "c"))
    assert hub.hub_endpoint() == "http://mirror.invalid"
    assert hub.hub_cache_dir() == str(tmp_path / "c")
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "h"))
    assert hub.hub_cache_dir() == str(tmp_path / "h" / "hub")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("org/x", ("org/x", None)), ("org/x@v1.0", ("org/x", "v1.0")), ("x@" + "a" * 40, ("x", "a" * 40))],
)
def test_split_repo_revision(spec, expected):
    assert split_repo_revision(spec) == expected


def test_split_repo_revision_rejects_paths():
    with pytest.raises(HubError, match="not a Hub repo id"):
        split_repo_revision("a/b/c")


# ---- backbone initialisation through the same machinery ----


def test_backbone_pretrained_loads_timm_weights_into_both_encoders(online):
    model = zoo.create(backbone="timm:test_resnet", attention="gla", backbone_pretrained=True)
    source = online["timm_state"]
    for encoder in (model.face_encoder, model.context_encoder):
        body = encoder.body.state_dict()
        assert body and all(torch.equal(v, source[k]) for k, v in body.items())
    (face, context) = model.pretrained_cfg["backbones"]
    assert face["hf_hub_id"] == TIMM_REPO and face["stream"] == "face" and len(face["commit"]) == 40
    assert context["stream"] == "context"


def test_backbone_pretrained_offline_without_cache_is_the_same_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match=r"'model.safetensors' of Hub repo 'timm/test_resnet.r160_in1k'.*zoo-cli pull"):
        zoo.create(backbone="timm:test_resnet", attention="gla", backbone_pretrained=True)


def test_face_trunk_from_local_dir_initialises_the_face_encoder_only(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(5)
    trunk = zoo.create("glamor_net", **TINY).face_encoder
    save_file(trunk.state_dict(), str(tmp_path / "model.safetensors"))
    model = zoo.create("glamor_net", **TINY, backbone_pretrained=f"local-dir:{tmp_path}",
                       context_backbone_pretrained=False)
    assert all(torch.equal(v, trunk.state_dict()[k]) for k, v in model.face_encoder.state_dict().items())
    assert not torch.equal(model.context_encoder.blocks[0][0].weight, trunk.blocks[0][0].weight)
    assert model.pretrained_cfg["backbones"] == [{"stream": "face", "source": "local-dir",
                                                  "path": str(tmp_path / "model.safetensors")}]


def test_backbone_pretrained_true_on_caer_cnn_says_what_to_do():
    with pytest.raises(HubError, match="no published ImageNet weights"):
        zoo.create("glamor_net", **TINY, backbone_pretrained=True)


def test_backbone_weights_that_do_not_fit_name_the_keys(tmp_path):
    from safetensors.torch import save_file

    save_file({"blocks.0.0.weight": torch.zeros(8, 3, 3, 3)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(WeightsError, match=r"does not fit the face backbone \(missing: blocks.0.0.bias"):
        zoo.create("glamor_net", **TINY, backbone_pretrained=f"local-dir:{tmp_path}")


@pytest.fixture
def model_files(tmp_path):
    directory = zoo.save_pretrained(tiny_face_model(), tmp_path / "published")
    return {name: (directory / name).read_bytes() for name in ("config.json", "model.safetensors")}


BAD_REVISIONS = ["../../../outside", "/abs/outside", "a/../../b", "..", "x\\..\\y", "a\x00b", "new\nline",
                 "-rf", ".hidden", "ok/.git", "x.lock", "a//b", "trailing/", "x" * 201, "@{-1}", "rev with space"]


@pytest.mark.parametrize("revision", BAD_REVISIONS)
def test_hub_revision_that_names_a_path_is_refused_before_any_request(revision, model_files, tmp_path,
                                                                         monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # the cache stores a branch or tag as refs/<revision>: without the check, "../../../outside" is written as
    # tmp_path/a/b/c/outside (measured on the code before the fix), outside the cache
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "a/b/c/hub"))
    with AnyRevisionHub(model_files) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(HubError, match="not a commit sha"):
            zoo.create(f"hf-hub:org/tiny@{revision}")
        with pytest.raises(HubError, match="not a commit sha"):
            zoo.weights.sources.prefetch(f"hf-hub:org/tiny@{revision}")
        with pytest.raises(HubError, match="not a commit sha"):
            zoo.weights.hub.hub_download("org/tiny", "config.json", revision)
        assert hub.requests == []
    written = [p for p in tmp_path.rglob("*") if "outside" in p.name]
    assert written == []


def test_safe_revisions_still_work_against_the_same_server(model_files, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with AnyRevisionHub(model_files) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        for revision in ("v1.0", "refs/pr/1", "release_2+b", ANY_REVISION_COMMIT):
            model = zoo.create(f"hf-hub:org/tiny@{revision}")
            assert model.pretrained_cfg["commit"] == ANY_REVISION_COMMIT
        assert hub.requests  # the server answers: only the unsafe names above are refused


def test_a_hub_config_with_loading_options_is_refused_before_its_weights_are_fetched(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    files = {"config.json": json.dumps(timm_face_config({"pretrained": True, "pretrained_cfg_overlay": {
        "url": "http://127.0.0.1:9/x.pth", "hf_hub_id": ""}})).encode(), "model.safetensors": b"x"}
    with AnyRevisionHub(files) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(ConfigError, match="loading option"):
            zoo.create("hf-hub:org/evil")
        assert hub.requests and all("config.json" in r for r in hub.requests)
