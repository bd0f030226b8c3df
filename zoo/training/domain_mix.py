"""Joint training on several datasets (domains): every batch holds each domain in a fixed share.

A plain concatenation lets the largest dataset drown the others (28,709 FER2013 crops against 3,398 ExpW faces:
89% of every epoch), and repeating the small one until the shares match makes a model memorise it. Here each
batch of ``batch_size`` samples takes ``round(weight_d × batch_size)`` from domain ``d``; within a domain the
samples are drawn without replacement, one fresh permutation after another, so a domain's samples are all seen
once before any is seen twice. Batches are a pure function of ``(seed, step)``, so a resumed run continues
the exact sequence (state that must survive a restart is only the step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["DomainMix", "domain_counts"]


def domain_counts(weights: Sequence[float], batch_size: int) -> list[int]:
    """Samples per batch for each domain: ``weights`` (any positive scale) shared out of ``batch_size`` by
    largest remainders, every domain at least one."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or len(w) == 0 or not np.isfinite(w).all() or (w <= 0).any():
        raise ValueError(f"domain weights must be positive finite numbers, got {list(weights)!r}.")
    if batch_size < len(w):
        raise ValueError(f"batch_size {batch_size} is smaller than the number of domains ({len(w)}).")
    share = w / w.sum() * batch_size
    counts = np.maximum(np.floor(share).astype(int), 1)
    while counts.sum() < batch_size:
        counts[int(np.argmax(share - counts))] += 1
    while counts.sum() > batch_size:
        counts[int(np.argmax(counts - share))] -= 1
    return counts.tolist()


class DomainMix:
    """Index batches over several domains in fixed shares.

    ``sizes`` maps a domain's name to its number of samples, ``weights`` to its share of each batch. Indices are
    global: domain ``d``'s samples are ``offset[d] + 0 .. size[d]-1``, in the order of ``sizes``, as in a
    concatenation of the datasets. ``batch(step)`` is the step's indices (a pure function of seed and step).
    """

    def __init__(self, sizes: Mapping[str, int], weights: Mapping[str, float], batch_size: int, seed: int = 0) -> None:
        if set(sizes) != set(weights):
            raise ValueError(f"domain weights name {sorted(weights)}, the datasets are {sorted(sizes)}; give one "
                             f"weight per dataset.")
        self.names = list(sizes)
        self.sizes = [int(sizes[n]) for n in self.names]
        if any(s < 1 for s in self.sizes):
            raise ValueError(f"every domain needs at least one sample, got sizes {dict(sizes)}.")
        self.counts = domain_counts([weights[n] for n in self.names], batch_size)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self._perms: dict[tuple[int, int], np.ndarray] = {}

    def _permutation(self, domain: int, cycle: int) -> np.ndarray:
        key = (domain, cycle)
        if key not in self._perms:
            if len(self._perms) > 4 * len(self.sizes):
                self._perms.clear()
            rng = np.random.default_rng([self.seed, domain, cycle])
            self._perms[key] = rng.permutation(self.sizes[domain])
        return self._perms[key]

    def batch(self, step: int) -> np.ndarray:
        """The global indices of batch ``step`` (0-based): each domain's share, drawn without replacement."""
        out = []
        for d, count in enumerate(self.counts):
            start = step * count
            positions = np.arange(start, start + count)
            cycles, within = positions // self.sizes[d], positions % self.sizes[d]
            picked = np.empty(count, dtype=np.int64)
            for cycle in np.unique(cycles):
                mask = cycles == cycle
                picked[mask] = self._permutation(d, int(cycle))[within[mask]]
            out.append(picked + self.offsets[d])
        return np.concatenate(out)

    def epochs_seen(self, steps: int) -> dict[str, float]:
        """How many times each domain has been seen, on average per sample, after ``steps`` batches."""
        return {n: steps * c / s for n, c, s in zip(self.names, self.counts, self.sizes, strict=True)}
