"""Evaluating a model on held-out data whose classes are named or numbered differently: FER+ (8 classes,
Microsoft's layout) and a CK+-style folder (``anger``, ``contempt``, ...) with a 7-class FER2013 model, an explicit
class map, the only split of a folder, and training's mismatch advice. The numbers are worked out by hand in the
comments from a model that predicts a class from the image's grey level."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import zoo
from zoo import labels
from zoo.config import DataConfig, ModelConfig
from zoo.data import open_dataset
from zoo.data.classes import FERPLUS, match_class_names
from zoo.data.records import SplitNotFoundError
from zoo.errors import DataError, ZooError
from zoo.training.evaluate import apply_class_match, check_dataset_matches, match_dataset_classes

pytestmark = pytest.mark.filterwarnings("ignore::zoo.data.records.DataWarning")

#: grey level -> the class the stand-in model predicts, FER2013 order: Angry 0-29, Disgust 30-59, Fear 60-89,
#: Happy 90-119, Sad 120-149, Surprise 150-179, Neutral 180-209
LEVEL = {"Angry": 15, "Disgust": 45, "Fear": 75, "Happy": 105, "Sad": 135, "Surprise": 165, "Neutral": 195}


class GreyLevelModel(nn.Module):
    """A 7-class FER2013-order model that predicts class ``grey level // 30`` of the face (a stand-in whose every
    prediction is known in advance)."""

    def __init__(self, label_names: tuple[str, ...] | None = labels.FER2013) -> None:
        super().__init__()
        self.config = ModelConfig(num_classes=7, label_names=label_names, streams="face", backbone="fer_cnn",
                                  data=DataConfig(face_size=(8, 8), mean=(0, 0, 0), std=(1, 1, 1), grayscale=True))
        self.scale = nn.Parameter(torch.tensor(5.0))

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.config.resolved_label_names

    def forward(self, face: torch.Tensor | None = None, context: torch.Tensor | None = None) -> SimpleNamespace:
        level = face.mean((1, 2, 3)) * 255
        index = (level / 30).floor().long().clamp(0, 6)
        logits = self.scale * nn.functional.one_hot(index, 7).float()
        return SimpleNamespace(logits=logits, probs=torch.softmax(logits, -1))  # as EmotionModel's output


def _grey(path, level: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((48, 48), level, np.uint8)).save(path)


#: FER+ test rows (votes: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF) and the
#: grey level of each image, i.e. what the stand-in predicts
FERPLUS_TEST = [
    ([8, 1, 0, 0, 0, 0, 0, 1, 0, 0], LEVEL["Neutral"]),  # Neutral, predicted Neutral
    ([7, 0, 0, 3, 0, 0, 0, 0, 0, 0], LEVEL["Sad"]),  # Neutral, predicted Sad
    ([0, 9, 1, 0, 0, 0, 0, 0, 0, 0], LEVEL["Happy"]),  # Happiness, predicted Happy
    ([0, 10, 0, 0, 0, 0, 0, 0, 0, 0], LEVEL["Happy"]),  # Happiness, predicted Happy
    ([0, 0, 6, 0, 0, 0, 4, 0, 0, 0], LEVEL["Fear"]),  # Surprise, predicted Fear
    ([0, 0, 0, 8, 2, 0, 0, 0, 0, 0], LEVEL["Sad"]),  # Sadness, predicted Sad
    ([0, 0, 0, 0, 6, 4, 0, 0, 0, 0], LEVEL["Angry"]),  # Anger, predicted Angry
    ([0, 0, 0, 0, 7, 0, 0, 3, 0, 0], LEVEL["Disgust"]),  # Anger, predicted Disgust
    ([2, 0, 0, 0, 0, 0, 0, 8, 0, 0], LEVEL["Angry"]),  # Contempt: left out
    ([0, 0, 0, 0, 1, 0, 0, 6, 3, 0], LEVEL["Neutral"]),  # Contempt: left out
    ([4, 4, 0, 0, 0, 0, 0, 0, 2, 0], LEVEL["Neutral"]),  # no majority: dropped by the reader
]


def _ferplus_test_only(root):
    """Microsoft's FERPlus layout with its test folder only: data/FER2013Test/label.csv + grey 48×48 PNGs."""
    folder = root / "data" / "FER2013Test"
    lines = []
    for i, (votes, level) in enumerate(FERPLUS_TEST):
        name = f"fer{32220 + i:07d}.png"
        _grey(folder / name, level)
        lines.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
    (folder / "label.csv").write_text("\n".join(lines) + "\n")
    return root


