"""GLA on synth_caer: a tiny run in which the face-guided attention moves onto the cue whose colour matches
the face (the binding ``synth_caer`` is built to need; GLAMOR-Net's claim over face-blind attention)."""

from __future__ import annotations

import numpy as np
import torch

import zoo
from benchmarks.bench_synth import synth_tensors, train_epoch
from zoo.config import DataConfig
from zoo.data.synth import matching_cue_share

# 160 steps of batch 32 (~15 s on one core); narrower encoders (8-16-32-32) stayed at chance for 8 epochs
N_TRAIN, EPOCHS = 1024, 5
DATA = DataConfig(face_size=(32, 32), context_size=(48, 48), context_resize=(48, 48))


def test_gla_attention_mass_on_the_matching_cue_rises_above_chance():
    torch.manual_seed(0)
    train, val = synth_tensors("train", N_TRAIN, 0, DATA), synth_tensors("val", 128, 0, DATA)
    model = zoo.create(backbone="caer_cnn", backbone_args={"channels": (16, 32, 64, 64)}, num_classes=7,
                       head_hidden=32, head_dropout=0.0, data=DATA, streams="both", attention="gla",
                       attention_args={"scorer_bn": False}, fusion="concat")

    def share() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            attention = model(face=val[0], context=val[1]).attention
        s, chance = matching_cue_share(attention, val[3])
        return float(np.mean(s)), float(np.mean(chance))

    before, chance = share()
    optimiser = torch.optim.Adam(model.parameters(), 3e-3)
    for _epoch in range(EPOCHS):
        train_epoch(model, optimiser, train)
    after, _ = share()
    assert abs(before - chance) < 0.05  # an untrained scorer looks nowhere in particular
    assert after > chance + 0.1, (before, after, chance)  # measured: 0.675 against 0.488

