"""zoo-cli push against the in-memory Hub double: files, card, tags, PRs, card preservation, round trip."""

from __future__ import annotations

import json

import pytest
import torch
from hub_double import AnyRevisionHub, HubDouble
from tiny_face import tiny_face_model
from typer.testing import CliRunner

import zoo
import zoo.cli
from zoo.errors import HubError, WeightsError
from zoo.publish import push as hub
from zoo.publish.cards import split_front_matter

TINY = {"backbone_args": {"channels": [8, 8, 8, 8, 8]}}
EVAL = {"accuracy": 0.625, "balanced_accuracy": 0.5, "macro_f1": 0.4375, "num_samples": 16, "split": "test",
        "dataset": "caer_s:/data/private/CAER-S", "per_class_recall": {"Anger": 1.0, "Disgust": None}}


@pytest.fixture
def double(monkeypatch):
    with HubDouble() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", "hf_test_token")
        yield server


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    model = zoo.create("glamor_net", **TINY).eval()
    return zoo.save_pretrained(model, tmp_path / "model"), model


@pytest.fixture
def run_dir(tmp_path, model_dir):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(model_dir[0], run / "best")
    (run / "run_config.json").write_text(json.dumps({
        "model": "glamor_net", "epochs": 3, "batch_size": 4,
        "optimizer": {"name": "sgd", "lr": 5e-4, "momentum": 0.9},
        "data": {"train": "caer_s:/data/private/CAER-S", "val_split": "test"},
    }))
    (run / "eval.json").write_text(json.dumps(EVAL))
    return run


def test_push_model_dir_uploads_files_and_card_and_round_trips(double, model_dir):
    directory, model = model_dir
    result = hub.push_to_hub(directory, "zoo-org/tiny")
    files = double.files("zoo-org/tiny")
    assert result["commit"] == double.repos["zoo-org/tiny"].refs["main"]
    assert files["config.json"] == (directory / "config.json").read_bytes()
    assert files["model.safetensors"] == (directory / "model.safetensors").read_bytes()
    meta, body = split_front_matter(files["README.md"].decode())
    assert meta["library_name"] == "emotion-zoo" and meta["pipeline_tag"] == "image-classification"
    assert "model-index" not in meta and "datasets" not in meta  # nothing evaluated, nothing invented
    assert "Not evaluated" in body and "Not recorded" in body
    assert all("emotion-zoo" in r["user_agent"] for r in double.requests if r["method"] == "POST")
    assert {r["authorization"] for r in double.requests} == {"Bearer hf_test_token"}

    pulled = zoo.create(f"hf-hub:zoo-org/tiny@{result['commit']}")
    face, context = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(pulled.eval()(face, context).logits, model(face, context).logits, rtol=0, atol=0)
    assert pulled.pretrained_cfg["commit"] == result["commit"]


def test_push_loads_the_weights_once(double, run_dir, monkeypatch):
    loads = []
    real = hub.load_weights
    monkeypatch.setattr(hub, "load_weights", lambda model, path: (loads.append(path), real(model, path)))
    result = hub.push_to_hub(run_dir, "zoo-org/once")
    assert loads == [run_dir / "best" / "model.safetensors"]
    assert {"config.json", "model.safetensors", "README.md"} <= set(double.files("zoo-org/once"))
    assert result["source"] == str(run_dir / "best")


def test_push_run_dir_uses_eval_and_run_config_and_tags(double, run_dir):
    result = hub.push_to_hub(run_dir, "zoo-org/run", tag="v1.0")
    repo = double.repos["zoo-org/run"]
    assert repo.refs["v1.0"] == result["commit"] == repo.refs["main"]
    card = double.files("zoo-org/run")["README.md"].decode()
    meta, body = split_front_matter(card)
    assert meta["datasets"] == ["caer_s"]
    results = meta["model-index"][0]["results"]
    assert {m["type"]: m["value"] for r in results for m in r["metrics"]} == {
        "accuracy": 0.625, "balanced_accuracy": 0.5, "macro_f1": 0.4375}
    assert "| accuracy | 0.6250 |" in body and "| Anger | 1.0000 |" in body and "| Disgust | – |" in body
    assert "| optimizer.lr | `0.0005` |" in body
    assert "/data/private" not in card  # local paths are not published


