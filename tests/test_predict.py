"""``zoo-cli predict`` / ``zoo.predict`` on a generated image with two faces: one row per face, and each face's
probabilities are the model's own output on that face's preprocessed inputs (``zoo.data.preprocess``, tested
pixel by pixel in ``test_data_preprocess.py``). Only the detector stands in (a drawn face is no Haar face)."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image, ImageDraw
from typer.testing import CliRunner

import zoo
import zoo.cli
import zoo.data

BOXES = [{"x1": 20, "y1": 30, "x2": 60, "y2": 80, "score": 0.9}, {"x1": 110, "y1": 25, "x2": 150, "y2": 75,
                                                                   "score": 0.8}]


def _two_face_image(path):
    image = Image.new("RGB", (180, 120), (90, 120, 160))
    draw = ImageDraw.Draw(image)
    for b, mouth in zip(BOXES, ((120, 0, 0), (20, 200, 40)), strict=True):  # the two faces differ
        draw.ellipse((b["x1"], b["y1"], b["x2"], b["y2"]), fill=(230, 190, 160))
        cx = (b["x1"] + b["x2"]) / 2
        draw.ellipse((cx - 12, b["y1"] + 15, cx - 6, b["y1"] + 21), fill=(0, 0, 0))
        draw.ellipse((cx + 6, b["y1"] + 15, cx + 12, b["y1"] + 21), fill=(0, 0, 0))
        draw.arc((cx - 10, b["y1"] + 25, cx + 10, b["y1"] + 40), 0, 180, fill=mouth, width=3)
    image.save(path)
    return path


@pytest.fixture
def tiny_model_dir(tmp_path):
    torch.manual_seed(0)
    model = zoo.create("glamor_net", backbone_args={"channels": [8, 8, 16, 16, 16]},
                       data={"face_size": [32, 32], "context_size": [48, 48], "context_resize": [56, 64],
                             "mean": [0.5, 0.4, 0.3], "std": [0.25, 0.5, 1.0]})
    with torch.no_grad():  # a head that separates the classes, so a mix-up of faces or classes shows
        model.classifier[-1].weight.mul_(20)
    return zoo.save_pretrained(model, tmp_path / "model")


def _expected(image_path, model_dir):
    """Each face through zoo.data.load_image + preprocess, then the model itself, one face at a time."""
    model = zoo.create(f"local-dir:{model_dir}").eval()
    image = zoo.data.load_image(image_path)
    rows = []
    for box in BOXES:
        x = zoo.data.preprocess(image, box, model.config.data, train=False, streams=model.config.streams)
        with torch.no_grad():
            out = model(face=x["face"][None], context=x["context"][None])
        rows.append((out.probs[0], out.fusion_weights[0]))
    return model.label_names, rows


def _invoke(args):
    return CliRunner().invoke(zoo.cli.app, args)


def test_predict_probabilities_are_the_models_output_on_each_face(tmp_path, tiny_model_dir, monkeypatch):
    image = _two_face_image(tmp_path / "two_faces.png")
    monkeypatch.setattr(zoo.data, "detect_faces", lambda img, detector="haar": list(BOXES))
    names, expected = _expected(image, tiny_model_dir)
    assert not torch.allclose(expected[0][0], expected[1][0], atol=1e-3)  # the two faces are told apart

    result = _invoke(["predict", str(image), "--model", f"local-dir:{tiny_model_dir}", "--json",
                      "--save-vis", str(tmp_path / "vis"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)
    assert entry["image"] == str(image)
    assert [f["box"] for f in entry["faces"]] == [[20.0, 30.0, 60.0, 80.0], [110.0, 25.0, 150.0, 75.0]]
    assert [f["detector_score"] for f in entry["faces"]] == [0.9, 0.8]
    for face, (probs, fusion) in zip(entry["faces"], expected, strict=True):
        assert list(face["probs"]) == list(names) == list(zoo.labels.CAER)
        torch.testing.assert_close(torch.tensor(list(face["probs"].values())), probs, rtol=0, atol=1e-6)
        assert face["label"] == names[int(probs.argmax())]
        assert face["probability"] == pytest.approx(float(probs.max()), abs=1e-6)
        torch.testing.assert_close(torch.tensor(face["fusion_weights"]), fusion, rtol=0, atol=1e-6)
    # one annotated picture per photo (issue 32), not one per face
    assert sorted(p.name for p in (tmp_path / "vis").iterdir()) == ["two_faces.png"]
    assert entry["vis"] == str(tmp_path / "vis/two_faces.png") and Image.open(entry["vis"]).size[0] >= 200

    table = _invoke(["predict", str(image), "--model", f"local-dir:{tiny_model_dir}", "--device", "cpu"])
    assert table.exit_code == 0, table.output
    lines = table.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["image", "face", "box", "emotion"] and len(lines) == 3
    assert "Anger" in lines[0] and lines[2].split()[2] == "110,25,150,75"
    assert lines[1].split()[3] == names[int(expected[0][0].argmax())]


def test_python_predict_with_known_boxes_skips_detection(tmp_path, tiny_model_dir, monkeypatch):
    image = _two_face_image(tmp_path / "two_faces.png")

    def no_detection(*args, **kwargs):
        raise AssertionError("boxes were given: no detection")

    monkeypatch.setattr(zoo.data, "detect_faces", no_detection)
    names, expected = _expected(image, tiny_model_dir)
    boxes = [[(b["x1"], b["y1"], b["x2"], b["y2"]) for b in BOXES]]
    (entry,) = zoo.predict([image], model=f"local-dir:{tiny_model_dir}", device="cpu", boxes=boxes)
    assert [f["detector_score"] for f in entry["faces"]] == [1.0, 1.0]  # no detector score for a given box
    for face, (probs, _) in zip(entry["faces"], expected, strict=True):
        torch.testing.assert_close(torch.tensor([face["probs"][n] for n in names]), probs, rtol=0, atol=1e-6)
