"""Built-in presets (a plugin like any other): the models of the three papers and some modern variants.

Defaults follow the official code where it exists and say so; ``*_port`` / option names expose the
other form (docs/models.md, "Where the official code departs from the paper"). Pretrained tags are added as weights are
published.
"""

from __future__ import annotations

from typing import Any

from zoo import labels
from zoo.models.components import KERAS_BN
from zoo.registry.hookspecs import hookimpl

_CNN_DATA = {"face_size": (96, 96), "context_size": (112, 112), "context_resize": (128, 171)}
_RESNET_DATA = {"face_size": (112, 112), "context_size": (224, 224), "context_resize": (256, 342)}
# GLAMOR-Net's TF code scales pixels to [0, 1] and does not standardise (minhnhatvt/glamor-net@c12e1b9:data_utils.py).
_UNIT_RANGE = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
# LDLVA scales pixels as (x - 127.5) / 127.5 (minhnhatvt/label-distribution-learning-fer-tf@a741b36:src/data_utils.py).
_SYMMETRIC_RANGE = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
# The TF2 code of GLAMOR-Net and LDLVA resizes with tf.image.resize (bilinear, no antialiasing); GLAMOR-Net
# also round-trips the masked context through JPEG (minhnhatvt/glamor-net
# @c12e1b97aa7354df126795f19402303a00166ec3:data_utils.py training_preprocess; minhnhatvt/
# label-distribution-learning-fer-tf @a741b363d328d7cb9156dc5b94927bdd7f391c57:src/data_utils.py).
_TF_RESIZE = {"antialias": False}
_GLAMOR_TF_DATA = {**_TF_RESIZE, "context_jpeg_quality": 95}


def _two_stream(**kwargs: Any) -> dict[str, Any]:
    base = {
        "streams": "both",
        "num_classes": 7,
        "label_names": labels.CAER,
        "fusion": "adaptive",
        "head_hidden": 128,
        "head_dropout": 0.5,
    }
    return {**base, **kwargs}


def _face_only(**kwargs: Any) -> dict[str, Any]:
    base = {"streams": "face", "num_classes": 7, "head_hidden": None, "head_dropout": 0.0}
    return {**base, **kwargs}


PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "caer_net_s": (
        "CAER-Net-S (Lee et al., ICCV 2019), paper form: CA softmax on raw logits, v_c = Σ a·v",
        _two_stream(backbone="caer_cnn", attention="ca", data=_CNN_DATA),
    ),
    "caer_net_s_port": (
        "CAER-Net-S exactly as the PyTorch port ndkhanh360/CAER (BN+ReLU on CA logits, 1/49 pooling, "
        "BatchNorm1d before fusion); 2,390,028 parameters",
        _two_stream(
            backbone="caer_cnn",
            attention="ca",
            attention_args={"logit_bn_relu": True, "pool": "mean"},
            feature_norm=True,
            data=_CNN_DATA,
        ),
    ),
    "glamor_net": (
        "GLAMOR-Net, original CNN, as the official TF2 code (BN in the GLA scorer, Keras BN and init, TF "
        "resizing and the context's JPEG round trip); "
        "2,158,602 parameters",
        _two_stream(
            backbone="caer_cnn",
            backbone_args=dict(KERAS_BN),
            attention="gla",
            attention_args={"scorer_bn": True, **KERAS_BN},
            init="keras",
            data={**_CNN_DATA, **_UNIT_RANGE, **_GLAMOR_TF_DATA},
        ),
    ),
    "glamor_resnet18": (
        "GLAMOR-Net with two ResNet-18 encoders (face 112², context 224² -> 7×7 cells)",
        _two_stream(backbone="resnet18", attention="gla", data=_RESNET_DATA),
    ),
    "glamor_convnext_atto": (
        "GLAMOR-Net with two timm convnext_atto encoders (example of any timm backbone)",
        _two_stream(backbone="timm:convnext_atto", attention="gla", data=_RESNET_DATA),
    ),
    "fer_cnn": (
        "Compact face-only CNN for 48×48 grey faces (FER2013 class order); the bundled default model",
        _face_only(
            backbone="fer_cnn",
            label_names=labels.FER2013,
            target="onehot",
            target_args={"label_smoothing": 0.1},
            head_dropout=0.4,
            data={"face_size": (48, 48), "grayscale": True, **_SYMMETRIC_RANGE},
        ),
    ),
    "glamor_fer_cnn": (
        "Compact GLAMOR-Net for real photos: fer_cnn face encoder (48² grey), a narrow fer_cnn context encoder "
        "(16-32-64-128 channels, 112² grey context -> 7×7 cells), GLA, adaptive fusion; FER2013 class order",
        _two_stream(
            backbone="fer_cnn",
            context_backbone="fer_cnn",
            context_backbone_args={"channels": [16, 32, 64, 128]},
            attention="gla",
            label_names=labels.FER2013,
            target="onehot",
            target_args={"label_smoothing": 0.1},
            data={"face_size": (48, 48), "context_size": (112, 112), "context_resize": (128, 171), "grayscale": True,
                  **_SYMMETRIC_RANGE},
        ),
    ),
    "fer_resnet18": (
        "Face-only ResNet-18 FER baseline trained with one-hot labels (FER2013 class order)",
        _face_only(
            backbone="resnet18",
            label_names=labels.FER2013,
            target="onehot",
            data={"face_size": (112, 112), **_SYMMETRIC_RANGE},
        ),
    ),
    "fer_resnet18_slim": (
        "Face-only ResNet-18 at 5/8 width (40-80-160-320 channels, 32-channel stem; 4.39 M parameters) for faces in "
        "real photos: 64² colour crops aligned on the eyes, FER2013 class order, vote-distribution targets",
        _face_only(
            backbone="timm:resnet18",
            backbone_args={"channels": [40, 80, 160, 320], "stem_width": 32},
            label_names=labels.FER2013,
            target="votes",
            target_args={"label_smoothing": 0.1},
            head_dropout=0.2,
            data={"face_size": (64, 64), "align": "eyes", **_SYMMETRIC_RANGE},
        ),
    ),
    "ldlva_resnet18": (
        "LDLVA (Le et al., WACV 2023) with a ResNet-18 face encoder, 224² input, LDL-VA targets",
        _face_only(
            backbone="resnet18",
            label_names=labels.AFFECTNET7,
            target="ldl_va",
            data={"face_size": (224, 224), **_SYMMETRIC_RANGE, **_TF_RESIZE},
        ),
    ),
    "ldlva_resnet50": (
        "LDLVA with an IR-50 face encoder (ArcFace's improved-residual network, 512-d embedding), 112² input, "
        "LDL-VA targets; backbone='timm:resnet50' for the ImageNet-style ResNet-50 (2048-d)",
        _face_only(
            backbone="iresnet50",
            label_names=labels.AFFECTNET7,
            target="ldl_va",
            data={"face_size": (112, 112), **_SYMMETRIC_RANGE, **_TF_RESIZE},
        ),
    ),
}


