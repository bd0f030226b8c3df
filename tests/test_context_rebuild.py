"""The face + context model on a trained face model: what covers the face in the scene
(``data.context_mask_fill``), a colour scene beside a grey face (``data.context_grayscale``), and a classifier
started from the face model's (``head_init``), so a two-stream run begins exactly at its face model's predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from expw_fixture import write_expw
from PIL import Image
from safetensors.torch import load_file

import zoo
from zoo.config import ConfigError, DataConfig
from zoo.data import FaceBox, preprocess
from zoo.training.engine import init_head_from_face_model, train
from zoo.training.recipes import RecipeError

UNIT = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "interpolation": "nearest"}
FACE_MODEL = "fer_cnn.fer2013_expw"


def _scene() -> Image.Image:
    """Left half red (200, 40, 40), right half blue (20, 40, 220); the 'face' box straddles both."""
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (200, 40, 40)
    pixels[:, 20:] = (20, 40, 220)
    pixels[6:14, 16:24] = (250, 250, 250)
    return Image.fromarray(pixels)


def _context(fill: str, **data) -> torch.Tensor:
    cfg = DataConfig(face_size=(8, 8), context_size=(20, 40), context_resize=(20, 40), context_mask_fill=fill,
                     **UNIT, **data)
    return (preprocess(_scene(), FaceBox(16, 6, 24, 14), cfg)["context"] * 255).round()


def test_mean_fill_covers_the_face_with_the_images_mean_colour_and_leaves_the_rest():
    context = _context("mean")
    # mean over 800 pixels: 64 white, 336 red-side, 400 blue-side -> (116.5, 65.2, 116.0) ... rounded per channel
    pixels = np.asarray(_scene(), dtype=np.float64).reshape(-1, 3).mean(0)
    expected = torch.tensor(np.round(pixels)).view(3, 1, 1)
    assert torch.equal(context[:, 6:14, 16:24], expected.expand(3, 8, 8).to(context.dtype))
    assert (context[0, :, :16] == 200).all() and (context[2, :, 24:] == 220).all()
    assert torch.equal(_context("black")[:, 6:14, 16:24], torch.zeros(3, 8, 8))


def test_blur_fill_removes_the_face_detail_but_keeps_the_scene_around_it():
    context = _context("blur")
    face = context[:, 6:14, 16:24]
    assert face.max() < 250 and face.std() > 0  # the white square is smeared into its red and blue surroundings
    assert (face[0, :, 0] > face[0, :, -1]).all()  # red stays on the red side, as the scene around the face says
    assert (context[0, :, :16] == 200).all() and (context[2, :, 24:] == 220).all()


def test_a_grey_face_model_can_read_its_scene_in_colour():
    face_and_scene = dict(face_size=(8, 8), context_size=(20, 40), context_resize=(20, 40), **UNIT)
    grey = preprocess(_scene(), FaceBox(0, 0, 8, 8), DataConfig(grayscale=True, **face_and_scene))
    mixed = preprocess(_scene(), FaceBox(0, 0, 8, 8), DataConfig(grayscale=True, context_grayscale=False,
                                                                 **face_and_scene))
    assert torch.equal(grey["face"], mixed["face"])  # the face stays grey: 3 equal channels
    assert torch.equal(mixed["face"][0], mixed["face"][2])
    red = (mixed["context"][:, 0, 12] * 255).round()  # outside the masked box
    assert red.tolist() == [200.0, 40.0, 40.0]  # the scene in colour
    assert len(set((grey["context"][:, 0, 12] * 255).round().tolist())) == 1
    assert DataConfig(grayscale=True).context_is_grey and not DataConfig(context_grayscale=False).context_is_grey


@pytest.mark.parametrize("data, message", [
    ({"context_mask_fill": "white"}, r"context_mask_fill must be one of 'black', 'mean', 'blur', got 'white'"),
    ({"context_grayscale": "no"}, r"context_grayscale must be true, false or null .*got 'no'"),
])
def test_bad_context_settings_name_the_setting(data, message):
    with pytest.raises(ConfigError, match=message):
        DataConfig(**data)


def _two_stream(face_weights: str | bool = FACE_MODEL, **changes):
    args = {"head_hidden": None, "head_dropout": 0.0, "data": {"face_size": (48, 48), "grayscale": True,
                                                               "context_grayscale": False, "align": "eyes",
                                                               "mean": (0.5,) * 3, "std": (0.5,) * 3}, **changes}
    return zoo.create("glamor_fer_cnn", backbone_pretrained=face_weights, **args).eval()


@pytest.mark.parametrize("fusion", ["adaptive", "concat"])
def test_head_init_starts_the_two_stream_model_at_its_face_models_predictions(fusion):
    face_model = zoo.create(FACE_MODEL, pretrained=True).eval()
    model = _two_stream(fusion=fusion)
    init_head_from_face_model(model, FACE_MODEL)
    generator = torch.Generator().manual_seed(0)
    face, context = torch.randn(4, 3, 48, 48, generator=generator), torch.randn(4, 3, 112, 112, generator=generator)
    with torch.no_grad():
        fused, alone = model(face, context), face_model(face)
    torch.testing.assert_close(fused.logits, alone.logits, atol=1e-5, rtol=1e-5)
    assert fused.logits.std() > 0.1  # a real classifier, not a zero head agreeing with a zero head
    if fusion == "adaptive":  # equal scores: each stream weighted 1/2 until training moves them
        torch.testing.assert_close(fused.fusion_weights, torch.full((4, 2), 0.5))
    # the context half starts at zero but learns: its gradient is not zero
    model.train()
    model(face, context).logits.logsumexp(1).sum().backward()
    output = [m for m in model.classifier.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert output.weight.grad[:, 256:].abs().sum() > 0


def test_head_init_refuses_what_it_cannot_start_at_the_face_models_predictions():
    with pytest.raises(RecipeError, match=r"no hidden classifier layer \(head_hidden=null\)"):
        init_head_from_face_model(zoo.create("glamor_fer_cnn"), FACE_MODEL)
    with pytest.raises(RecipeError, match=r"feature_norm=false"):
        init_head_from_face_model(_two_stream(feature_norm=True), FACE_MODEL)
    with pytest.raises(RecipeError, match=r"face encoder gives 64"):
        init_head_from_face_model(_two_stream(False, backbone_args={"channels": [8, 16, 32, 64]}), FACE_MODEL)
    with pytest.raises(RecipeError, match=r"must be a face-only model .*streams='both'"):
        init_head_from_face_model(_two_stream(), "glamor_fer_cnn.expw")


def test_a_run_with_head_init_starts_from_the_face_models_classifier(tmp_path):
    write_expw(tmp_path / "expw", photos=10, seed=0)
    overrides = {"optimizer": {"name": "sgd", "lr": 0.0}, "schedule.name": "constant", "progress": False,
                 "device": "cpu", "batch_size": 8, "seed": 0, "amp": "none", "channels_last": False, "threads": 1,
                 "epochs": 1, "backbone_pretrained": FACE_MODEL, "head_init": FACE_MODEL,
                 "model_args.head_hidden": None, "model_args.head_dropout": 0.0,
                 "model_args.data": {"face_size": [48, 48], "context_size": [24, 24], "context_resize": [24, 32],
                                     "grayscale": True, "context_grayscale": False, "context_mask_fill": "mean"}}
    train("glamor_fer_cnn", data=f"expw:{tmp_path / 'expw'}", out=tmp_path / "run", overrides=overrides)
    weights = load_file(str(tmp_path / "run" / "best" / "model.safetensors"))
    source = zoo.create(FACE_MODEL, pretrained=True).state_dict()
    torch.testing.assert_close(weights["classifier.weight"][:, :256], 2 * source["classifier.1.weight"].float())
    assert not weights["classifier.weight"][:, 256:].any()
