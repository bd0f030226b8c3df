"""``zoo-cli export`` / ``zoo.inference.export``: every format is loaded back and its outputs compared with PyTorch's.

ONNX runs in onnxruntime (the ``export`` extra); TorchScript and ``torch.export`` programs are reloaded with
torch; the timm layout is rebuilt by ``timm.create_model("local-dir:…", pretrained=True)``. Models are tiny
(32² faces, 48² contexts, narrow CNNs) so the whole file runs in well under a minute.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from typer.testing import CliRunner

import zoo
import zoo.cli
from zoo.inference.export import (
    ExportableModel,
    ExportError,
    example_inputs_for,
    export_model,
    read_metadata,
    run_exported,
)

TINY_DATA = {"face_size": [32, 32], "context_size": [48, 48], "context_resize": [56, 64]}
HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript"))
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="the export extra is not installed: pip install -e '.[export]'")


def _with_random_bn_stats(model):
    """Non-trivial BatchNorm statistics, so eval-mode BN is not an identity and the comparison means something."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def face_context_model():
    return _with_random_bn_stats(zoo.create("glamor_net", backbone_args={"channels": [8, 8, 16, 16, 16]},
                                            data=TINY_DATA))


@pytest.fixture(scope="module")
def face_only_model():
    return _with_random_bn_stats(zoo.create("fer_resnet18", data={"face_size": [32, 32]}))


def _reference(model, inputs):
    with torch.no_grad():
        return ExportableModel(model, inputs)(*inputs)


def test_exportable_model_names_only_the_outputs_a_model_has(face_context_model, face_only_model):
    both = ExportableModel(face_context_model)
    assert both.input_names == ["face", "context"]
    assert both.output_names == ["logits", "probs", "attention", "fusion_weights"]
    logits, probs, attention, weights = both(*example_inputs_for(face_context_model, 2))
    assert logits.shape == (2, 7) and attention.shape == (2, 3, 3) and weights.shape == (2, 2)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))
    face = ExportableModel(face_only_model)
    assert face.input_names == ["face"] and face.output_names == ["logits", "probs"]
    concat = zoo.create("caer_net_s", fusion="concat", backbone_args={"channels": [8, 8, 16, 16, 16]}, data=TINY_DATA)
    assert ExportableModel(concat).output_names == ["logits", "probs", "attention"]


@needs_onnx
@pytest.mark.parametrize("fixture", ["face_only_model", "face_context_model"])
def test_onnxruntime_equals_pytorch(fixture, request, tmp_path):
    """A face-only and a face + context preset: onnxruntime's outputs equal PyTorch's to 1e-4, at a batch size
    other than the one traced (--dynamic-batch), with named inputs, outputs and metadata."""
    import onnxruntime as ort

    model = request.getfixturevalue(fixture)
    path = tmp_path / "model.onnx"
    result = export_model(model, path, "onnx", dynamic_batch=True)
    assert result.max_abs_diff and max(result.max_abs_diff.values()) <= 1e-4
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wrapper = ExportableModel(model)
    assert [i.name for i in session.get_inputs()] == wrapper.input_names
    assert [o.name for o in session.get_outputs()] == wrapper.output_names
    inputs = example_inputs_for(model, batch_size=3, seed=7)
    got = session.run(None, {n: x.numpy() for n, x in zip(wrapper.input_names, inputs, strict=True)})
    expected = _reference(model, inputs)
    assert len(got) == len(expected)
    for name, g, e in zip(wrapper.output_names, got, expected, strict=True):
        assert g.shape == tuple(e.shape), name
        torch.testing.assert_close(torch.from_numpy(g), e.float(), atol=1e-4, rtol=0, msg=name)
    meta = read_metadata(path)
    assert meta["label_names"] == list(model.label_names)
    assert meta["outputs"] == wrapper.output_names and meta["batch"] == "dynamic"
    assert meta["face_size"] == [32, 32] and meta["mean"] == list(model.config.data.mean)