def test_existing_card_is_kept_unless_overwrite(double, model_dir, run_dir):
    hub.push_to_hub(model_dir[0], "zoo-org/keep")
    first = double.files("zoo-org/keep")["README.md"]
    second = hub.push_to_hub(run_dir, "zoo-org/keep")
    assert second["card_written"] is False
    assert double.files("zoo-org/keep")["README.md"] == first
    third = hub.push_to_hub(run_dir, "zoo-org/keep", overwrite_card=True)
    assert third["card_written"] is True
    assert b"0.6250" in double.files("zoo-org/keep")["README.md"]


def test_create_pr_leaves_main_alone(double, model_dir):
    hub.push_to_hub(model_dir[0], "zoo-org/pr")
    main_before = double.repos["zoo-org/pr"].refs["main"]
    result = hub.push_to_hub(model_dir[0], "zoo-org/pr", create_pr=True, overwrite_card=True)
    assert result["pr_url"].endswith("/zoo-org/pr/discussions/1")
    assert double.repos["zoo-org/pr"].refs["main"] == main_before
    assert double.repos["zoo-org/pr"].refs["refs/pr/1"] == result["commit"]


def test_push_refuses_weights_that_do_not_fit_their_config(double, model_dir, tmp_path):
    directory, _ = model_dir
    config = json.loads((directory / "config.json").read_text())
    config["num_classes"] = config["model_args"]["num_classes"] = 8
    config["label_names"] = None
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="classifier"):
        hub.push_to_hub(directory, "zoo-org/bad")
    assert double.requests == []  # nothing was sent


def test_push_rejects_a_directory_without_a_model(double, tmp_path):
    with pytest.raises(HubError, match="neither a model directory"):
        hub.push_to_hub(tmp_path, "zoo-org/none")


def test_cli_push_prints_commit_to_pin(double, run_dir):
    result = CliRunner().invoke(zoo.cli.app, ["push", str(run_dir), "--repo-id", "zoo-org/cli", "--tag", "v1"])
    assert result.exit_code == 0, result.output
    sha = double.repos["zoo-org/cli"].refs["main"]
    assert f"commit: {sha}" in result.output
    assert f'hf-hub:zoo-org/cli@{sha}' in result.output
    assert double.repos["zoo-org/cli"].refs["v1"] == sha


def test_push_to_a_new_branch_creates_it_and_leaves_main(double, model_dir):
    hub.push_to_hub(model_dir[0], "zoo-org/branch")
    main_before = double.repos["zoo-org/branch"].refs["main"]
    result = hub.push_to_hub(model_dir[0], "zoo-org/branch", revision="dev", overwrite_card=True)
    assert double.repos["zoo-org/branch"].refs["dev"] == result["commit"] != main_before
    assert double.repos["zoo-org/branch"].refs["main"] == main_before


def test_push_offline_is_refused_before_any_request(double, model_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match="HF_HUB_OFFLINE is set"):
        hub.push_to_hub(model_dir[0], "zoo-org/offline")
    assert double.requests == []


