"""The emotion model: two encoders (face, context), an attention head, a fusion and a classifier.

Data flow for ``streams='both'`` (GLAMOR-Net, Le et al., Neural Comput. & Appl. 2022; CAER-Net-S, Lee et al.,
ICCV 2019; ndkhanh360/CAER@93d2582:CAER/model/model.py)::

    face ──backbone──> F_f ──GAP──> v_f ───────────────┐
    context ──context backbone──> F_c ──attention(F_c, v_f)──> v_c ──> fusion(v_f, v_c) ──> classifier

``streams='face'`` drops the context branch (LDLVA, plain FER); ``streams='context'`` drops the face branch;
``streams='context_guided'`` keeps the face encoder only as GLA's query and classifies ``v_c`` alone, without
fusion (the context-only rows of GLAMOR-Net's Table 2, in which attention is still guided by the face).
Every component is looked up by name in the registries.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from zoo.config import ModelConfig
from zoo.errors import ComponentBuildError, ZooError
from zoo.registry.plugins import get_component


@dataclass
class EmotionOutput:
    """What a forward pass returns. ``model(face, context).logits`` is all plain training needs."""

    logits: torch.Tensor
    #: B×h×w context attention map (None for face-only models)
    attention: torch.Tensor | None = None
    #: B×2 stream weights [w_f, w_c] from adaptive fusion (None otherwise)
    fusion_weights: torch.Tensor | None = None
    face_vector: torch.Tensor | None = None
    context_vector: torch.Tensor | None = None
    #: the vector fed to the classifier (face vector for face-only models)
    features: torch.Tensor | None = None
    #: the model's calibration temperature (``ModelConfig.temperature``): ``probs`` is softmax(logits / T)
    temperature: float = 1.0

    @property
    def probs(self) -> torch.Tensor:
        return torch.softmax(self.logits.float() / self.temperature, dim=-1)


def build_component(kind: str, name: str, *args: Any, **kwargs: Any) -> nn.Module:
    """Build a registered component; any failure of its factory is a :class:`ComponentBuildError` naming it."""
    entry, suffix = get_component(kind, name)
    if suffix is not None:
        args = (suffix, *args)
    where = f"{kind} {name!r} (from plugin {entry.plugin!r}) with arguments {kwargs}"
    try:
        module = entry.factory(*args, **kwargs)
    except ZooError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin's factory may raise anything; name it
        raise ComponentBuildError(f"Could not build {where}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(module, nn.Module):
        raise ComponentBuildError(f"Could not build {where}: its factory returned {type(module).__name__}, "
                                  f"not a torch.nn.Module.")
    if kind == "backbone" and not isinstance(getattr(module, "out_channels", None), numbers.Integral):
        raise ComponentBuildError(f"Could not build {where}: a backbone must have an integer out_channels, got "
                                  f"{getattr(module, 'out_channels', None)!r}.")
    return module


#: the probe a plugin's attention runs on when a model is built: batch 2, a 3×4 map (h ≠ w catches a transpose)
ATTENTION_PROBE = (2, 3, 4)


def check_attention_contract(attention: nn.Module, name: str, context_dim: int, face_dim: int | None) -> None:
    """Run an attention head from a third-party plugin once on a small probe and check what it returns against
    the contract (:func:`zoo.registry.hookspecs.register_attentions`): ``forward(context_map B×C×h×w,
    face_vector B×D or None)`` -> ``(context vector B×C, attention map B×h×w)``, C being what the fusion and
    the classifier are built for. A break is a :class:`ComponentBuildError` naming the attention, its plugin,
    the shapes expected and those returned. Built-in heads are not probed; the probe leaves the module's
    training mode, buffers and the random state as they were."""
    entry, _ = get_component("attention", name)
    if entry.builtin:
        return
    batch, height, width = ATTENTION_PROBE
    parameter = next(attention.parameters(), None)
    like = {"dtype": parameter.dtype, "device": parameter.device} if parameter is not None and \
        parameter.is_floating_point() else {}
    context_map = torch.linspace(-1.0, 1.0, batch * context_dim * height * width, **like).reshape(
        batch, context_dim, height, width)
    face_vector = torch.linspace(1.0, -1.0, batch * face_dim, **like).reshape(batch, face_dim) if face_dim else None
    face_text = f"a {batch}×{face_dim} face vector" if face_dim else "no face vector (None)"
    where = (f"attention {name!r} (from plugin {entry.plugin!r}), run on a {batch}×{context_dim}×{height}×{width} "
             f"context map and {face_text}")
    expected = f"(context vector {(batch, context_dim)}, attention map {(batch, height, width)})"
    was_training = attention.training
    attention.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            output = attention(context_map, face_vector)
    except Exception as exc:  # noqa: BLE001 - a plugin's forward may raise anything; name it
        raise ComponentBuildError(f"{where}, raised {type(exc).__name__}: {exc}. Its forward must take any map "
                                  f"size h×w and return {expected}.") from exc
    finally:
        attention.train(was_training)
    shapes = [tuple(t.shape) for t in output] if isinstance(output, (tuple, list)) and all(
        isinstance(t, torch.Tensor) for t in output) else None
    if shapes != [(batch, context_dim), (batch, height, width)]:
        got = (f"({', '.join(str(shape) for shape in shapes)})" if shapes is not None
               else f"a {type(output).__name__}" + (f" of shape {tuple(output.shape)}"
                                                    if isinstance(output, torch.Tensor) else ""))
        raise ComponentBuildError(f"{where}, returned {got}; the attention contract expects {expected} (the fusion "
                                  f"and classifier are built for {context_dim} context channels).")
    bad = [label for label, t in zip(("context vector", "attention map"), output, strict=True)
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ComponentBuildError(f"{where}, returned NaN or infinite values in its {' and '.join(bad)}; every "
                                  f"prediction through it would be NaN. Fix the plugin's forward.")


class EmotionModel(nn.Module):
    """A model composed from registered components; ``config`` is enough to rebuild it."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        get_component("target", config.target)  # built later by build_target; an unknown name is an error now
        self.config = config
        self.face_encoder: nn.Module | None = None
        self.context_encoder: nn.Module | None = None
        self.attention: nn.Module | None = None
        self.fusion: nn.Module | None = None
        self.face_norm: nn.Module | None = None
        self.context_norm: nn.Module | None = None

        face_dim = context_dim = 0
        if config.uses_face:
            self.face_encoder = build_component("backbone", config.backbone, **config.backbone_args)
            face_dim = int(self.face_encoder.out_channels)
        if config.uses_context:
            ctx_name, ctx_args = config.context_backbone_spec
            self.context_encoder = build_component("backbone", ctx_name, **ctx_args)
            context_dim = int(self.context_encoder.out_channels)
            self.attention = build_component(
                "attention", config.attention, context_dim, face_dim or None, **config.attention_args
            )
            check_attention_contract(self.attention, config.attention, context_dim, face_dim or None)
        if config.streams == "both":
            if config.feature_norm:
                self.face_norm = nn.BatchNorm1d(face_dim)
                self.context_norm = nn.BatchNorm1d(context_dim)
            self.fusion = build_component("fusion", config.fusion, face_dim, context_dim, **config.fusion_args)
            feature_dim = int(self.fusion.out_dim)
        else:
            feature_dim = face_dim if config.streams == "face" else context_dim
        self.feature_dim = feature_dim
        self.classifier = _classifier(feature_dim, config.num_classes, config.head_hidden, config.head_dropout)
        if config.init == "keras":
            self.apply(_keras_init)

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.config.resolved_label_names

    @property
    def head_keys(self) -> tuple[str, ...]:
        """State-dict keys of the classifier's output layer, the only weights whose shape ``num_classes`` sets
        (timm's ``pretrained_cfg["classifier"]``): what ``zoo.create`` replaces to give pretrained weights
        other classes."""
        output = [name for name, module in self.classifier.named_modules() if isinstance(module, nn.Linear)][-1]
        prefix = f"classifier.{output}." if output else "classifier."
        return tuple(prefix + name for name, _ in self.classifier.get_submodule(output).named_parameters())

    def forward(self, face: torch.Tensor | None = None, context: torch.Tensor | None = None) -> EmotionOutput:
        cfg = self.config
        v_f = v_c = attention = weights = None
        if cfg.uses_face:
            if face is None:
                raise ValueError(f"This model (streams={cfg.streams!r}) needs the face input.")
            v_f = self.face_encoder(face).mean(dim=(2, 3))
        if cfg.uses_context:
            if context is None:
                raise ValueError(f"This model (streams={cfg.streams!r}) needs the context input.")
            context_map = self.context_encoder(context)
            v_c, attention = self.attention(context_map, v_f)
        if cfg.streams == "both":
            if self.face_norm is not None:
                v_f, v_c = self.face_norm(v_f), self.context_norm(v_c)
            features, weights = self.fusion(v_f, v_c)
        elif cfg.streams == "face":
            features = v_f
        else:  # "context", "context_guided": the face vector (if any) only guided the attention
            features = v_c
        return EmotionOutput(self.classifier(features), attention, weights, v_f, v_c, features, cfg.temperature)

    def extra_repr(self) -> str:
        c = self.config
        return f"streams={c.streams}, backbone={c.backbone}, attention={c.attention}, fusion={c.fusion}"


def _classifier(dim: int, num_classes: int, hidden: int | None, dropout: float) -> nn.Module:
    if not hidden:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes)) if dropout else nn.Linear(
            dim, num_classes
        )
    return nn.Sequential(
        nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
    )


def _keras_init(module: nn.Module) -> None:
    """Keras defaults: glorot-uniform kernels and zero biases (the TF2 layers of minhnhatvt/glamor-net@c12e1b9:model.py)."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build_target(config: ModelConfig, feature_dim: int, num_samples: int | None = None, **overrides: Any):
    """Build the label-target builder named by ``config.target`` (with ``config.target_args``)."""
    args = {**config.target_args, **overrides}
    return build_component("target", config.target, config.num_classes, feature_dim, num_samples, **args)