#: CK+48's class folders (only test/), with the grey levels of their images
CK_TEST = {
    "anger": [LEVEL["Angry"], LEVEL["Happy"]],
    "contempt": [LEVEL["Disgust"]],
    "disgust": [LEVEL["Disgust"]],
    "fear": [LEVEL["Surprise"]],
    "happy": [LEVEL["Happy"]] * 3,
    "sadness": [LEVEL["Sad"]],
    "surprise": [LEVEL["Surprise"]],
}


def _folders(root, classes: dict[str, list[int]], split: str = "test"):
    for name, levels in classes.items():
        for k, level in enumerate(levels):
            _grey(root / split / name / f"{k}.png", level)
    return root


def test_ferplus_with_a_7_class_model_maps_by_name_and_leaves_contempt_out(tmp_path, caplog):
    root = _ferplus_test_only(tmp_path)
    with caplog.at_level(logging.INFO, logger="zoo"):
        m = zoo.evaluate(GreyLevelModel(), f"ferplus:{root}", split="test", batch_size=3)
    assert m["class_mapping"] == {"Neutral": "Neutral", "Happiness": "Happy", "Surprise": "Surprise",
                                  "Sadness": "Sad", "Anger": "Angry", "Disgust": "Disgust", "Fear": "Fear",
                                  "Contempt": None}
    assert m["dropped"] == {"Contempt": 2} and m["num_samples"] == 8 and m["split"] == "test"
    assert "left out Contempt (2 samples)" in caplog.text and "Happiness→Happy" in caplog.text
    # 8 kept rows: 5 right (rows 1, 3, 4, 6, 7)
    assert m["accuracy"] == pytest.approx(5 / 8)
    # recall, model order: Angry 1/2, Disgust and Fear absent, Happy 2/2, Sad 1/1, Surprise 0/1, Neutral 1/2
    assert m["per_class_recall"] == {"Angry": 0.5, "Disgust": None, "Fear": None, "Happy": 1.0, "Sad": 1.0,
                                     "Surprise": 0.0, "Neutral": 0.5}
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1 + 1 + 0 + 0.5) / 5)
    # F1: Angry 2/3 (P 1, R 1/2), Disgust 0 and Fear 0 (predicted once each, wrongly), Happy 1, Sad 2/3 (P 1/2, R 1),
    # Surprise 0, Neutral 2/3 (P 1, R 1/2): all 7 classes appear in labels or predictions
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0 + 0 + 1 + 2 / 3 + 0 + 2 / 3) / 7)
    assert m["confusion"] == [[1, 1, 0, 0, 0, 0, 0], [0] * 7, [0] * 7, [0, 0, 0, 2, 0, 0, 0],
                              [0, 0, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0, 1]]
    # the votes are summed onto the model's classes without Contempt's: every kept row's top vote is its label
    assert m["majority_agreement"] == pytest.approx(5 / 8) and m["reference_samples"] == 8


def test_ferplus_votes_follow_the_mapping(tmp_path):
    root = _ferplus_test_only(tmp_path)
    model = GreyLevelModel()
    ds = open_dataset(f"ferplus:{root}", "test", data_config=model.config.data, streams="face")
    mapped, dropped = apply_class_match(ds, match_dataset_classes(ds, model, "ferplus"), "ferplus")
    assert len(mapped) == 8 and dropped == {"Contempt": 2}
    assert mapped.labels.tolist() == [6, 6, 3, 3, 5, 4, 0, 0]
    # row 1, votes Neutral 8, Happiness 1, Contempt 1 of 10 -> Happy 0.1, Neutral 0.8 (Contempt's 0.1 left out)
    assert torch.allclose(mapped[0]["distribution"], torch.tensor([0, 0, 0, 0.1, 0, 0, 0.8]))
    # row 8, Anger 7, Contempt 3 -> Angry 0.7
    assert torch.allclose(mapped[7]["distribution"], torch.tensor([0.7, 0, 0, 0, 0, 0, 0]))
    assert mapped[7]["label"] == 0 and mapped[7]["index"] == 7


