"""Built-in context attention heads: ``register_attentions`` over lazy factory strings."""

from __future__ import annotations

from zoo.registry.entries import LazyFactory
from zoo.registry.hookspecs import hookimpl


@hookimpl
def register_attentions(register):
    register("none", LazyFactory("zoo.models.components.attention:average_pool"), "global average pooling")
    register("ca", LazyFactory("zoo.models.components.attention:ContextAttention"), "CAER-Net-S context attention (face-blind conv scorer)")
    register("gla", LazyFactory("zoo.models.components.attention:GlobalLocalAttention"), "GLAMOR-Net global-local attention (face-guided)")
