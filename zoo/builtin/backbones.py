"""Built-in backbones: ``register_backbones`` over lazy factory strings (no torch imported to register them)."""

from __future__ import annotations

from zoo.registry.entries import LazyFactory
from zoo.registry.hookspecs import hookimpl

#: units per stage of each published depth of ArcFace's IR networks (:mod:`zoo.models.components.iresnet`)
IR_DEPTHS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
}


@hookimpl
def register_backbones(register):
    register("caer_cnn", LazyFactory("zoo.models.components.backbones:caer_cnn"), "CAER-Net-S / GLAMOR-Net 5-block CNN (32-64-128-256-256), stride 16")
    register("fer_cnn", LazyFactory("zoo.models.components.backbones:fer_cnn"), "compact VGG-style CNN for 48×48 faces (32-64-128-256, 2 convs per stage)")
    register("resnet18", LazyFactory("zoo.models.components.backbones:resnet18"), "ResNet-18 trunk from timm, last stage (512 ch, stride 32)")
    for depth, units in IR_DEPTHS.items():
        register(f"iresnet{depth}", LazyFactory("zoo.models.components.iresnet:iresnet", (depth,)),
                 f"ArcFace IR network ({'-'.join(map(str, units))} units), 112² -> 512-d BN-Dropout-FC-BN embedding "
                 f"(embedding=False: the 512-ch stride-16 map)")
    register("timm:", LazyFactory("zoo.models.components.backbones:timm_backbone"), "any timm model's last feature map, e.g. timm:convnext_atto", prefix=True)
