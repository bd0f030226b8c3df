"""How far face-only, CA and GLA models get on synth_caer in a CPU budget (not a test).

    PYTHONPATH=. python benchmarks/bench_synth.py [--epochs 12] [--n 2048] [--n-cues 2] [--variants face,ca,gla]

Tiny caer_cnn encoders (16-32-64-64-64 channels), face 32², context 48² (no context crop, so no cue is cut
off), Adam 2e-3, batch 32, 2 threads. Prints test accuracy per epoch; compare with the ceilings in
``zoo.data.synth`` (face only 57.1%, unbound face+context 78.6%, GLA 100%).
"""

from __future__ import annotations

import argparse
import time

import torch

import zoo
from zoo.config import DataConfig
from zoo.data import open_dataset

VARIANTS = {
    "face": {"streams": "face"},
    "ca": {"streams": "both", "attention": "ca"},
    "gla": {"streams": "both", "attention": "gla"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--n-cues", type=int, default=2)
    parser.add_argument("--variants", default="face,ca,gla")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = DataConfig(face_size=(32, 32), context_size=(48, 48), context_resize=(48, 48))

    def tensors(split: str, n: int):
        ds = open_dataset("synth_caer", split, n=n, n_cues=args.n_cues, seed=args.seed, data_config=data, train=False)
        items = [ds[i] for i in range(len(ds))]
        return torch.stack([x["face"] for x in items]), torch.stack([x["context"] for x in items]), ds.labels

    train, test = tensors("train", args.n), tensors("test", 512)
    for name in args.variants.split(","):
        torch.manual_seed(args.seed)
        model = zoo.create(backbone="caer_cnn", backbone_args={"channels": (16, 32, 64, 64, 64)}, num_classes=7,
                           head_hidden=64, head_dropout=0.0, data=data, **VARIANTS[name])
        optimiser = torch.optim.Adam(model.parameters(), 2e-3)
        start = time.perf_counter()
        for epoch in range(args.epochs):
            model.train()
            order = torch.randperm(len(train[2]))
            for i in range(0, len(order), 32):
                idx = order[i : i + 32]
                loss = torch.nn.functional.cross_entropy(model(face=train[0][idx], context=train[1][idx]).logits, train[2][idx])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            model.eval()
            with torch.no_grad():
                accuracy = (model(face=test[0], context=test[1]).logits.argmax(1) == test[2]).float().mean().item()
            print(f"{name:4s} epoch {epoch + 1:2d}  test accuracy {accuracy:.3f}  ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
