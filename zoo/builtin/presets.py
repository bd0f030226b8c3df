"""Built-in presets: the models of the three papers and some modern variants, with their pretrained tags.

One table per family, in the manner of timm's ``generate_default_cfgs``: a key ``"preset"`` is a model
(:func:`preset`: its description and arguments), a key ``"preset.tag"`` one set of its published weights
(:func:`bundled` for weights shipped in ``zoo/pretrained/<preset>.<tag>/``, :func:`hub` for a Hub repo); a
preset's first tag is its default. :func:`generate_presets` turns the tables into the registrations. Adding a
model or a tag is adding one entry to its family's table.

Defaults follow the official code where it exists and say so; ``*_port`` / option names expose the
other form (docs/models.md, "Where the official code departs from the paper").
"""

from __future__ import annotations

from typing import Any

from zoo import labels
from zoo.registry.hookspecs import hookimpl

#: Keras BatchNormalization defaults (momentum 0.99 = PyTorch momentum 0.01, eps 1e-3), as in the TF2 code.
KERAS_BN = {"bn_momentum": 0.01, "bn_eps": 1e-3}

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


_FER2013_LABELS = "'label_names=[\"" + '\",\"'.join(labels.FER2013) + "\"]'"


def preset(description: str, model_args: dict[str, Any], without_weights: str = "") -> dict[str, Any]:
    """A table entry ``"name"``: a model. ``without_weights``: what to use or run instead, for a preset that has
    no published weights (shown when they are asked for)."""
    return {"description": description, "model_args": model_args, "without_weights": without_weights}


def bundled(**cfg: Any) -> dict[str, Any]:
    """A table entry ``"preset.tag"`` for weights shipped as package data in ``zoo/pretrained/<preset>.<tag>/``
    (config.json, model.safetensors and the card README.md); ``cfg``: the other
    :class:`~zoo.registry.entries.PretrainedCfg` fields (dataset, license, description, metrics)."""
    return {"bundled": True, **cfg}


def hub(hf_hub_id: str, revision: str, **cfg: Any) -> dict[str, Any]:
    """A table entry ``"preset.tag"`` for weights in a Hub repo, pinned to ``revision``."""
    return {"hf_hub_id": hf_hub_id, "revision": revision, **cfg}