@needs_onnx
def test_onnx_fixed_batch_has_static_shapes(face_context_model, tmp_path):
    import onnxruntime as ort

    path = tmp_path / "fixed.onnx"
    export_model(face_context_model, path, "onnx", batch_size=2)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.shape for i in session.get_inputs()] == [[2, 3, 32, 32], [2, 3, 48, 48]]
    assert read_metadata(path)["batch"] == 2


@pytest.mark.parametrize("format", ["torchscript", "exported-program"])
def test_torch_formats_round_trip(format, face_context_model, tmp_path):
    path = tmp_path / ("model.pt" if format == "torchscript" else "model.pt2")
    result = export_model(face_context_model, path, format, dynamic_batch=True)
    assert result.outputs == ["logits", "probs", "attention", "fusion_weights"]
    assert max(result.max_abs_diff.values()) <= 1e-5
    inputs = example_inputs_for(face_context_model, batch_size=5, seed=3)
    got = run_exported(path, inputs)
    for name, g, e in zip(result.outputs, got, _reference(face_context_model, inputs), strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5, msg=name)
    meta = read_metadata(path)
    assert meta["inputs"] == ["face", "context"] and meta["label_names"] == list(face_context_model.label_names)


def test_timm_layout_loads_in_timm_with_equal_logits(face_only_model, tmp_path):
    import timm

    out = tmp_path / "timm_model"
    result = export_model(face_only_model, out, "timm")
    assert result.max_abs_diff["logits"] <= 1e-5
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "resnet18" and config["num_classes"] == 7
    assert config["label_names"] == list(zoo.labels.FER2013)
    assert config["pretrained_cfg"]["input_size"] == [3, 32, 32]
    assert config["pretrained_cfg"]["mean"] == [0.5, 0.5, 0.5]
    assert (out / "model.safetensors").is_file()
    loaded = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    assert loaded.pretrained_cfg["label_names"] == list(zoo.labels.FER2013)
    face = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(loaded(face), face_only_model(face=face).logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "glamor_net", "backbone_args": {"channels": [8, 8, 16, 16, 16]}}, "streams='both'"),
    ({"name": "fer_resnet18", "backbone": "caer_cnn", "backbone_args": {"channels": [8, 8, 8, 8, 8]}},
     "not a timm model"),
    ({"name": "fer_resnet18", "head_hidden": 16}, "head_hidden=16"),
    ({"name": "fer_resnet18", "backbone": "timm:convnext_atto"}, "head.norm"),
])
def test_timm_layout_refuses_what_timm_cannot_rebuild(kwargs, message, tmp_path):
    model = zoo.create(kwargs.pop("name"), data=TINY_DATA, **kwargs)
    with pytest.raises(ExportError, match=message):
        export_model(model, tmp_path / "out", "timm")


def test_unknown_format_is_an_error(face_only_model, tmp_path):
    with pytest.raises(ExportError, match="onnx, torchscript, exported-program, timm"):
        export_model(face_only_model, tmp_path / "x", "tflite")


def _invoke(args):
    return CliRunner().invoke(zoo.cli.app, args)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, face_context_model):
    return zoo.save_pretrained(face_context_model, tmp_path_factory.mktemp("tiny") / "model")


