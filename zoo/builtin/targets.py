"""Built-in label targets: ``register_targets`` over lazy factory strings (one-hot, FER+-style votes and LDLVA's ``ldl_va``)."""

from __future__ import annotations

from zoo.registry.entries import LazyFactory
from zoo.registry.hookspecs import hookimpl


@hookimpl
def register_targets(register):
    register("onehot", LazyFactory("zoo.models.components.targets:OneHotTarget"), "cross-entropy on one-hot labels (label smoothing, class weights)")
    register("votes", LazyFactory("zoo.models.components.targets:VoteTarget"), "soft cross-entropy against per-sample vote distributions (FER+), one-hot where a sample has none")
    register("ldl_va", LazyFactory("zoo.ldl.target:LDLVATarget"), "LDLVA: label distributions from valence-arousal neighbours, per-sample uncertainty, discriminative loss")
