"""A tiny release rebuilt from generated ExpW-format data: train, package, and check the card and files say how
it was made (command, seed, epochs, label-file hash, photo counts, weights sha256) and that it loads."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from expw_fixture import write_expw

import zoo
from zoo.errors import ZooError
from zoo.publish.release import package_release
from zoo.training.engine import train

TINY = {"face_size": [16, 16], "context_size": [24, 24], "context_resize": [24, 32], "grayscale": True}
pytestmark = pytest.mark.filterwarnings("ignore::zoo.data.records.DataWarning")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("release")
    write_expw(root / "expw", photos=21)
    overrides = {"model_args.data": TINY, "model_args.backbone_args": {"channels": [8, 16]},
                 "model_args.context_backbone_args": {"channels": [4, 8]}, "epochs": 2, "batch_size": 8,
                 "progress": False, "device": "cpu", "amp": "none", "channels_last": False, "threads": 1,
                 "backbone_pretrained": False, "seed": 3}
    train("expw_glamor_fer_cnn", data=f"expw:{root / 'expw'}", out=root / "run", overrides=overrides)
    yield root
    torch.set_num_threads(threads)


def _evaluate(expw):
    def run(model_dir):
        return [zoo.evaluate(f"local-dir:{model_dir}", f"expw:{expw}", split="val")]
    return run


def test_a_tiny_release_is_rebuilt_with_a_card_that_says_how(tiny_run):
    out = tiny_run / "release"
    command = "zoo-cli train expw_glamor_fer_cnn --data expw:DIR --out RUN"
    manifest = package_release(tiny_run / "run", out, name="glamor_fer_cnn.expw", command=command,
                               summary="A tiny GLAMOR.", dtype="float16", evaluate=_evaluate(tiny_run / "expw"),
                               hardware="2 CPU cores", limits=["Tiny."])
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors", "release.json"]
    assert json.loads((out / "release.json").read_text()) == manifest
    card = (out / "README.md").read_text()
    weights_sha = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    label_sha = hashlib.sha256((tiny_run / "expw" / "label.lst").read_bytes()).hexdigest()
    assert manifest["weights"]["sha256"] == weights_sha and weights_sha in card
    assert label_sha in card and manifest["data"]["val"]["label_file_sha256"] == label_sha
    # 21 photos, val = 4 of them: train 17 photos; every 4th photo holds 2 faces
    assert manifest["data"]["train"]["photos"] == 17 and manifest["data"]["val"]["photos"] == 4
    assert "17 photos" in card and "4 photos" in card and "val_fraction 0.2, split_seed 0, by photo" in card
    assert f"`{command}`" in card and "seed 3, 2 epochs, final epoch kept" in card
    assert "float16" in card and manifest["weights"]["storage"].startswith("float16")
    assert manifest["train_wall_s"] > 0 and "on 2 CPU cores" in card
    ev = manifest["evaluations"][0]
    assert f"| expw val | {ev['num_samples']:,} | {ev['accuracy']:.2%} |" in card
    assert str(tiny_run) not in card and str(tiny_run) not in (out / "release.json").read_text()  # no builder paths


def test_the_release_loads_and_predicts_like_the_run_within_float16(tiny_run):
    out = tiny_run / "release16"
    package_release(tiny_run / "run", out, name="glamor_fer_cnn.expw", command="c", summary="s", dtype="float16")
    released = zoo.create(f"local-dir:{out}").eval()
    trained = zoo.create(f"local-dir:{tiny_run / 'run' / 'best'}").eval()
    face, context = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 24, 24)
    with torch.no_grad():
        a, b = released(face=face, context=context).probs, trained(face=face, context=context).probs
    assert torch.allclose(a, b, atol=1e-2) and not torch.equal(a, b)


def test_a_release_over_the_package_limit_or_of_an_unfinished_run_is_refused(tiny_run, tmp_path):
    with pytest.raises(ZooError, match="over the 0 MB limit of package data; store it as float16"):
        package_release(tiny_run / "run", tmp_path / "big", name="x.y", command="c", summary="s", size_limit=100)
    with pytest.raises(ZooError, match="not a finished training run"):
        package_release(tmp_path, tmp_path / "none", name="x.y", command="c", summary="s")