def test_ck_plus_folders_with_only_test_use_it_and_map_by_name(tmp_path, caplog):
    root = _folders(tmp_path / "ck", CK_TEST)
    with caplog.at_level(logging.INFO, logger="zoo"):
        m = zoo.evaluate(GreyLevelModel(), f"folder:{root}", batch_size=4)  # no split: test/ is the only one
    assert m["split"] == "test" and "using the only split found, 'test'" in caplog.text
    assert m["class_mapping"] == {"anger": "Angry", "contempt": None, "disgust": "Disgust", "fear": "Fear",
                                  "happy": "Happy", "sadness": "Sad", "surprise": "Surprise"}
    assert m["dropped"] == {"contempt": 1} and m["num_samples"] == 9
    # right: anger 1 of 2, disgust, happy ×3, sadness, surprise = 7 of 9; fear predicted Surprise
    assert m["accuracy"] == pytest.approx(7 / 9)
    assert m["per_class_recall"]["Neutral"] is None and m["per_class_recall"]["Fear"] == 0.0
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0 + 1 + 1 + 1) / 6)
    # F1: Angry 2/3, Disgust 1, Fear 0, Happy 6/7 (P 3/4, R 1), Sad 1, Surprise 2/3 (P 1/2, R 1); Neutral absent
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 + 0 + 6 / 7 + 1 + 2 / 3) / 6)
    # an explicit map wins over the names: contempt counted as Disgust (its image reads as Disgust) -> 8 of 10
    m = zoo.evaluate(GreyLevelModel(), f"folder:{root}", class_map={"Contempt": "disgust"})
    assert m["class_mapping"]["contempt"] == "Disgust" and m["dropped"] == {}
    assert m["num_samples"] == 10 and m["accuracy"] == pytest.approx(8 / 10)


def test_names_that_cannot_be_matched_are_refused_until_a_class_map_says_what_they_are(tmp_path):
    root = _folders(tmp_path / "own", {"joy": [LEVEL["Happy"]] * 2, "calm": [LEVEL["Neutral"], LEVEL["Sad"]],
                                       "anger": [LEVEL["Angry"]]})
    with pytest.raises(ZooError) as info:
        zoo.evaluate(GreyLevelModel(), f"folder:{root}")
    text = str(info.value)
    assert "'calm', 'joy' match no model class" in text and "--class-map" in text and "class_map=" in text
    assert "['anger', 'calm', 'joy']" in text and str(list(labels.FER2013)) in text
    m = zoo.evaluate(GreyLevelModel(), f"folder:{root}", class_map={"joy": "Happy", "calm": "neutral"})
    # anger ✓, calm 1 of 2 (the Sad-level image), joy 2 of 2 -> 4 of 5
    assert m["class_mapping"] == {"anger": "Angry", "calm": "Neutral", "joy": "Happy"}
    assert m["accuracy"] == pytest.approx(4 / 5) and m["per_class_recall"]["Neutral"] == 0.5
    m = zoo.evaluate(GreyLevelModel(), f"folder:{root}", class_map={"joy": "Happy", "calm": None})
    assert m["dropped"] == {"calm": 2} and m["num_samples"] == 3 and m["accuracy"] == 1.0
    with pytest.raises(DataError, match="'sad' is not a class of the dataset; its classes are anger, calm, joy"):
        zoo.evaluate(GreyLevelModel(), f"folder:{root}", class_map={"sad": "Sad"})
    with pytest.raises(DataError, match="'joy' maps to 'Joyful', which is not a class of the model"):
        zoo.evaluate(GreyLevelModel(), f"folder:{root}", class_map={"joy": "Joyful", "calm": None})


def test_a_model_without_class_names(tmp_path):
    # as many classes as outputs: taken in order, as before (CK+'s sorted folders are then class_0..class_6)
    m = zoo.evaluate(GreyLevelModel(label_names=None), f"folder:{_folders(tmp_path / 'ck', CK_TEST)}")
    assert m["class_mapping"]["anger"] == "class_0" and m["class_mapping"]["surprise"] == "class_6"
    assert m["dropped"] == {} and m["num_samples"] == 10
    # another count: its classes are no emotions and not in the data, so nothing says what they are
    six = _folders(tmp_path / "six", {k: v for k, v in CK_TEST.items() if k != "contempt"})
    with pytest.raises(ZooError, match="the model's 'class_0', .* are no class of the dataset"):
        zoo.evaluate(GreyLevelModel(label_names=None), f"folder:{six}")


def test_match_class_names_rules():
    match = match_class_names(FERPLUS, labels.AFFECTNET8)  # both 8 classes, other names and order
    assert match.targets == (0, 1, 3, 2, 6, 5, 4, 7) and match.dropped == () and not match.unmatched
    assert match_class_names(labels.FER2013, labels.FER2013).is_identity
    assert not match_class_names(labels.CAER, labels.FER2013).is_identity
    # names compare casefolded, surrounding spaces ignored; an unknown model class the data lacks is reported
    odd = match_class_names([" HAPPY", "sadness"], ["Happy", "Sad", "Other"])
    assert odd.targets == (0, 1) and odd.unmatched_model == ("Other",)


