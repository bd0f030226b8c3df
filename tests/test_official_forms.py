"""Where the official code departs from the paper: the LDLVA recipes named after official configs train with
the code's forms (``_paper`` variants with the paper's), class-weighted cross-entropy is normalised as the
official ``CELoss`` for them, and the TF presets resize as TensorFlow does; each against a literal
transcription of the official TF code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ldl_toys import ToyFaces, tiny_model
from PIL import Image

import zoo
from zoo.config import DataConfig
from zoo.data.transforms import jpeg_round_trip, prepare_streams
from zoo.errors import ConfigError, DataError
from zoo.ldl.discriminative import inter_class_term, update_centers
from zoo.ldl.target import TargetConfigError
from zoo.models.components.targets import OneHotTarget, weighted_mean
from zoo.training.recipes import PRESET_RECIPES, RECIPES, resolve_recipe

LDLVA_CONFIGS = ("ldlva_resnet18_raf", "ldlva_resnet50_raf", "ldlva_resnet18_affectnet")


def _official_update_centers(centers, x, y, lamb, num_classes, feat_dim, alpha=0.5):
    """minhnhatvt/label-distribution-learning-fer-tf src/utils.py DiscriminativeLoss.compute_grads +
    update_centers, transcribed: an SGD(lr=alpha) step on the pull gradient, then on 0.1·∇ Σ_{i<j} exp(-d/V)."""
    b = x.shape[0]
    diff = x - centers[y]
    onehot = F.one_hot(y, num_classes).float()
    grads = onehot.T @ (-lamb[:, None] * diff) / (onehot.T.sum(1, keepdim=True) + 1) / b
    centers = centers - alpha * grads
    c = centers.clone().requires_grad_(True)
    sb = 0.0
    for i in range(num_classes):
        for j in range(i, num_classes):
            if i != j:
                sb = sb + torch.exp(-((c[i] - c[j]) ** 2).sum() / feat_dim)
    (grad,) = torch.autograd.grad(sb, c)
    return (centers - alpha * 0.1 * grad).detach()


@pytest.mark.parametrize("name", LDLVA_CONFIGS)
def test_ldlva_recipes_named_after_official_configs_use_the_code_forms(name):
    official = resolve_recipe(name)["model_args"]["target_args"]
    assert {k: official[k] for k in ("similarity", "similarity_scale", "calibration_clamp", "center_repulsion",
                                     "repulsion_temperature", "repulsion_pairs", "weight_norm")} == {
        "similarity": "l1", "similarity_scale": 0.5, "calibration_clamp": -1.3, "center_repulsion": 0.1,
        "repulsion_temperature": "dim", "repulsion_pairs": "unordered", "weight_norm": "mean"}
    paper = resolve_recipe(f"{name}_paper")
    assert paper["model_args"]["target_args"]["similarity"] == "gaussian"
    assert paper["model_args"]["target_args"]["calibration_clamp"] is None
    assert paper["model_args"]["target_args"]["repulsion_temperature"] == "sqrt_dim"
    assert paper["model_args"]["target_args"]["repulsion_pairs"] == "ordered"
    # the same optimisation, λ settings and class weights in both
    same = ("optimizer", "schedule", "batch_size", "epochs", "augmentation", "model")
    assert all(paper[k] == resolve_recipe(name)[k] for k in same)
    for key in ("lamb_init", "lamb_momentum", "lamb_lr", "num_neighbors", "gamma"):
        assert paper["model_args"]["target_args"][key] == official[key]
    assert RECIPES[name][0].startswith("LDLVA config_") and "code's loss forms" in RECIPES[name][0]


def test_bare_ldlva_presets_train_with_the_official_forms():
    assert PRESET_RECIPES["ldlva_resnet18"] == "ldlva_resnet18_raf"
    assert PRESET_RECIPES["ldlva_resnet50"] == "ldlva_resnet50_raf"
    assert resolve_recipe("ldlva_resnet18")["model_args"]["target_args"]["similarity"] == "l1"


def test_official_recipe_builds_the_official_target():
    args = resolve_recipe("ldlva_resnet18_raf")["model_args"]["target_args"]
    model = tiny_model()
    ds = ToyFaces(n=24)
    target = zoo.build_target(model.config, model.feature_dim, num_samples=len(ds),
                              **{**args, "neighbor_mode": "memory_bank", "num_neighbors": 4})
    target.prepare(ds, model)
    # a_ik = exp(-‖VA_i - VA_k‖₁ / 0.5) (official get_train_dataset), stored relative to each row's largest
    l1 = (ds.va[:, None, :] - ds.va[target.neighbors]).abs().sum(-1)
    expected = torch.exp(-l1 / 0.5)
    assert torch.allclose(target.similarity, expected / expected.max(1, keepdim=True).values, atol=1e-6)
    # g's logit clamped at -1.3 (official AdaptiveSimNet): ζ ≥ σ(-1.3) = 0.214
    with torch.no_grad():
        target.calibration.net[-1].bias.fill_(-50.0)
    zeta = target.calibration(torch.randn(3, model.feature_dim), torch.randn(3, 4, model.feature_dim))
    assert torch.allclose(zeta, torch.full((3, 4), 1 / (1 + math.exp(1.3))))
    # the centre update of the builder is the official two-step update
    torch.manual_seed(0)
    c = 4 * torch.randn(3, model.feature_dim)
    x, y, lamb = torch.randn(10, model.feature_dim), torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 1, 2]), torch.rand(10)
    target.centers.copy_(c)
    target._pending = (x, y, lamb)
    target.after_step()
    assert torch.allclose(target.centers, _official_update_centers(c, x, y, lamb, 3, model.feature_dim), atol=1e-6)


def test_repulsion_forms_by_hand():
    centers = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])  # d² = 2, 4, 2
    ordered = 2 * (2 * math.exp(-2 / math.sqrt(2)) + math.exp(-4 / math.sqrt(2)))  # paper: Σ_j Σ_{k≠j}, τ = √V
    unordered = 2 * math.exp(-2 / 2) + math.exp(-4 / 2)  # official: Σ_{i<j}, τ = V = 2
    assert inter_class_term(centers).item() == pytest.approx(ordered)
    assert inter_class_term(centers, "sqrt_dim", "ordered").item() == pytest.approx(ordered)
    assert inter_class_term(centers, "dim", "unordered").item() == pytest.approx(unordered)
    # the paper form with half the step equals the official step only at the same τ: ordered = 2 × unordered
    a, b = centers.clone(), centers.clone()
    update_centers(a, centers[:0], torch.zeros(0, dtype=torch.long), torch.zeros(0), 0.5, 0.1, "dim", "unordered")
    update_centers(b, centers[:0], torch.zeros(0, dtype=torch.long), torch.zeros(0), 0.5, 0.05, "dim", "ordered")
    assert torch.allclose(a, b)
    with pytest.raises(ValueError, match="repulsion_temperature"):
        inter_class_term(centers, "sqrtdim")
    model = tiny_model()
    with pytest.raises(TargetConfigError, match="repulsion_pairs"):
        zoo.build_target(model.config, model.feature_dim, num_samples=8, repulsion_pairs="both")
    with pytest.raises(TargetConfigError, match="repulsion_temperature"):
        zoo.build_target(model.config, model.feature_dim, num_samples=8, repulsion_temperature="V")


# ---- point 7: class-weighted cross-entropy -------------------------------------------------------------------

LOGITS = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 1.0, 1.0]])
LABELS = torch.tensor([0, 1, 2, 2])
WEIGHTS = [0.5, 1.0, 4.0]


def _per_sample():
    return -F.log_softmax(LOGITS, 1)[torch.arange(4), LABELS]


class _Out:
    logits = LOGITS


def test_weighted_cross_entropy_official_mean_and_pytorch_form():
    losses, w = _per_sample(), torch.tensor(WEIGHTS)[LABELS]
    official = (w * losses).mean()  # LDLVA CELoss: mean_i w_i l_i
    pytorch = (w * losses).sum() / w.sum()  # cross_entropy(weight=w): divides by Σ w_i
    by_hand = [math.log(1 + 2 * math.exp(-2)), math.log(1 + 2 * math.exp(-1)), math.log(2 * math.e + 1), math.log(3)]
    weighted = [0.5 * by_hand[0], 1.0 * by_hand[1], 4.0 * by_hand[2], 4.0 * by_hand[3]]
    assert official.item() == pytest.approx(sum(weighted) / 4)  # 3.128
    assert pytorch.item() == pytest.approx(sum(weighted) / 9.5)  # 1.317: Σ w = 0.5 + 1 + 4 + 4
    batch = {"label": LABELS}
    default = OneHotTarget(3, class_weights=WEIGHTS)(_Out(), batch).loss
    assert default.item() == pytest.approx(pytorch.item(), abs=1e-6)
    assert default.item() == pytest.approx(F.cross_entropy(LOGITS, LABELS, weight=torch.tensor(WEIGHTS)).item())
    mean = OneHotTarget(3, class_weights=WEIGHTS, weight_norm="mean")(_Out(), batch).loss
    assert mean.item() == pytest.approx(official.item(), abs=1e-6)
    # with label smoothing: the smoothed target's cross-entropy, weighted by the label's class
    smooth = OneHotTarget(3, class_weights=WEIGHTS, weight_norm="mean", label_smoothing=0.1)(_Out(), batch).loss
    target = F.one_hot(LABELS, 3).float() * 0.9 + 0.1 / 3
    assert smooth.item() == pytest.approx((w * -(target * F.log_softmax(LOGITS, 1)).sum(1)).mean().item(), abs=1e-6)
    # without class weights both forms are the plain mean
    plain = OneHotTarget(3, weight_norm="mean")(_Out(), batch).loss
    assert plain.item() == pytest.approx(F.cross_entropy(LOGITS, LABELS).item())
    assert weighted_mean(losses, w, "weighted_mean").item() == pytest.approx(pytorch.item())
    with pytest.raises(ValueError, match="weight_norm"):
        OneHotTarget(3, weight_norm="sum")


def test_ldl_va_uses_the_official_normalisation_and_offers_the_other():
    model = tiny_model()
    ds = ToyFaces(n=24)
    losses = {}
    for norm in ("mean", "weighted_mean"):
        torch.manual_seed(0)
        target = zoo.build_target(model.config, model.feature_dim, num_samples=len(ds), neighbor_mode="memory_bank",
                                  num_neighbors=4, class_weights=[0.5, 1.0, 4.0], weight_norm=norm, gamma=0.0)
        target.prepare(ds, model)
        batch = torch.utils.data.default_collate([ds[i] for i in range(6)])
        model.eval()
        out = model(face=batch["face"])
        res = target(out, batch)
        d, logp = res.target, F.log_softmax(out.logits.float(), 1)
        w = torch.tensor([0.5, 1.0, 4.0])[batch["label"]]
        per = -(d * logp).sum(1)
        expected = (w * per).mean() if norm == "mean" else (w * per).sum() / w.sum()
        losses[norm] = res.terms["cls"].item()
        assert losses[norm] == pytest.approx(expected.item(), abs=1e-5)
    assert losses["mean"] != pytest.approx(losses["weighted_mean"])
    with pytest.raises(TargetConfigError, match="weight_norm"):
        zoo.build_target(model.config, model.feature_dim, num_samples=8, weight_norm="sum")


# ---- point 8: TensorFlow's resizing and GLAMOR-Net's JPEG round trip --------------------------------------------


def _tf_bilinear(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """tf.image.resize(image, (out_h, out_w), "bilinear", antialias=False) transcribed, in TF's float32 (TF2:
    resize_bilinear with half_pixel_centers=True; scale = in/out, x_in = (x + 0.5)·scale - 0.5,
    lower = max(floor, 0), upper = min(ceil, in - 1), top + (bottom - top)·y_lerp)."""

    def taps(n_in, n_out):
        x = (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * np.float32(n_in / n_out) - np.float32(0.5)
        lower = np.maximum(np.floor(x), 0).astype(int)
        upper = np.minimum(np.ceil(x), n_in - 1).astype(int)
        return lower, upper, (x - np.floor(x)).astype(np.float32)

    y0, y1, fy = taps(image.shape[0], out_h)
    x0, x1, fx = taps(image.shape[1], out_w)
    img = image.astype(np.float32)
    top = img[y0][:, x0] + (img[y0][:, x1] - img[y0][:, x0]) * fx[None, :, None]
    bottom = img[y1][:, x0] + (img[y1][:, x1] - img[y1][:, x0]) * fx[None, :, None]
    return (top + (bottom - top) * fy[:, None, None]).astype(np.float64)


def _photo(h=1280, w=1920, seed=0, texture=60) -> Image.Image:
    """A large photo-like test image: smooth gradients plus fine texture (what antialiasing smooths away)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 100 * np.sin(xx / 150.0), 128 + 100 * np.cos(yy / 90.0), (xx + yy) % 256], -1)
    noise = rng.integers(-texture, texture + 1, size=(h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def test_antialias_false_resizes_as_tensorflow_and_differs_from_pil():
    image = _photo()
    box = (800, 300, 1100, 700)
    plain = DataConfig(context_resize=(128, 171), context_size=(112, 112), face_size=(96, 96), mean=(0, 0, 0),
                       std=(1, 1, 1), antialias=False)
    prepared = prepare_streams(image, box, plain)
    masked = np.asarray(image).copy()
    masked[box[1]:box[3], box[0]:box[2]] = 0
    reference = _tf_bilinear(masked, 128, 171)
    context = prepared.context.permute(1, 2, 0).numpy().astype(np.float64)
    assert np.abs(context - reference).max() <= 0.5 + 1e-3  # TF's floats, rounded to uint8
    face_ref = _tf_bilinear(np.asarray(image)[box[1]:box[3], box[0]:box[2]], 96, 96)
    assert np.abs(prepared.face.permute(1, 2, 0).numpy() - face_ref).max() <= 0.5 + 1e-3
    # PIL's antialiased bilinear (the default) is another image: a 1920×1280 -> 171×128 context moves by
    # about 0.01 on [0, 1] on average and by a large fraction of the range at the texture's peaks
    pil = prepare_streams(image, box, DataConfig(context_resize=(128, 171), context_size=(112, 112)))
    diff = np.abs(pil.context.permute(1, 2, 0).numpy() - reference) / 255
    assert diff.mean() > 0.005 and diff.max() > 0.2
    with pytest.raises(DataError, match="antialias=False supports"):
        prepare_streams(image, box, DataConfig(antialias=False, interpolation="lanczos"))


def test_glamor_context_jpeg_round_trip():
    image = _photo(240, 320, seed=1, texture=3)
    cfg = DataConfig(context_resize=(128, 171), context_size=(112, 112), antialias=False, context_jpeg_quality=95)
    with_jpeg = prepare_streams(image, None, cfg)  # no face: the context is the whole image, not masked
    # the round trip happens before resizing, on the context only: the same as resizing a JPEG'd copy
    again = prepare_streams(jpeg_round_trip(image, 95), None, DataConfig(**{**cfg.__dict__, "context_jpeg_quality": None}))
    assert torch.equal(with_jpeg.context, again.context)
    without = prepare_streams(image, None, DataConfig(**{**cfg.__dict__, "context_jpeg_quality": None}))
    change = (with_jpeg.context.float() - without.context.float()).abs()
    assert 0 < change.mean() < 2 and change.max() > 0  # compression artefacts: small but present
    box = (100, 50, 180, 150)
    assert torch.equal(prepare_streams(image, box, cfg).face,
                       prepare_streams(image, box, DataConfig(**{**cfg.__dict__, "context_jpeg_quality": None})).face)
    with pytest.raises(ConfigError, match="context_jpeg_quality"):  # refused where it enters
        DataConfig(context_jpeg_quality=0)


def test_official_tf_presets_default_to_the_official_preprocessing():
    glamor = zoo.create("glamor_net").config.data
    assert glamor.antialias is False and glamor.context_jpeg_quality == 95
    for name in ("ldlva_resnet18", "ldlva_resnet50"):
        data = zoo.create(name, backbone="caer_cnn").config.data
        assert data.antialias is False and data.context_jpeg_quality is None
    for name in ("caer_net_s", "caer_net_s_port", "glamor_resnet18"):  # PIL (torchvision) pipelines
        data = zoo.create(name, backbone="caer_cnn").config.data
        assert data.antialias is True and data.context_jpeg_quality is None
