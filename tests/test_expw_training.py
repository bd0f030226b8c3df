"""Training on real-photo layouts: ExpW data mixed with other data (``data.mix``, ``data.repeat``), whole-model
fine-tuning (``init_weights``), encoder initialisation from a bundled model's tag, and the run's record of
where its data came from (``datasets.json``)."""

from __future__ import annotations

import json

import pytest
import torch
from expw_fixture import write_expw
from safetensors.torch import load_file

import zoo
from zoo.training.engine import train
from zoo.training.recipes import RecipeError

TINY = {"face_size": [16, 16], "context_size": [24, 24], "context_resize": [24, 32], "grayscale": True}
SMALL_CNN = {"channels": [8, 16]}
FAST = {"optimizer": {"name": "adam", "lr": 3e-3}, "schedule.name": "constant", "progress": False, "device": "cpu",
        "batch_size": 8, "seed": 0, "amp": "none", "channels_last": False, "threads": 1}
pytestmark = pytest.mark.filterwarnings("ignore::zoo.data.records.DataWarning")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def expw_dirs(tmp_path):
    first, second = tmp_path / "expw_a", tmp_path / "expw_b"
    write_expw(first, photos=21, seed=0)
    write_expw(second, photos=14, seed=1, multi_every=0)
    return first, second


def _fer_cnn(**extra):
    return {**FAST, "model_args.data": dict(TINY), "model_args.backbone_args": SMALL_CNN, **extra}


def test_mix_and_repeat_build_one_training_set_and_the_run_records_its_data(expw_dirs, tmp_path):
    first, second = expw_dirs
    overrides = _fer_cnn(epochs=1, **{"data.repeat": 2, "data.mix": [{"spec": f"expw:{second}", "split": "all"}]})
    result = train("fer_cnn", data=f"expw:{first}", out=tmp_path / "run", overrides=overrides)
    datasets = json.loads((tmp_path / "run" / "datasets.json").read_text())
    train_parts, val = datasets["train"], datasets["val"]
    # expw_a: 21 photos, every 4th with 2 faces (27 faces); val = round(0.2·21) = 4 photos carved out
    assert [p["repeat"] for p in train_parts] == [2, 1] and train_parts[1]["faces"] == 14
    assert train_parts[0]["faces"] + val["faces"] == 27 and val["photos"] == 4 and val["split_by"] == "photo"
    rows = 2 * train_parts[0]["faces"] + 14
    assert result.history[0]["global_step"] == -(-rows // 8)  # one epoch = ceil(rows / batch) steps
    assert train_parts[0]["label_file_sha256"] != train_parts[1]["label_file_sha256"]


def test_mix_refuses_data_of_another_class_order(expw_dirs, tmp_path):
    first, _ = expw_dirs
    import tiny_training as T

    T.register()
    try:
        with pytest.raises(RecipeError, match=r"data.mix: 'tiny:caer' has the classes .*same class order"):
            train("fer_cnn", data=f"expw:{first}", out=tmp_path / "run",
                  overrides=_fer_cnn(epochs=1, **{"data.mix": [{"spec": "tiny:caer"}]}))
    finally:
        T.unregister()
    with pytest.raises(RecipeError, match="data.mix"):
        train("fer_cnn", data=f"expw:{first}", out=tmp_path / "bad", overrides=_fer_cnn(**{"data.mix": [{"path": "x"}]}))


def test_init_weights_starts_every_weight_from_a_trained_model(expw_dirs, tmp_path):
    first, _ = expw_dirs
    train("fer_cnn", data=f"expw:{first}", out=tmp_path / "a", overrides=_fer_cnn(epochs=1))
    trained = load_file(str(tmp_path / "a" / "best" / "model.safetensors"))
    # lr 0: the fine-tuned run keeps the parameters it started from (BatchNorm statistics still move)
    train("fer_cnn", data=f"expw:{first}", out=tmp_path / "b",
          overrides=_fer_cnn(epochs=1, init_weights=f"local-dir:{tmp_path / 'a' / 'best'}", **{"optimizer.lr": 0.0}))
    tuned = load_file(str(tmp_path / "b" / "best" / "model.safetensors"))
    params = [k for k in trained if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert params and all(torch.equal(trained[k], tuned[k]) for k in params)
    with pytest.raises(RecipeError, match=r"init_weights='local-dir:.*' does not fit the model being trained"):
        train("fer_cnn", data=f"expw:{first}", out=tmp_path / "c",
              overrides=_fer_cnn(init_weights=f"local-dir:{tmp_path / 'a' / 'best'}",
                                 **{"model_args.backbone_args": {"channels": [8, 32]}}))


def test_a_bundled_face_model_initialises_the_face_encoder_only_where_it_fits():
    model = zoo.create("glamor_fer_cnn", backbone_pretrained="fer_cnn.fer2013")
    bundled = zoo.create("fer_cnn.fer2013", pretrained=True)
    face, source = model.face_encoder.state_dict(), bundled.face_encoder.state_dict()
    assert all(torch.equal(face[k], source[k]) for k in face)
    # the narrow context encoder (16-32-64-128) is another shape: left as built, not an error
    assert model.context_encoder.blocks[0].weight.shape[0] == 16
    assert [r["stream"] for r in model.pretrained_cfg["backbones"]] == ["face"]


def test_glamor_resnet18_without_weights_points_to_the_bundled_model_and_a_command_that_trains(expw_dirs, tmp_path):
    import re
    import shlex

    with pytest.raises(Exception, match="no published weights") as info:
        zoo.create("glamor_resnet18", pretrained=True)
    message = str(info.value)
    assert "zoo.create('glamor_fer_cnn.expw', pretrained=True)" in message
    command = shlex.split(re.search(r"zoo-cli train (glamor_resnet18 .*?--out RUN)", message).group(1))
    assert command[:3] == ["glamor_resnet18", "--data", "expw:DIR"]
    settings = [a for a in command[3:] if "=" in a and a != "backbone_pretrained=true"]  # ImageNet needs the network
    tiny = ["epochs=1", "max_steps_per_epoch=1", "batch_size=4", "device=cpu", "progress=false", "threads=1",
            "model_args.data.face_size=[32,32]", "model_args.data.context_size=[32,32]",
            "model_args.data.context_resize=[36,40]"]
    first, _ = expw_dirs
    result = train(command[0], data=f"expw:{first}", out=tmp_path / "r18", overrides=[*settings, *tiny])
    assert result.history and json.loads((tmp_path / "r18" / "best" / "config.json").read_text())["label_names"][0] == "Angry"
