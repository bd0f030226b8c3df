"""Fine-tuning a trained model: class folders matched to the model's classes by name (its head kept in its own
order), a failed start that leaves no run directory, and the ``finetune`` recipe, whose first epoch keeps what
the model knew (generated data)."""

from __future__ import annotations

import numpy as np
import pytest
import tiny_training as T
from PIL import Image

import zoo
from zoo import labels
from zoo.data import open_dataset
from zoo.errors import ZooError
from zoo.training.engine import train
from zoo.training.evaluate import match_training_classes
from zoo.training.recipes import resolve_recipe

#: one thread per run (the engine restores the previous setting afterwards)
ONE_THREAD = {"threads": 1}
TINY_FACE = {"backbone": "caer_cnn", "backbone_args": T.TINY_CNN, "target": "onehot", "target_args": {},
             "data": T.TINY_DATA}
pytestmark = pytest.mark.filterwarnings("ignore::zoo.data.records.DataWarning")


@pytest.fixture
def tiny_plugin():
    T.register()
    yield
    T.unregister()


def _folders(root, names, per_class=2):
    """A split-folder dataset (train/ and val/) of grey images, one folder per class name."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in names:
            for k in range(per_class):
                path = root / split / name / f"{k}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(path)
    return root


def test_class_folders_are_matched_by_name_and_the_heads_order_is_kept(tmp_path):
    # FER2013-style folders: lower case, sorted alphabetically (neutral before sad), "angry" for Angry
    names = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    root = _folders(tmp_path / "data", names)
    model = zoo.create("fer_cnn", label_names=list(labels.FER2013))
    dataset = open_dataset(f"folder:{root}", "train", data_config=model.config.data, train=False, streams="face")
    mapped = match_training_classes(dataset, model, "folder:data")
    assert tuple(mapped.label_names) == labels.FER2013 == ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise",
                                                           "Neutral")
    by_folder = {names[int(label)]: int(mapped.labels[i]) for i, label in enumerate(dataset.labels)}
    assert by_folder == {"angry": 0, "disgust": 1, "fear": 2, "happy": 3, "sad": 4, "surprise": 5, "neutral": 6}
    assert mapped[0]["label"] == by_folder[names[int(dataset.labels[0])]]

    result = train("fer_cnn", data=f"folder:{root}", out=tmp_path / "run",
                   overrides=T.tiny_overrides(**ONE_THREAD, epochs=1, max_steps_per_epoch=1, amp="none", channels_last=False,
                                              model_args={**TINY_FACE, "label_names": list(labels.FER2013)}))
    assert zoo.create(f"local-dir:{result.out / 'best'}").label_names == labels.FER2013


def test_a_failed_start_leaves_no_run_directory(tmp_path):
    root = _folders(tmp_path / "data", ["angry", "calm"])  # "calm" is no class of the model
    with pytest.raises(ZooError, match="label_names"):
        train("fer_cnn", data=f"folder:{root}", out=tmp_path / "runs" / "new",
              overrides=T.tiny_overrides(model_args={**TINY_FACE, "label_names": list(labels.FER2013)}))
    assert not (tmp_path / "runs" / "new").exists()
    (tmp_path / "kept").mkdir()  # a directory that was there before is left alone
    with pytest.raises(ZooError, match="label_names"):
        train("fer_cnn", data=f"folder:{root}", out=tmp_path / "kept",
              overrides=T.tiny_overrides(model_args={**TINY_FACE, "label_names": list(labels.FER2013)}))
    assert (tmp_path / "kept").is_dir()


def test_a_tagged_preset_fine_tunes_from_its_weights_with_the_finetune_recipe():
    config = resolve_recipe("fer_cnn.fer2013")
    assert config["recipe"] == "finetune" and config["init_weights"] == "fer_cnn.fer2013"
    assert config["optimizer"]["lr"] == 1e-3 and config["schedule"]["warmup_epochs"] == 1
    assert resolve_recipe("fer_cnn")["recipe"] == "fer2013_cnn"  # an untagged preset still trains from scratch


def test_one_fine_tune_epoch_does_not_collapse_accuracy(tmp_path, tiny_plugin):
    """A model trained on generated faces, then one epoch of the finetune recipe on the same kind of data."""
    common = {**ONE_THREAD, "amp": "none", "channels_last": False, "model_args": {**TINY_FACE, "label_names": list(labels.FER2013)}}
    trained = train("fer_cnn", data="tiny:fer2013", out=tmp_path / "a",
                    overrides=T.tiny_overrides(epochs=6, **common, optimizer={"name": "adam", "lr": 3e-3},
                                               schedule={"name": "constant"}))
    before = zoo.evaluate(f"local-dir:{trained.out / 'best'}", "tiny:fer2013", device="cpu")["accuracy"]
    assert before >= 0.8
    tuned = train("fer_cnn", data="tiny:fer2013", out=tmp_path / "b", recipe="finetune",
                  overrides=T.tiny_overrides(epochs=1, **common, init_weights=f"local-dir:{trained.out / 'best'}"))
    after = zoo.evaluate(f"local-dir:{tuned.out / 'best'}", "tiny:fer2013", device="cpu")["accuracy"]
    assert after >= before - 0.1