def test_cli_export_exported_program_json(tiny_dir, tmp_path):
    out = tmp_path / "m.pt2"
    result = _invoke(["export", f"local-dir:{tiny_dir}", "--format", "exported-program", "--dynamic-batch",
                      "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["outputs"] == ["logits", "probs", "attention", "fusion_weights"]
    assert max(report["max_abs_diff"].values()) <= 1e-4 and out.is_file()


@needs_onnx
def test_cli_export_onnx_prints_the_check(tiny_dir, tmp_path):
    out = tmp_path / "m.onnx"
    result = _invoke(["export", f"local-dir:{tiny_dir}", "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "outputs logits, probs, attention, fusion_weights" in result.output
    assert "onnxruntime against PyTorch" in result.output


def test_cli_export_rejects_an_unknown_format(tiny_dir, tmp_path):
    result = _invoke(["export", f"local-dir:{tiny_dir}", "--format", "tflite", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "Invalid value for --format" in result.output and "exported-program" in result.output


def test_export_by_name_writes_the_trained_weights_and_refuses_an_untrained_preset(tmp_path):
    out = tmp_path / "fer_cnn.pt2"
    export_model("fer_cnn.fer2013", out, "exported-program", batch_size=2, check=False)
    bundled = zoo.create("fer_cnn.fer2013", pretrained=True).eval()
    face = torch.rand(2, 3, *bundled.config.data.face_size)
    exported = torch.export.load(str(out)).module()
    with torch.no_grad():
        logits = exported(face)[0]  # the graph's outputs in order: logits, probs
        assert torch.allclose(logits, bundled(face).logits, atol=1e-4)
    with pytest.raises(zoo.ZooError, match="'fer_resnet18' has no trained weights"):
        export_model("fer_resnet18", tmp_path / "r.pt2", "exported-program")
    assert not (tmp_path / "r.pt2").exists()


# ------------------------------------------------------------------------------------ outputs (zoo.outputs)


def test_export_keeps_an_existing_file_unless_forced_and_never_writes_into_the_model(tiny_dir, tmp_path, run_cli):
    photo = tmp_path / "in" / "face.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"\xff\xd8 a jpeg")
    model = f"local-dir:{tiny_dir}"
    code, _, err = run_cli(["export", model, "--format", "torchscript", "--out", str(photo)])
    assert code == 1 and "the file exists. Pass --force" in err and photo.read_bytes() == b"\xff\xd8 a jpeg"
    weights = (tiny_dir / "model.safetensors").read_bytes()
    code, _, err = run_cli(["export", model, "--format", "torchscript", "--out", str(tiny_dir / "model.safetensors"),
                            "--force"])
    assert code == 1 and "also an input of the command" in err and (tiny_dir / "model.safetensors").read_bytes() == weights
    for format in ("onnx", "torchscript", "exported-program"):  # a folder as --out: one error line, no traceback
        code, _, err = run_cli(["export", model, "--format", format, "--out", str(tmp_path / "in")])
        assert code == 1 and err.startswith("error: --out") and "is a folder" in err and "Traceback" not in err
    code, out, err = run_cli(["export", model, "--format", "torchscript", "--out", str(photo), "--force"])
    assert code == 0, err
    assert read_metadata(photo, "torchscript")["inputs"] == ["face", "context"] and sorted(p.name for p in photo.parent.iterdir()) == [
        "face.jpg"]


def test_export_tolerance_is_checked_before_anything_is_written(tiny_dir, tmp_path, run_cli, monkeypatch):
    out = tmp_path / "m.pt"
    for value in ("nan", "-1", "inf"):
        code, _, err = run_cli(["export", f"local-dir:{tiny_dir}", "--format", "torchscript", "--out", str(out),
                                "--tolerance", value])
        assert code == 1 and "--tolerance" in err and "finite number >= 0" in err, err
    import zoo.inference.export as export

    real = export.run_exported
    monkeypatch.setattr(export, "run_exported", lambda *a, **k: tuple(t + 1 for t in real(*a, **k)))
    code, _, err = run_cli(["export", f"local-dir:{tiny_dir}", "--format", "torchscript", "--out", str(out)])
    assert code == 1 and "differs from PyTorch by 1 > --tolerance 0.0001" in err
    assert list(tmp_path.iterdir()) == []


def test_timm_export_refuses_a_non_empty_folder_unless_forced(face_only_model, tmp_path):
    out = tmp_path / "timm_model"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(zoo.ZooError, match="the folder is not empty"):
        export_model(face_only_model, out, "timm")
    export_model(face_only_model, out, "timm", check=False, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["timm_model"]
