"""The built-in components and presets, registered through the hooks like any plugin's, without importing torch.

Each factory is a :class:`~zoo.registry.entries.LazyFactory` naming the module that defines it, so filling the
registries (``zoo.list_models()``, ``zoo.list_components()``) imports no torch; building a model does. Each
object below is one plugin, named after the module that holds its components (``zoo-cli plugins``;
:data:`zoo.registry.plugins.DEFAULT_PLUGINS`).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from zoo.models.components import IR_DEPTHS
from zoo.registry.entries import LazyFactory
from zoo.registry.hookspecs import hookimpl

_BACKBONES = "zoo.models.components.backbones"
_ATTENTION = "zoo.models.components.attention"
_FUSION = "zoo.models.components.fusion"
_TARGETS = "zoo.models.components.targets"


def _plugin(hook: str, entries: list[tuple[Any, ...]]) -> SimpleNamespace:
    """A plugin whose one hook, ``hook``, registers ``(name, factory, description[, prefix])`` for each entry."""

    def register_entries(register):
        for name, factory, description, *prefix in entries:
            register(name, factory, description, prefix=bool(prefix and prefix[0]))

    return SimpleNamespace(**{hook: hookimpl(register_entries)})


Backbones = _plugin("register_backbones", [
    ("caer_cnn", LazyFactory(f"{_BACKBONES}:caer_cnn"),
     "CAER-Net-S / GLAMOR-Net 5-block CNN (32-64-128-256-256), stride 16"),
    ("fer_cnn", LazyFactory(f"{_BACKBONES}:fer_cnn"),
     "compact VGG-style CNN for 48×48 faces (32-64-128-256, 2 convs per stage)"),
    ("resnet18", LazyFactory(f"{_BACKBONES}:resnet18"), "ResNet-18 trunk from timm, last stage (512 ch, stride 32)"),
    *[(f"iresnet{depth}", LazyFactory("zoo.models.components.iresnet:iresnet", (depth,)),
       f"ArcFace IR network ({'-'.join(map(str, units))} units), 112² -> 512-d BN-Dropout-FC-BN embedding "
       f"(embedding=False: the 512-ch stride-16 map)") for depth, units in IR_DEPTHS.items()],
    ("timm:", LazyFactory(f"{_BACKBONES}:timm_backbone"), "any timm model's last feature map, e.g. timm:convnext_atto",
     True),
])

Attention = _plugin("register_attentions", [
    ("none", LazyFactory(f"{_ATTENTION}:average_pool"), "global average pooling"),
    ("ca", LazyFactory(f"{_ATTENTION}:ContextAttention"), "CAER-Net-S context attention (face-blind conv scorer)"),
    ("gla", LazyFactory(f"{_ATTENTION}:GlobalLocalAttention"), "GLAMOR-Net global-local attention (face-guided)"),
])

Fusion = _plugin("register_fusions", [
    ("concat", LazyFactory(f"{_FUSION}:ConcatFusion"), "concatenate the face and context vectors"),
    ("adaptive", LazyFactory(f"{_FUSION}:AdaptiveFusion"), "GLAMOR-Net adaptive fusion (softmax-weighted streams)"),
])

Targets = _plugin("register_targets", [
    ("onehot", LazyFactory(f"{_TARGETS}:OneHotTarget"),
     "cross-entropy on one-hot labels (label smoothing, class weights)"),
    ("votes", LazyFactory(f"{_TARGETS}:VoteTarget"),
     "soft cross-entropy against per-sample vote distributions (FER+), one-hot where a sample has none"),
])
