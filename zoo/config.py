"""The model configuration: every component name and argument, sizes, normalisation and label names.

A model *is* its config (timm's ``build_model_with_cfg`` idea): ``EmotionModel(ModelConfig.from_dict(d))``
rebuilds any saved model from its ``config.json`` alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from zoo.registry import ZooError

Streams = Literal["both", "face", "context", "context_guided"]
STREAMS = ("both", "face", "context", "context_guided")
#: attentions that never read the face vector (a face encoder would only guide nothing)
FACE_BLIND_ATTENTIONS = ("none", "ca")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ConfigError(ZooError, ValueError):
    """A model configuration that cannot be built; the message names the key and what to change."""


@dataclass
class DataConfig:
    """How inputs are prepared for this model (ndkhanh360/CAER@93d2582:CAER/data_loader/data_loaders.py;
    minhnhatvt/glamor-net@c12e1b9:data_utils.py); used by training and inference."""

    face_size: tuple[int, int] = (96, 96)
    context_size: tuple[int, int] = (112, 112)
    #: the context image is resized to this (H, W) then cropped to ``context_size`` (random in training)
    context_resize: tuple[int, int] = (128, 171)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    #: False only for the "visible face" context ablations of GLAMOR-Net Table 2
    mask_face_in_context: bool = True
    #: convert every image to grey (kept as 3 equal channels) before cropping: models trained on grey
    #: datasets (FER2013) then see the same kind of input on colour photos
    grayscale: bool = False
    #: resize with antialiasing (PIL's filters; the CAER port's torchvision ``Resize`` on PIL images). False:
    #: ``tf.image.resize``'s way, sampling the nearest taps only (bilinear: half-pixel centres, 2×2 taps), as
    #: the official GLAMOR-Net and LDLVA code (minhnhatvt/glamor-net data_utils.py; minhnhatvt/
    #: label-distribution-learning-fer-tf src/data_utils.py); their presets use it
    antialias: bool = True
    #: JPEG-encode and decode the masked context at this quality before resizing it, as GLAMOR-Net's
    #: ``training_preprocess`` does (``tf.image.encode_jpeg`` default quality 95, 4:2:0); None = no round trip
    context_jpeg_quality: int | None = None


@dataclass
class ModelConfig:
    """Everything needed to build an :class:`zoo.model.EmotionModel`.

    ``context_backbone`` defaults to the face backbone's name and arguments; the two encoders never share
    weights (ndkhanh360/CAER@93d2582:CAER/model/model.py; minhnhatvt/glamor-net@c12e1b9:model.py).
    """

    num_classes: int = 7
    label_names: tuple[str, ...] | None = None
    streams: Streams = "both"
    backbone: str = "caer_cnn"
    backbone_args: dict[str, Any] = field(default_factory=dict)
    context_backbone: str | None = None
    context_backbone_args: dict[str, Any] | None = None
    attention: str = "gla"
    attention_args: dict[str, Any] = field(default_factory=dict)
    fusion: str = "adaptive"
    fusion_args: dict[str, Any] = field(default_factory=dict)
    target: str = "onehot"
    target_args: dict[str, Any] = field(default_factory=dict)
    #: BatchNorm1d on v_f and v_c before fusion (added by the PyTorch CAER port, not in the papers)
    feature_norm: bool = False
    #: classifier: Linear(d, head_hidden) -> ReLU -> Dropout -> Linear(head_hidden, C); None = one Linear
    head_hidden: int | None = 128
    head_dropout: float = 0.5
    #: "torch" (PyTorch defaults) or "keras" (glorot-uniform kernels, zero biases, as the TF2 GLAMOR code)
    init: str = "torch"
    architecture: str | None = None
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        if isinstance(self.data, dict):
            self.data = _data_config_from_dict(self.data)
        if self.label_names is not None:
            self.label_names = tuple(self.label_names)
        self.validate()

    def validate(self) -> None:
        if self.streams not in STREAMS:
            raise ConfigError(f"streams must be one of {', '.join(map(repr, STREAMS))}, got {self.streams!r}.")
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ConfigError(f"num_classes must be an integer >= 2, got {self.num_classes!r}.")
        if self.label_names is not None and len(self.label_names) != self.num_classes:
            raise ConfigError(
                f"label_names has {len(self.label_names)} entries but num_classes is {self.num_classes}; "
                f"pass matching label_names (or label_names=None)."
            )
        if self.init not in ("torch", "keras"):
            raise ConfigError(f"init must be 'torch' or 'keras', got {self.init!r}.")
        if self.streams == "context" and self.attention == "gla":
            raise ConfigError(
                "attention='gla' needs the face vector, but streams='context' has no face stream; use "
                "streams='context_guided' (the face encoder only guides attention; GLAMOR-Net Table 2) or "
                "attention='none' / 'ca' for context-only models."
            )
        if self.streams == "context_guided" and self.attention in FACE_BLIND_ATTENTIONS:
            raise ConfigError(
                f"streams='context_guided' runs the face encoder only to guide attention, but attention="
                f"{self.attention!r} does not read the face vector; use streams='context' for this model."
            )

    @property
    def resolved_label_names(self) -> tuple[str, ...]:
        return self.label_names or tuple(f"class_{i}" for i in range(self.num_classes))

    @property
    def uses_face(self) -> bool:
        """The model reads the face input (``context_guided``: only as the attention's query)."""
        return self.streams in ("both", "face", "context_guided")

    @property
    def uses_context(self) -> bool:
        return self.streams in ("both", "context", "context_guided")

    @property
    def data_streams(self) -> str:
        """The streams a dataset must provide for this model: ``"both"`` for ``context_guided``."""
        return "both" if self.streams == "context_guided" else self.streams

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["label_names"] = list(self.label_names) if self.label_names is not None else None
        d["data"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["data"].items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown model argument(s) {', '.join(unknown)}. Valid arguments: "
                f"{', '.join(sorted(known))}. Was this config written by a newer emotion-zoo, or by a plugin "
                f"that is not installed?"
            )
        try:
            return cls(**d)
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from exc

    def replace(self, **changes: Any) -> ModelConfig:
        return ModelConfig.from_dict({**self.to_dict(), **changes})


def _data_config_from_dict(d: dict[str, Any]) -> DataConfig:
    known = {f.name for f in dataclasses.fields(DataConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(
            f"unknown data setting(s) {', '.join(unknown)}; valid settings: {', '.join(sorted(known))}."
        )
    tuples = {k: tuple(v) for k, v in d.items() if isinstance(v, list)}
    return DataConfig(**{**d, **tuples})
