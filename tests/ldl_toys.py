"""Tiny in-test datasets and models for the LDL-VA tests (the dataset contract of zoo/data/__init__.py)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

LABELS3 = ("Happy", "Sad", "Anger")


class ToyFaces(Dataset):
    def __init__(self, n: int = 24, num_classes: int = 3, size: int = 16, seed: int = 0, with_va: bool = True) -> None:
        g = torch.Generator().manual_seed(seed)
        self.faces = torch.randn(n, 3, size, size, generator=g)
        self.labels = torch.arange(n) % num_classes
        if with_va:
            self.va = torch.rand(n, 2, generator=g) * 2 - 1
        self.num_classes = num_classes
        self.label_names = LABELS3[:num_classes]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"face": self.faces[i], "label": int(self.labels[i]), "index": i}


def tiny_model(num_classes: int = 3, face_size: int = 16, seed: int = 0):
    import zoo

    torch.manual_seed(seed)
    return zoo.create(
        streams="face",
        backbone="caer_cnn",
        backbone_args={"channels": (4, 8)},
        head_hidden=None,
        head_dropout=0.0,
        num_classes=num_classes,
        label_names=LABELS3[:num_classes],
        target="ldl_va",
        data={"face_size": (face_size, face_size)},
    )


def collate(dataset, indices):
    return torch.utils.data.default_collate([dataset[i] for i in indices])
