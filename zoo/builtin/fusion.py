"""Built-in stream fusions: ``register_fusions`` over lazy factory strings."""

from __future__ import annotations

from zoo.registry.entries import LazyFactory
from zoo.registry.hookspecs import hookimpl


@hookimpl
def register_fusions(register):
    register("concat", LazyFactory("zoo.models.components.fusion:ConcatFusion"), "concatenate the face and context vectors")
    register("adaptive", LazyFactory("zoo.models.components.fusion:AdaptiveFusion"), "GLAMOR-Net adaptive fusion (softmax-weighted streams)")
