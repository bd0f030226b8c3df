"""The built-in components and presets, registered through the hooks like any plugin's, without importing torch.

Each factory is a :class:`~zoo.registry.entries.LazyFactory` naming the module that defines it, so filling the
registries (``zoo.list_models()``, ``zoo.list_components()``) imports no torch; building a model does. Each
class below is one plugin, named after the module that holds its components (``zoo-cli plugins``).
"""

from __future__ import annotations

from zoo.models.components import IR_DEPTHS
from zoo.registry.entries import LazyFactory
from zoo.registry.hookspecs import hookimpl

_BACKBONES = "zoo.models.components.backbones"
_ATTENTION = "zoo.models.components.attention"
_FUSION = "zoo.models.components.fusion"
_TARGETS = "zoo.models.components.targets"


class Backbones:
    """Plugin ``zoo.models.components.backbones``."""

    @staticmethod
    @hookimpl
    def register_backbones(register):
        register("caer_cnn", LazyFactory(f"{_BACKBONES}:caer_cnn"),
                 "CAER-Net-S / GLAMOR-Net 5-block CNN (32-64-128-256-256), stride 16")
        register("fer_cnn", LazyFactory(f"{_BACKBONES}:fer_cnn"),
                 "compact VGG-style CNN for 48×48 faces (32-64-128-256, 2 convs per stage)")
        register("resnet18", LazyFactory(f"{_BACKBONES}:resnet18"),
                 "ResNet-18 trunk from timm, last stage (512 ch, stride 32)")
        for depth, units in IR_DEPTHS.items():
            register(f"iresnet{depth}", LazyFactory("zoo.models.components.iresnet:iresnet", (depth,)),
                     f"ArcFace IR network ({'-'.join(map(str, units))} units), 112² -> 512-d BN-Dropout-FC-BN "
                     f"embedding (embedding=False: the 512-ch stride-16 map)")
        register("timm:", LazyFactory(f"{_BACKBONES}:timm_backbone"),
                 "any timm model's last feature map, e.g. timm:convnext_atto", prefix=True)


class Attention:
    """Plugin ``zoo.models.components.attention``."""

    @staticmethod
    @hookimpl
    def register_attentions(register):
        register("none", LazyFactory(f"{_ATTENTION}:average_pool"), "global average pooling")
        register("ca", LazyFactory(f"{_ATTENTION}:ContextAttention"),
                 "CAER-Net-S context attention (face-blind conv scorer)")
        register("gla", LazyFactory(f"{_ATTENTION}:GlobalLocalAttention"),
                 "GLAMOR-Net global-local attention (face-guided)")


class Fusion:
    """Plugin ``zoo.models.components.fusion``."""

    @staticmethod
    @hookimpl
    def register_fusions(register):
        register("concat", LazyFactory(f"{_FUSION}:ConcatFusion"), "concatenate the face and context vectors")
        register("adaptive", LazyFactory(f"{_FUSION}:AdaptiveFusion"),
                 "GLAMOR-Net adaptive fusion (softmax-weighted streams)")


class Targets:
    """Plugin ``zoo.models.components.targets``."""

    @staticmethod
    @hookimpl
    def register_targets(register):
        register("onehot", LazyFactory(f"{_TARGETS}:OneHotTarget"),
                 "cross-entropy on one-hot labels (label smoothing, class weights)")