#: weights shipped as package data (``zoo/pretrained/<preset>.<tag>/``: config.json, model.safetensors and
#: the card README.md); metrics from ``python -m benchmarks.fer2013_release`` on FER2013 PublicTest
PRETRAINED: dict[str, list[dict[str, Any]]] = {
    "fer_cnn": [{
        "tag": "fer2013", "file": "pretrained/fer_cnn.fer2013", "dataset": "fer2013",
        "license": "FER2013 terms: research use",
        "description": "zoo-cli train fer2013_cnn (40 epochs on the 28,709 FER2013 training images, final epoch)",
        "metrics": {"accuracy": 0.679, "macro_f1": 0.6516, "accuracy_flip_tta": 0.6863},
    }, {
        "tag": "expw", "file": "pretrained/fer_cnn.expw", "dataset": "expw",
        "license": "ExpW and FER2013 terms: research use",
        "description": "python -m benchmarks.expw_release --model face (fer_cnn.fer2013 fine-tuned 15 epochs on the "
                       "ExpW training photos' faces, final epoch); metrics on the ExpW val photos",
        "metrics": {"accuracy": 0.4593, "balanced_accuracy": 0.46, "fer2013_publictest_accuracy": 0.518},
    }],
    "glamor_fer_cnn": [{
        "tag": "expw", "file": "pretrained/glamor_fer_cnn.expw", "dataset": "expw",
        "license": "ExpW and FER2013 terms: research use",
        "description": "python -m benchmarks.expw_release --model glamor (face stream from fer_cnn.expw, 10 epochs "
                       "on the ExpW training photos, final epoch, float16); metrics on the ExpW val photos",
        "metrics": {"accuracy": 0.4384, "balanced_accuracy": 0.4398},
    }],
}


_FER2013_LABELS = "'label_names=[\"" + '\",\"'.join(labels.FER2013) + "\"]'"
#: what a preset without weights points to instead
WITHOUT_WEIGHTS: dict[str, str] = {
    "glamor_resnet18": (
        "The bundled face + context model glamor_fer_cnn.expw does the same job on real photos (GLA over the "
        "scene, adaptive fusion; trained on ExpW): zoo.create('glamor_fer_cnn.expw', pretrained=True). To train "
        "glamor_resnet18 itself on ExpW photos: zoo-cli train glamor_resnet18 --data expw:DIR "
        f"backbone_pretrained=true {_FER2013_LABELS} --out RUN (ExpW's classes are in the FER2013 order)."),
}


@hookimpl
def register_presets(register):
    for name, (description, model_args) in PRESETS.items():
        register(name, model_args, description=description, pretrained=PRETRAINED.get(name, ()),
                 without_weights=WITHOUT_WEIGHTS.get(name, ""))
