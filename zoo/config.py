"""The model configuration: every component name and argument, sizes, normalisation and label names.

A model *is* its config (timm's ``build_model_with_cfg`` idea): ``EmotionModel(ModelConfig.from_dict(d))``
rebuilds any saved model from its ``config.json`` alone.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

from zoo.errors import ConfigError

Streams = Literal["both", "face", "context", "context_guided"]
STREAMS = ("both", "face", "context", "context_guided")
#: attentions that never read the face vector (a face encoder would only guide nothing)
FACE_BLIND_ATTENTIONS = ("none", "ca")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Upper bounds of :meth:`ModelConfig.validate` (docs/safety.md): a config file cannot make the loader
#: allocate unbounded memory. ``num_classes = 10⁹`` would need a 4 GB classifier, a 30000² face 10 GB per batch.
MAX_NUM_CLASSES = 10_000
MAX_HEAD_HIDDEN = 16_384
#: each side of face_size, context_size and context_resize, in pixels
MAX_IMAGE_SIDE = 2048
#: nesting depth of the component argument dicts read from a model file
MAX_ARGS_DEPTH = 8
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box")
#: the one component-field table: each component field of :class:`ModelConfig` -> the field of its arguments
#: (validation, ``zoo.create``'s overrides, the saved config.json and the model-file checks all read it)
COMPONENT_FIELDS = {
    "backbone": "backbone_args",
    "context_backbone": "context_backbone_args",
    "attention": "attention_args",
    "fusion": "fusion_args",
    "target": "target_args",
}


def is_int(value: Any) -> bool:
    """An integer that is not a bool (JSON ``true`` must not pass as 1)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A finite real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _pair(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) != 2 or not all(
        is_int(v) and 1 <= v <= MAX_IMAGE_SIDE for v in value
    ):
        raise ConfigError(
            f"data.{name} must be [height, width], two integers in 1..{MAX_IMAGE_SIDE}, got {value!r}."
        )
    return int(value[0]), int(value[1])


def _triple(value: Any, name: str, positive: bool) -> tuple[float, float, float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) != 3 or not all(
        is_real(v) for v in value
    ):
        raise ConfigError(f"data.{name} must be three finite numbers (one per RGB channel), got {value!r}.")
    if positive and not all(float(v) > 0 for v in value):
        raise ConfigError(
            f"data.{name} must be three positive numbers (pixels are divided by it), got {list(value)!r}."
        )
    return tuple(value)  # type: ignore[return-value]


#: how ``DataConfig.align`` may frame a face: ``"none"`` crops the box, ``"eyes"`` aligns it (:mod:`zoo.data.align`)
ALIGNMENTS = ("none", "eyes")
#: what ``DataConfig.context_mask_fill`` may cover the face with in the context: zeros (CAER-Net-S, GLAMOR-Net),
#: the image's mean colour, or the box's own pixels blurred
CONTEXT_MASK_FILLS = ("black", "mean", "blur")


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
    #: what covers the face box in the context: "black" (zeros, as both papers' code), "mean" (the image's mean
    #: colour, so the hole has no dark square's edges to learn from) or "blur" (the box blurred with a Gaussian of
    #: a quarter of its shorter side: the head's outline stays, the expression goes)
    context_mask_fill: str = "black"
    #: convert every image to grey (kept as 3 equal channels) before cropping: models trained on grey
    #: datasets (FER2013) then see the same kind of input on colour photos
    grayscale: bool = False
    #: the context stream's colour: None follows ``grayscale``; False keeps the scene in colour for a model whose
    #: face stream is grey (a FER2013-trained face encoder with a colour context encoder)
    context_grayscale: bool | None = None
    #: resize with antialiasing (PIL's filters; the CAER port's torchvision ``Resize`` on PIL images). False:
    #: ``tf.image.resize``'s way, sampling the nearest taps only (bilinear: half-pixel centres, 2×2 taps), as
    #: the official GLAMOR-Net and LDLVA code (minhnhatvt/glamor-net data_utils.py; minhnhatvt/
    #: label-distribution-learning-fer-tf src/data_utils.py); their presets use it
    antialias: bool = True
    #: JPEG-encode and decode the masked context at this quality before resizing it, as GLAMOR-Net's
    #: ``training_preprocess`` does (``tf.image.encode_jpeg`` default quality 95, 4:2:0); None = no round trip
    context_jpeg_quality: int | None = None
    #: crop the face from its box grown by this fraction of the box's width (height) on each side, clipped to
    #: the image (negative: shrunk); the context mask stays the box itself. For framing tight detector or
    #: annotation boxes (ExpW, MTCNN) like another dataset's crops; on ExpW it did not help (docs/real-photos.md,
    #: margin 0 was best)
    face_margin: float = 0.0
    #: how the face crop is framed: "none" crops the (grown) box; "eyes" aligns it on the five landmarks (eyes
    #: level at a fixed distance and position, :mod:`zoo.data.align`), found by MTCNN or by O-Net in the box
    align: str = "none"

    def __post_init__(self) -> None:
        for name in ("face_size", "context_size", "context_resize"):
            setattr(self, name, _pair(getattr(self, name), name))
        self.mean = _triple(self.mean, "mean", positive=False)
        self.std = _triple(self.std, "std", positive=True)
        if not isinstance(self.interpolation, str) or self.interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"data.interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}."
            )
        for name in ("mask_face_in_context", "grayscale", "antialias"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"data.{name} must be true or false, got {getattr(self, name)!r}.")
        if self.context_grayscale is not None and not isinstance(self.context_grayscale, bool):
            raise ConfigError(f"data.context_grayscale must be true, false or null (follow data.grayscale), got "
                              f"{self.context_grayscale!r}.")
        if self.context_mask_fill not in CONTEXT_MASK_FILLS:
            raise ConfigError(f"data.context_mask_fill must be one of {', '.join(map(repr, CONTEXT_MASK_FILLS))}, "
                              f"got {self.context_mask_fill!r}.")
        margin = self.face_margin
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not -0.4 <= margin <= 1.0:
            raise ConfigError(f"data.face_margin must be a number in -0.4..1 (a fraction of the face box; negative "
                              f"shrinks it), got {margin!r}.")
        self.face_margin = float(margin)
        if self.align not in ALIGNMENTS:
            raise ConfigError(f"data.align must be one of {', '.join(map(repr, ALIGNMENTS))}, got {self.align!r}.")
        quality = self.context_jpeg_quality
        if quality is not None and (not is_int(quality) or not 1 <= quality <= 100):
            raise ConfigError(f"data.context_jpeg_quality must be null or a JPEG quality in 1..100, got {quality!r}.")

    @property
    def context_is_grey(self) -> bool:
        """Whether the context stream reads grey (``context_grayscale``, else ``grayscale``)."""
        return self.grayscale if self.context_grayscale is None else self.context_grayscale


