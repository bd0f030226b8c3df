"""Weights shipped as package data (a ``file=`` pretrained source), the untrained-model guard of
predict / eval, and flip test-time augmentation."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from typer.testing import CliRunner

import zoo
import zoo.cli
from zoo.cli import app
from zoo.errors import HubError, UntrainedModelError, UntrainedModelWarning
from zoo.inference.loading import create_for_inference
from zoo.registry.hookspecs import hookimpl
from zoo.weights.sources import prefetch

TINY = {"backbone": "fer_cnn", "backbone_args": {"channels": [4, 8]}, "streams": "face",
        "label_names": list(zoo.labels.FER2013), "head_hidden": 0, "head_dropout": 0.0,
        "data": {"face_size": [16, 16], "grayscale": True, "mean": [0.5] * 3, "std": [0.5] * 3}}


@pytest.fixture
def packaged(tmp_path, monkeypatch):
    """A preset whose tag points at a folder of files (no Hub repo), like the bundled model."""
    from zoo.registry.plugins import register_plugin, unregister_plugin

    torch.manual_seed(0)
    trained = zoo.create(**TINY)
    folder = tmp_path / "pkg" / "tiny_fer.test"
    zoo.save_pretrained(trained, folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    class Packaged:
        @hookimpl
        def register_presets(self, register):
            register("tiny_fer", TINY, description="test", pretrained=[{"tag": "test", "file": str(folder)}])
            register("tiny_fer_missing", TINY, description="test",
                     pretrained=[{"tag": "gone", "file": str(tmp_path / "nowhere")}])
            register("tiny_fer_untrained", TINY, description="test")

    register_plugin(Packaged(), "packaged-test")
    yield trained.eval(), folder
    unregister_plugin("packaged-test")


def test_packaged_weights_load_offline_and_list_as_pretrained(packaged):
    trained, folder = packaged
    x = torch.randn(3, 3, 16, 16)
    for name in ("tiny_fer.test", "tiny_fer"):
        model = zoo.create(name, pretrained=True).eval()
        assert torch.equal(model(x).logits, trained(x).logits)
        assert model.pretrained_cfg["source"] == "package" and model.pretrained_cfg["path"] == str(folder)
    assert "tiny_fer.test" in zoo.list_models(pretrained=True)
    assert "tiny_fer_untrained" not in " ".join(zoo.list_models(pretrained=True))
    assert prefetch("tiny_fer.test")["note"].startswith("shipped with the package")
    result = CliRunner().invoke(app, ["list", "tiny*", "--pretrained"])
    assert result.exit_code == 0 and "tiny_fer.test" in result.output


def test_missing_packaged_file_is_a_clear_error(packaged):
    with pytest.raises(HubError, match=r"tiny_fer_missing.gone: the packaged weights file .*nowhere.* is missing"):
        zoo.create("tiny_fer_missing", pretrained=True)


def test_inference_loads_published_weights_and_refuses_untrained(packaged, tmp_path):
    trained, _ = packaged
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(create_for_inference("tiny_fer").eval()(x).logits, trained(x).logits)
    with pytest.raises(UntrainedModelError, match="--allow-untrained"):
        create_for_inference("tiny_fer_untrained")
    with pytest.warns(UntrainedModelWarning):
        create_for_inference("tiny_fer_untrained", allow_untrained=True)
    # a checkpoint makes a preset trained
    weights = tmp_path / "w.safetensors"
    from safetensors.torch import save_file

    save_file(trained.state_dict(), weights)
    model = create_for_inference("tiny_fer_untrained", checkpoint=weights).eval()
    assert torch.equal(model(x).logits, trained(x).logits)


def test_cli_predict_eval_and_export_refuse_a_preset_without_weights(tmp_path):
    import subprocess
    import sys

    from PIL import Image

    image = tmp_path / "face.png"
    Image.new("RGB", (32, 32), (120, 90, 60)).save(image)
    for args in (["predict", str(image), "--model", "fer_resnet18"],
                 ["eval", "fer_resnet18", "--data", f"fer2013:{tmp_path}"],
                 ["export", "fer_resnet18", "--format", "exported-program", "--out", str(tmp_path / "r.pt2")]):
        result = subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True, timeout=120)
        assert result.returncode != 0, result.stdout
        assert "'fer_resnet18' has no trained weights" in result.stderr and "--allow-untrained" in result.stderr
        assert "--checkpoint" in result.stderr and "local-dir:" in result.stderr
        assert "Traceback" not in result.stderr


def test_zoo_predict_warns_for_an_untrained_model(tmp_path):
    from PIL import Image

    image = tmp_path / "face.png"
    Image.new("RGB", (32, 32), (120, 90, 60)).save(image)
    model = zoo.create(**TINY)
    with pytest.warns(UntrainedModelWarning, match="no trained weights"):
        zoo.predict([image], model=model, boxes=[[(0, 0, 32, 32)]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntrainedModelWarning)
        model.pretrained_cfg = {"checkpoint": "x"}
        zoo.predict([image], model=model, boxes=[[(0, 0, 32, 32)]])


def test_flip_tta_averages_the_probabilities_of_the_mirrored_input():
    from zoo import runtime as D
    from zoo.training.evaluate import eval_loader, run_evaluation

    torch.manual_seed(0)
    model = zoo.create(**TINY).eval()
    faces = torch.randn(6, 3, 16, 16)
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    data = [{"face": faces[i], "label": int(labels[i]), "index": i} for i in range(6)]
    info = D.DistInfo(device=torch.device("cpu"))
    import contextlib

    plain = run_evaluation(model, eval_loader(data, 4, info), info, contextlib.nullcontext, torch.contiguous_format,
                           7, model.label_names)
    tta = run_evaluation(model, eval_loader(data, 4, info), info, contextlib.nullcontext, torch.contiguous_format,
                         7, model.label_names, tta="flip")
    with torch.no_grad():
        mean = (model(faces).probs + model(faces.flip(-1)).probs) / 2
        single = model(faces).probs
    assert tta["accuracy"] == pytest.approx(float((mean.argmax(1) == labels).float().mean()))
    assert plain["accuracy"] == pytest.approx(float((single.argmax(1) == labels).float().mean()))
    assert not torch.equal(mean.argmax(1), single.argmax(1)) or tta["accuracy"] == plain["accuracy"]
    with pytest.raises(ValueError, match="tta must be one of none, flip"):
        run_evaluation(model, eval_loader(data, 4, info), info, contextlib.nullcontext, torch.contiguous_format,
                       7, model.label_names, tta="tencrop")
    assert json.dumps(tta["accuracy"])


def test_a_replaced_component_drops_the_old_components_arguments():
    from zoo.factory import merge_model_args

    base = {"target": "onehot", "target_args": {"label_smoothing": 0.1}}
    assert merge_model_args(base, {"target": "ldl_va", "target_args": {"num_neighbors": 4}}) == {
        "target": "ldl_va", "target_args": {"num_neighbors": 4}}
    assert merge_model_args(base, {"target_args": {"class_weights": [1.0] * 7}})["target_args"] == {
        "label_smoothing": 0.1, "class_weights": [1.0] * 7}
    model = zoo.create("fer_cnn", target="ldl_va", target_args={"neighbor_mode": "memory_bank"})
    assert model.config.target_args == {"neighbor_mode": "memory_bank"}