def test_dry_run_writes_exactly_what_push_uploads_and_sends_nothing(double, run_dir, tmp_path):
    out = tmp_path / "staged"
    result = CliRunner().invoke(zoo.cli.app, ["push", str(run_dir), "--repo-id", "zoo-org/dry", "--dry-run",
                                              "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "nothing was sent" in result.output and double.requests == []
    hub.push_to_hub(run_dir, "zoo-org/dry")
    uploaded = {k: v for k, v in double.files("zoo-org/dry").items() if k != ".gitattributes"}  # made by create_repo
    assert sorted(p.name for p in out.iterdir()) == sorted(uploaded) == ["README.md", "config.json", "model.safetensors"]
    for name, content in uploaded.items():
        assert (out / name).read_bytes() == content, name
    meta, body = split_front_matter((out / "README.md").read_text())
    assert meta["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.625
    size_mb = (out / "model.safetensors").stat().st_size / 1e6
    assert f"| weights file | float32, {size_mb:.1f} MB |" in body


def test_card_says_when_weights_are_stored_in_float16(double, model_dir, tmp_path):
    """Weights rounded to fp16 for release (half the download) load into the fp32 model, and the card says so."""
    from safetensors.torch import load_file, save_file

    path, _ = model_dir
    weights = path / "model.safetensors"
    tensors = load_file(weights)
    save_file({k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}, weights)
    out = tmp_path / "staged"
    hub.stage_push_folder(path, "zoo-org/half", out)
    _, body = split_front_matter((out / "README.md").read_text())
    assert f"| weights file | float16, {weights.stat().st_size / 1e6:.1f} MB |" in body
    reloaded = zoo.create(f"local-dir:{out}").eval()
    assert next(reloaded.parameters()).dtype == torch.float32
    for name, tensor in reloaded.state_dict().items():
        if tensor.is_floating_point():
            assert torch.equal(tensor, tensors[name].half().float()), name


def test_dry_run_card_from_eval_json_files_single_crop_then_tta(double, run_dir, tmp_path):
    """``--eval`` replaces the run's eval.json (e.g. training-time bf16 numbers) with `zoo-cli eval --json`
    outputs: the first is the headline, a TTA one adds named model-index entries and a table column."""
    common = {"balanced_accuracy": 0.5, "macro_f1": 0.4, "num_samples": 8, "split": "val",
              "dataset": "fer2013:/home/me/data", "reference_samples": 7}
    single, tta = tmp_path / "single.json", tmp_path / "tta.json"
    single.write_text(json.dumps({**common, "accuracy": 0.75, "tta": "none", "kl": 0.6, "majority_agreement": 0.7,
                                  "per_class_recall": {"a": 1.0, "b": None}}))
    tta.write_text(json.dumps({**common, "accuracy": 0.875, "tta": "flip", "kl": 0.55}))
    out = tmp_path / "staged"
    result = CliRunner().invoke(zoo.cli.app, ["push", str(run_dir), "--repo-id", "zoo-org/dry", "--dry-run",
                                              "--out", str(out), "--eval", str(single), "--eval", str(tta)])
    assert result.exit_code == 0, result.output
    assert double.requests == []
    meta, body = split_front_matter((out / "README.md").read_text())
    entries = [(m["type"], m.get("name"), m["value"]) for m in meta["model-index"][0]["results"][0]["metrics"]]
    assert ("accuracy", None, 0.75) in entries and ("accuracy", "accuracy (flip TTA)", 0.875) in entries
    assert meta["datasets"] == ["fer2013"] and "/home/me" not in body
    assert "| metric | single crop | flip TTA |" in body
    assert "| accuracy | 0.7500 | 0.8750 |" in body
    assert "| KL(reference votes ‖ prediction) ↓ | 0.6000 | 0.5500 |" in body
    assert "| agreement with the votes' majority | 0.7000 | – |" in body
    assert "8 samples (7 with reference votes)" in body and "| b | – |" in body
    assert "0.6250" not in body  # the run's eval.json is not used


@pytest.mark.parametrize("content, message", [("{", "not valid JSON"), ('{"loss": 1}', "not an evaluation"),
                                              (None, "cannot read it")])
def test_push_eval_file_errors_name_the_file_and_the_fix(run_dir, tmp_path, content, message):
    path = tmp_path / "eval.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(HubError, match=f"--eval {path}: {message}.*zoo-cli eval"):
        hub.stage_push_folder(run_dir, "zoo-org/dry", tmp_path / "out", evaluations=[path])
    assert not (tmp_path / "out").exists()


def test_push_revision_and_tag_are_checked_before_any_request(tmp_path, monkeypatch):
    directory = zoo.save_pretrained(tiny_face_model(), tmp_path / "m")
    with AnyRevisionHub({}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(HubError, match=r"--revision: '\.\./x'"):
            zoo.publish.push.push_to_hub(directory, "org/x", revision="../x")
        with pytest.raises(HubError, match=r"--tag: '/abs'"):
            zoo.publish.push.push_to_hub(directory, "org/x", tag="/abs")
        assert hub.requests == []