@dataclass
class ModelConfig:
    """Everything needed to build an :class:`zoo.models.model.EmotionModel`.

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
    #: probabilities are softmax(logits / temperature): a temperature fitted on held-out data calibrates them
    #: (Guo et al., ICML 2017, §4.2; :func:`zoo.training.calibration.fit_temperature`); logits are unchanged
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.data, dict):
            self.data = _data_config_from_dict(self.data)
        if self.label_names is not None:
            if isinstance(self.label_names, (str, bytes)) or not isinstance(self.label_names, (list, tuple)):
                raise ConfigError(f"label_names must be a list of class names, got {self.label_names!r}.")
            self.label_names = tuple(self.label_names)
        self.validate()

    def validate(self) -> None:
        """The declared schema of a model config: types, choices and the size bounds (``MAX_*``)."""
        if self.streams not in STREAMS:
            raise ConfigError(f"streams must be one of {', '.join(map(repr, STREAMS))}, got {self.streams!r}.")
        if not is_int(self.num_classes) or not 2 <= self.num_classes <= MAX_NUM_CLASSES:
            raise ConfigError(f"num_classes must be an integer in 2..{MAX_NUM_CLASSES}, got {self.num_classes!r}.")
        if self.label_names is not None:
            _check_label_names(self.label_names)
            if len(self.label_names) != self.num_classes:
                raise ConfigError(
                    f"label_names has {len(self.label_names)} entries but num_classes is {self.num_classes}; "
                    f"pass matching label_names (or label_names=None)."
                )
        for name, args_name in COMPONENT_FIELDS.items():
            value, args = getattr(self, name), getattr(self, args_name)
            optional = name == "context_backbone"
            if not (isinstance(value, str) and value.strip()) and not (optional and value is None):
                raise ConfigError(f"{name} must be a component name (a non-empty string), got {value!r}.")
            if isinstance(value, str) and names_a_location(value):
                raise ConfigError(f"{name} {value!r} names a file, URL or Hub repo, which the backbone would fetch or "
                                  f"read; a component name is a registered name (timm: a timm model name without "
                                  f"a prefix). Load a model from the Hub by its model name: hf-hub:ORG/NAME.")
            if not isinstance(args, dict) and not (optional and args is None):
                raise ConfigError(f"{args_name} must be a dict of argument names to values, got {args!r}.")
            if isinstance(args, dict) and not all(isinstance(k, str) for k in args):
                raise ConfigError(f"{args_name}: argument names must be strings, got {list(args)!r}.")
        if not isinstance(self.feature_norm, bool):
            raise ConfigError(f"feature_norm must be true or false, got {self.feature_norm!r}.")
        if self.head_hidden is not None and (not is_int(self.head_hidden)
                                             or not 0 <= self.head_hidden <= MAX_HEAD_HIDDEN):
            raise ConfigError(
                f"head_hidden must be null or 0 (one Linear layer) or an integer in 1..{MAX_HEAD_HIDDEN}, "
                f"got {self.head_hidden!r}."
            )
        if not is_real(self.head_dropout) or not 0.0 <= float(self.head_dropout) < 1.0:
            raise ConfigError(f"head_dropout must be a probability in [0, 1), got {self.head_dropout!r}.")
        if not is_real(self.temperature) or not 0.01 <= float(self.temperature) <= 100.0:
            raise ConfigError(f"temperature must be a number in 0.01..100 (1 = uncalibrated), got {self.temperature!r}.")
        self.temperature = float(self.temperature)
        if self.init not in ("torch", "keras"):
            raise ConfigError(f"init must be 'torch' or 'keras', got {self.init!r}.")
        if self.architecture is not None and not isinstance(self.architecture, str):
            raise ConfigError(f"architecture must be a string or null, got {self.architecture!r}.")
        if not isinstance(self.data, DataConfig):
            raise ConfigError(f"data must be a dict of input settings, got {self.data!r}.")
        if self.uses_context:
            (ch, cw), (rh, rw) = self.data.context_size, self.data.context_resize
            if ch > rh or cw > rw:
                raise ConfigError(
                    f"data.context_size {[ch, cw]} is larger than data.context_resize {[rh, rw]}; the context is "
                    f"resized to context_resize and then cropped to context_size."
                )
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
    def context_backbone_spec(self) -> tuple[str, dict[str, Any]]:
        """The context encoder's backbone name and arguments: ``context_backbone`` defaults to the face
        backbone, ``context_backbone_args`` to the face backbone's arguments when the names are the same (else
        to none)."""
        name = self.context_backbone or self.backbone
        args = self.context_backbone_args
        if args is None:
            args = self.backbone_args if name == self.backbone else {}
        return name, args

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


def _check_label_names(names: tuple[Any, ...]) -> None:
    """Class names: non-empty strings, no two equal up to case and surrounding spaces (outputs are keyed by
    name, and dataset folders match names case-insensitively, so such a pair would collapse)."""
    seen: dict[str, str] = {}
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"label_names must be non-empty strings, got {name!r} in {list(names)!r}.")
        hidden = [c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs", "Zl", "Zp")]
        if hidden:
            raise ConfigError(f"label_names: {name!r} holds invisible characters "
                              f"({', '.join(f'U+{ord(c):04X}' for c in hidden)}); a class name is printable text.")
        if unicodedata.normalize("NFKC", name) != name:  # fullwidth letters, ligatures, decomposed accents
            raise ConfigError(f"label_names: {name!r} is spelled with look-alike characters; write it as "
                              f"{unicodedata.normalize('NFKC', name)!r} (Unicode NFKC).")
        key = name.strip().casefold()
        if key in seen:
            raise ConfigError(
                f"label_names has {seen[key]!r} and {name!r}, the same class name twice (names are compared "
                f"ignoring case and surrounding spaces); every class needs its own name."
            )
        seen[key] = name


def _data_config_from_dict(d: dict[str, Any]) -> DataConfig:
    if not isinstance(d, dict):
        raise ConfigError(f"data must be a dict of input settings, got {d!r}.")
    known = {f.name for f in dataclasses.fields(DataConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(
            f"unknown data setting(s) {', '.join(unknown)}; valid settings: {', '.join(sorted(known))}."
        )
    return DataConfig(**d)  # DataConfig.__post_init__ checks each value and stores tuples


# ---------------------------------------------------------------------------------------------------------
# Model files: what a config.json written by someone else may ask the loader to do (docs/safety.md)
# ---------------------------------------------------------------------------------------------------------

#: arguments that make a component read files or the network (timm's ``create_model`` loading options and the
#: like). A model file may not set them; only an explicit argument in code or on the command line may.
LOADING_ARGS = frozenset({
    "pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "pretrained_strict", "checkpoint_path", "checkpoint",
    "cache_dir", "weights", "hf_hub_id", "url", "file", "filename", "path", "model_dir", "repo_id", "revision",
})
_LOADING_SUFFIXES = ("_path", "_file", "_dir", "_url", "_filename")
_LOCATION_PREFIXES = ("/", "~", "\\", "file:", "http:", "https:", "ftp:", "hf-hub:", "hf_hub:", "local-dir:", "s3:", "gs:")
#: positional arguments each kind's factory takes before its keyword arguments (zoo.registry.hookspecs)
_POSITIONAL = {"backbone": 0, "attention": 2, "fusion": 2, "target": 3}


def names_a_location(name: str) -> bool:
    """Whether a component name's part after its kind (``timm:``) names a file, URL or Hub repo, however spelled
    (``timm:hf-hub:org/x``, ``timm:HF_HUB:x``, ``timm: local-dir:d``, ``timm:/path``): timm would fetch or read it,
    even from a ``local-dir:`` model. Nothing reaches the network unless the *model* name says ``hf-hub:``."""
    _, _, rest = name.strip().partition(":")
    rest = rest.strip()
    return ":" in rest or "\\" in rest or rest.lower().startswith(_LOCATION_PREFIXES)


def is_loading_arg(name: str) -> bool:
    """Whether an argument name is a loading option (:data:`LOADING_ARGS`, ``pretrained*``, ``*_path``, ...)."""
    lowered = name.lower()
    return lowered in LOADING_ARGS or lowered.startswith("pretrained") or lowered.endswith(_LOADING_SUFFIXES)


def _walk_args(value: Any, where: str, source: str, depth: int = 0):
    """Yield ``(where, key, value)`` for every dict entry, checking the nesting depth."""
    if depth > MAX_ARGS_DEPTH:
        raise ConfigError(f"{source}: {where} is nested deeper than {MAX_ARGS_DEPTH} levels; component arguments "
                          f"are flat settings.")
    if isinstance(value, dict):
        for key, item in value.items():
            yield where, key, item
            yield from _walk_args(item, f"{where}.{key}", source, depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _walk_args(item, f"{where}[{i}]", source, depth + 1)


def accepted_arguments(factory: Any, positional: int) -> set[str] | None:
    """Keyword arguments ``factory`` declares after its first ``positional`` ones; None if it takes ``**kwargs``."""
    import inspect

    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    named = [p for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    return {p.name for p in named[positional:] if p.kind is not inspect.Parameter.POSITIONAL_ONLY}


def used_components(config: ModelConfig) -> list[tuple[str, str, str, dict[str, Any]]]:
    """``(kind, field, name, args)`` of every component ``EmotionModel(config)`` builds, plus the target."""
    used = []
    if config.uses_face:
        used.append(("backbone", "backbone", config.backbone, config.backbone_args))
    if config.uses_context:
        name, args = config.context_backbone_spec
        used.append(("backbone", "context_backbone" if config.context_backbone else "backbone", name, args))
        used.append(("attention", "attention", config.attention, config.attention_args))
    if config.streams == "both":
        used.append(("fusion", "fusion", config.fusion, config.fusion_args))
    used.append(("target", "target", config.target, config.target_args))
    return used


def check_file_config(config: ModelConfig, source: str) -> None:
    """Checks for a config read from a model file (``local-dir:``, ``hf-hub:``), before anything is built.

    Every component must be registered and get only arguments its factory declares (``**kwargs`` factories
    such as ``timm:`` pass theirs on, so for them only the next rule applies). The components built at load
    (backbones, attention, fusion) may not get loading options (:func:`is_loading_arg`) or values naming a
    file or URL: timm's ``pretrained`` + ``pretrained_cfg_overlay.url`` would fetch any URL and
    ``checkpoint_path`` read any file. ``target_args`` are only used by ``zoo.train``, never at load.
    """
    from zoo.registry.plugins import get_component

    for kind, field_name, name, args in used_components(config):
        args_field = COMPONENT_FIELDS[field_name]
        entry, suffix = get_component(kind, name)
        accepted = accepted_arguments(entry.factory, _POSITIONAL[kind] + (suffix is not None))
        if accepted is not None:
            unknown = sorted(set(args) - accepted)
            if unknown:
                raise ConfigError(
                    f"{source}: {args_field} {', '.join(map(repr, unknown))} not accepted by {kind} {name!r} "
                    f"(plugin {entry.plugin!r}); it takes {', '.join(sorted(accepted)) or 'no arguments'}."
                )
        for where, key, value in _walk_args(args, args_field, source):
            if kind == "target":
                continue
            if isinstance(key, str) and is_loading_arg(key):
                raise ConfigError(
                    f"{source}: {where}.{key} is a loading option; a model file may not make {kind} {name!r} read "
                    f"files or the network. Pass it explicitly in code (zoo.create(..., {args_field}={{{key!r}: "
                    f"...}})) if you trust it, or remove it from the file."
                )
            if isinstance(value, str) and value.strip().lower().startswith(_LOCATION_PREFIXES):
                raise ConfigError(
                    f"{source}: {where}.{key} = {value!r} names a file or URL; a model file may not make {kind} "
                    f"{name!r} read files or the network. Remove it from the file or pass it explicitly in code."
                )
