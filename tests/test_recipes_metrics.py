"""Recipes resolve to the papers' and official configs' settings; overrides; metrics by hand."""

from __future__ import annotations

import math

import pytest
import torch

from zoo.factory import create
from zoo.training.metrics import classification_metrics, confusion_matrix, distribution_metrics
from zoo.training.recipes import RecipeError, apply_overrides, lr_factor, resolve_recipe


def _lr(config, epoch):
    s = config["schedule"]
    return max(config["optimizer"]["lr"] * lr_factor(s, epoch, config["epochs"]), s.get("min_lr") or 0.0)


def test_glamor_recipe_matches_official_code():
    c = resolve_recipe("glamor_net")
    assert c["optimizer"] == {"name": "sgd", "lr": 5e-4, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0}
    assert (c["batch_size"], c["epochs"], c["model"]) == (4, 60, "glamor_net")
    # PiecewiseConstantDecay values [5e-4, 5e-5, 1e-5]: ×0.1 at 25 and 40, floored at 1e-5
    assert [_lr(c, e) for e in (0, 24, 25, 39, 40, 59)] == pytest.approx([5e-4, 5e-4, 5e-5, 5e-5, 1e-5, 1e-5])


def test_caer_recipes_pair_each_model_with_its_own_config():
    # the port with BatchNorm1d: ndkhanh360 @49761a6 configs/normal_config.json (added in the same commit)
    c = resolve_recipe("caer_net_s_port")
    assert c["recipe"] == "caer_net_s_port" and c["model"] == "caer_net_s_port" and c["model_args"] == {}
    assert c["optimizer"] == {"name": "sgd", "lr": 1e-2, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0}
    assert (c["batch_size"], c["epochs"], c["early_stopping"], c["seed"]) == (128, 150, 40, 123)
    assert [_lr(c, e) for e in (0, 14, 15, 30)] == pytest.approx([1e-2, 1e-2, 5e-3, 2.5e-3])
    assert create(c["model"], **c["model_args"]).config.feature_norm is True
    # the port without it ("CAERS original model", @a4d9f75): that commit's config.json
    o = resolve_recipe("caer_net_s_original")
    assert create(o["model"], **o["model_args"]).config.feature_norm is False
    assert (o["optimizer"]["lr"], o["batch_size"], o["epochs"], o["early_stopping"]) == (5e-3, 32, 80, 40)
    # the paper form (no code): the paper's ÷10 every 4 epochs
    p = resolve_recipe("caer_net_s")
    assert p["model"] == "caer_net_s" and p["schedule"]["step_size"] == 4 and p["optimizer"]["lr"] == 5e-3
    assert [_lr(p, e) for e in (0, 3, 4, 8)] == pytest.approx([5e-3, 5e-3, 5e-4, 5e-5])
    assert {k: v for k, v in resolve_recipe("caer_net_s_paper").items() if k != "recipe"} == {
        k: v for k, v in p.items() if k != "recipe"}
    # a bare preset trains with its own recipe
    assert resolve_recipe("caer_net_s_port")["recipe"] == "caer_net_s_port"
    assert resolve_recipe("caer_net_s")["recipe"] == "caer_net_s"


def test_caer_and_ldlva_recipes():
    a = resolve_recipe("ldlva_resnet18_affectnet")
    assert a["optimizer"] == {"name": "adam", "lr": 3e-4, "eps": 1e-7}
    assert a["model_args"]["target_args"]["lamb_init"] == 0.8 and a["model_args"]["target_args"]["lamb_momentum"] == 0.9
    assert a["model_args"]["target_args"]["class_weights"] == "balanced"
    assert [_lr(a, e) for e in (4, 5, 10, 20)] == pytest.approx([3e-4, 6e-5, 1.2e-5, 2.4e-6])
    # a bare preset trains with its paper recipe; another model with a recipe drops the recipe's model args
    assert resolve_recipe("ldlva_resnet18")["recipe"] == "ldlva_resnet18_raf"
    other = resolve_recipe("fer_resnet18", recipe="ldlva_resnet18_affectnet")
    assert other["model"] == "fer_resnet18" and other["model_args"] == {} and other["optimizer"]["lr"] == 3e-4


def test_overrides_and_errors():
    c = apply_overrides(resolve_recipe("glamor_net"), ["epochs=5", "optimizer.lr=0.1", "attention=ca",
                                                      "schedule.milestones=[2,4]", "data.val=tiny:caer"])
    assert c["epochs"] == 5 and c["optimizer"]["lr"] == 0.1 and c["model_args"]["attention"] == "ca"
    assert c["schedule"]["milestones"] == [2, 4] and c["data"]["val"] == "tiny:caer"
    switched = apply_overrides(resolve_recipe("glamor_net"), ["optimizer=adamw"])
    assert switched["optimizer"] == {"lr": 5e-4, "name": "adamw"}  # SGD's momentum does not leak into AdamW
    with pytest.raises(RecipeError, match="Unknown setting 'epochz'"):
        apply_overrides(resolve_recipe("glamor_net"), ["epochz=5"])
    with pytest.raises(RecipeError, match="not KEY=VALUE"):
        apply_overrides(resolve_recipe("glamor_net"), ["epochs"])
    with pytest.raises(RecipeError, match="neither a training recipe nor a model"):
        resolve_recipe("nonexistent")
    assert lr_factor({"name": "cosine"}, 5, 10) == pytest.approx(0.5)


def test_classification_metrics_by_hand():
    labels = torch.tensor([0, 0, 1, 1, 2])
    preds = torch.tensor([0, 1, 1, 1, 0])
    assert confusion_matrix(labels, preds, 4).tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    m = classification_metrics(labels, preds, 4, ("a", "b", "c", "d"))
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 1 + 0) / 3)  # class d has no samples
    # F1: a = 2·(1/2·1/2)/(1) = 1/2, b = 2·(2/3·1)/(5/3) = 4/5, c = 0; d never true nor predicted
    assert m["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 0) / 3)
    assert m["per_class_recall"] == {"a": 0.5, "b": 1.0, "c": 0.0, "d": None}
    assert m["num_samples"] == 5


def test_distribution_metrics_by_hand():
    probs = torch.tensor([[0.5, 0.5], [0.9, 0.1]])
    votes = torch.tensor([[4.0, 0.0], [3.0, 1.0]])  # FER+-style vote counts
    d = distribution_metrics(probs, votes)
    q2, p2 = torch.tensor([0.75, 0.25]), torch.tensor([0.9, 0.1])
    kl2 = float((q2 * (q2 / p2).log()).sum())
    assert d["kl"] == pytest.approx((math.log(2) + kl2) / 2)
    m1 = torch.tensor([0.75, 0.25])
    js1 = 0.5 * math.log(1 / 0.75) + 0.5 * float((torch.tensor([0.5, 0.5]) * (0.5 / m1).log()).sum())
    m2 = (q2 + p2) / 2
    js2 = 0.5 * float((q2 * (q2 / m2).log()).sum()) + 0.5 * float((p2 * (p2 / m2).log()).sum())
    assert d["js"] == pytest.approx((js1 + js2) / 2)
    assert d["majority_agreement"] == pytest.approx(1.0)  # argmax ties go to index 0 in both