def test_several_splits_none_asked_for_lists_them(tmp_path):
    root = _folders(tmp_path / "two", {"happy": [105], "sad": [135]}, split="train")
    _folders(root, {"happy": [105], "sad": [135]}, split="PrivateTest")
    with pytest.raises(SplitNotFoundError, match=r"no folder for split 'val'.*PrivateTest \(= test\), train") as info:
        zoo.evaluate(GreyLevelModel(), f"folder:{root}")
    assert info.value.splits == ("test", "train")
    assert zoo.evaluate(GreyLevelModel(), f"folder:{root}", split="test")["num_samples"] == 2
    only = _folders(tmp_path / "one", {"happy": [105], "sad": [135]})
    with pytest.raises(SplitNotFoundError, match="'val'"):  # asked for: no fallback
        zoo.evaluate(GreyLevelModel(), f"folder:{only}", split="val")
    with pytest.raises(SplitNotFoundError, match="found no split folder"):
        open_dataset(f"folder:{only / 'test'}", "val")


def test_training_keeps_refusing_a_class_mismatch_with_advice_that_does_not_mislabel(tmp_path):
    root = _ferplus_test_only(tmp_path)
    ds = open_dataset(f"ferplus:{root}", "test")
    with pytest.raises(ZooError) as info:
        check_dataset_matches(ds, GreyLevelModel(), "ferplus:X")
    text = str(info.value)
    names = json.dumps(["Neutral", "Happiness", "Surprise", "Sadness", "Anger", "Disgust", "Fear", "Contempt"])
    assert f"num_classes=8 'label_names={names}'" in text and "zoo-cli eval" in text
    caer = _folders(tmp_path / "caer", {n: [105] for n in labels.CAER})
    ds = open_dataset(f"folder:{caer}", "test")
    with pytest.raises(ZooError) as info:
        check_dataset_matches(ds, GreyLevelModel(), "folder:Y")
    text = str(info.value)
    assert "teach the model's output 'Angry' the dataset's class 'Anger'" in text
    assert f"'label_names={json.dumps(list(labels.CAER))}'" in text and "not relabelled" in text


def test_cli_eval_bundled_model_on_ferplus_test_only(tmp_path):
    """The issue's command: ``zoo-cli eval fer_cnn.fer2013 --data ferplus:DIR`` (no --split: FER2013Test is the
    only split), checked against the model run on the kept images directly."""
    from typer.testing import CliRunner

    import zoo.cli
    DEFAULT_MODEL = "fer_cnn.fer2013"  # the model (zoo's default is now a face + context model)

    root = _ferplus_test_only(tmp_path)
    (tmp_path / "map.json").write_text('{"contempt": null}')
    result = CliRunner().invoke(zoo.cli.app, ["eval", DEFAULT_MODEL, "--data", f"ferplus:{root}", "--json",
                                              "--class-map", str(tmp_path / "map.json")])
    assert result.exit_code == 0, (result.output, result.exception)
    m = json.loads(result.stdout)
    assert m["split"] == "test" and m["dropped"] == {"Contempt": 2} and m["num_samples"] == 8
    model = zoo.create(DEFAULT_MODEL, pretrained=True).eval()
    ds = open_dataset(f"ferplus:{root}", "test", data_config=model.config.data, streams="face")
    kept = [i for i in range(len(ds)) if ds.label_names[ds.samples[i].label] != "Contempt"]
    with torch.no_grad():
        preds = model(torch.stack([ds[i]["face"] for i in kept])).logits.argmax(1).tolist()
    truth = [labels.FER2013.index(n) for n in ("Neutral", "Neutral", "Happy", "Happy", "Surprise", "Sad", "Angry",
                                               "Angry")]
    assert m["accuracy"] == pytest.approx(sum(p == t for p, t in zip(preds, truth, strict=True)) / 8)
    text = CliRunner().invoke(zoo.cli.app, ["eval", DEFAULT_MODEL, "--data", f"ferplus:{root}", "--split", "test"])
    assert text.exit_code == 0 and "left out: Contempt, 2 samples" in text.output
    bad = CliRunner().invoke(zoo.cli.app, ["eval", DEFAULT_MODEL, "--data", f"ferplus:{root}", "--class-map", "{x"])
    assert "neither a JSON object nor a file" in str(bad.exception)