def generate_presets(*tables: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The family tables -> ``{preset: {"description", "model_args", "without_weights", "pretrained": [cfg, ...]}}``,
    the keyword arguments of one ``register(name, ...)`` each (timm's ``generate_default_cfgs``: tags in table
    order, the first the default). A tag of a preset no table defines, or a name twice, is an error."""
    presets: dict[str, dict[str, Any]] = {}
    for table in tables:
        for key, entry in table.items():
            name, _, tag = key.partition(".")
            if not tag:
                if name in presets:
                    raise ValueError(f"built-in preset {name!r} is defined twice.")
                presets[name] = {**entry, "pretrained": []}
                continue
            if name not in presets:
                raise ValueError(f"built-in tag {key!r}: define the preset {name!r} before its tags.")
            cfg = dict(entry)
            if cfg.pop("bundled", False):
                cfg["file"] = f"pretrained/{key}"
            presets[name]["pretrained"].append({"tag": tag, **cfg})
    return presets


CAER = {
    "caer_net_s": preset(
        "CAER-Net-S (Lee et al., ICCV 2019), paper form: CA softmax on raw logits, v_c = Σ a·v",
        _two_stream(backbone="caer_cnn", attention="ca", data=_CNN_DATA),
    ),
    "caer_net_s_port": preset(
        "CAER-Net-S exactly as the PyTorch port ndkhanh360/CAER (BN+ReLU on CA logits, 1/49 pooling, "
        "BatchNorm1d before fusion); 2,390,028 parameters",
        _two_stream(backbone="caer_cnn", attention="ca", attention_args={"logit_bn_relu": True, "pool": "mean"},
                    feature_norm=True, data=_CNN_DATA),
    ),
}

GLAMOR = {
    "glamor_net": preset(
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
    "glamor_resnet18": preset(
        "GLAMOR-Net with two ResNet-18 encoders (face 112², context 224² -> 7×7 cells)",
        _two_stream(backbone="resnet18", attention="gla", data=_RESNET_DATA),
        without_weights=(
            "The bundled face + context model glamor_fer_cnn.expw does the same job on real photos (GLA over the "
            "scene, adaptive fusion; trained on ExpW): zoo.create('glamor_fer_cnn.expw', pretrained=True). To train "
            "glamor_resnet18 itself on ExpW photos: zoo-cli train glamor_resnet18 --data expw:DIR "
            f"backbone_pretrained=true {_FER2013_LABELS} --out RUN (ExpW's classes are in the FER2013 order)."),
    ),
    "glamor_convnext_atto": preset(
        "GLAMOR-Net with two timm convnext_atto encoders (example of any timm backbone)",
        _two_stream(backbone="timm:convnext_atto", attention="gla", data=_RESNET_DATA),
    ),
    "glamor_fer_cnn": preset(
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
    "glamor_fer_cnn.expw": bundled(
        dataset="expw", license="ExpW and FER2013 terms: research use",
        description="python -m benchmarks.expw_release --model glamor (face stream from fer_cnn.expw, 10 epochs "
                    "on the ExpW training photos, final epoch, float16); metrics on the ExpW val photos",
        metrics={"accuracy": 0.4384, "balanced_accuracy": 0.4398},
    ),
}

#: metrics of the FER2013 tags from ``python -m benchmarks.fer2013_release`` on FER2013 PublicTest
FER = {
    "fer_cnn": preset(
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
    "fer_cnn.fer2013": bundled(
        dataset="fer2013", license="FER2013 terms: research use",
        description="zoo-cli train fer2013_cnn (40 epochs on the 28,709 FER2013 training images, final epoch)",
        metrics={"accuracy": 0.679, "macro_f1": 0.6516, "accuracy_flip_tta": 0.6863},
    ),
    "fer_cnn.expw": bundled(
        dataset="expw", license="ExpW and FER2013 terms: research use",
        description="python -m benchmarks.expw_release --model face (fer_cnn.fer2013 fine-tuned 15 epochs on the "
                    "ExpW training photos' faces, final epoch); metrics on the ExpW val photos",
        metrics={"accuracy": 0.4593, "balanced_accuracy": 0.46, "fer2013_publictest_accuracy": 0.518},
    ),
    "fer_cnn.fer2013_expw": bundled(
        dataset="fer2013+expw", license="FER2013, FER+ (MIT labels) and ExpW terms: research use",
        description="python -m benchmarks.joint_release --variant finetune_fer_cnn --package (fer_cnn.fer2013 "
                    "fine-tuned 10 epochs on FER2013 with FER+ votes and the ExpW training faces in every batch, "
                    "aligned on the eyes, temperature-calibrated); metrics on the three dev references",
        # zoo.evaluate of the packaged weights (python -m benchmarks.joint_release --compare); ECE: the run's
        metrics={"expw_val_accuracy": 0.4256, "expw_val_balanced_accuracy": 0.4230,
                 "publictest_accuracy": 0.6141, "ferplus_majority_accuracy": 0.8005,
                 "ferplus_kl": 0.3819, "expw_val_ece": 0.0420},
        # what these weights were fitted with beyond the fer_cnn preset: votes, eye alignment, the temperature
        model_args={"backbone_args": {"channels": [32, 64, 128, 256]}, "target": "votes",
                    "data": {"face_size": (48, 48), "grayscale": True, "align": "eyes", **_SYMMETRIC_RANGE},
                    "temperature": 1.269},
    ),
    "fer_resnet18": preset(
        "Face-only ResNet-18 FER baseline trained with one-hot labels (FER2013 class order)",
        _face_only(
            backbone="resnet18",
            label_names=labels.FER2013,
            target="onehot",
            data={"face_size": (112, 112), **_SYMMETRIC_RANGE},
        ),
    ),
    "fer_resnet18_slim": preset(
        "Face-only ResNet-18 at 5/8 width (40-80-160-320 channels; 4.39 M parameters) for faces in real photos: "
        "64² colour crops aligned on the eyes, FER2013 class order, vote-distribution targets",
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
}


def _ldlva(backbone: str, side: int) -> dict[str, Any]:
    """An LDLVA model: a face-only ``backbone`` on ``side``² faces, AffectNet-7 classes, LDL-VA targets."""
    data = {"face_size": (side, side), **_SYMMETRIC_RANGE, **_TF_RESIZE}
    return _face_only(backbone=backbone, label_names=labels.AFFECTNET7, target="ldl_va", data=data)


LDLVA = {
    "ldlva_resnet18": preset(
        "LDLVA (Le et al., WACV 2023) with a ResNet-18 face encoder, 224² input, LDL-VA targets",
        _ldlva("resnet18", 224),
    ),
    "ldlva_resnet50": preset(
        "LDLVA with an IR-50 face encoder (ArcFace's improved-residual network, 512-d embedding), 112² input, "
        "LDL-VA targets; backbone='timm:resnet50' for the ImageNet-style ResNet-50 (2048-d)",
        _ldlva("iresnet50", 112),
    ),
}

#: every built-in preset, generated from the family tables
PRESETS: dict[str, dict[str, Any]] = generate_presets(CAER, GLAMOR, FER, LDLVA)


@hookimpl
def register_presets(register):
    for name, spec in PRESETS.items():
        register(name, **spec)
