"""torch.distributed helpers for per-sample state: no-ops unless a process group is initialised."""

from __future__ import annotations

import torch
import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def average_(tensor: torch.Tensor) -> torch.Tensor:
    """All-reduce ``tensor`` in place to the mean over ranks."""
    _, world = rank_and_world()
    if world > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= world
    return tensor


def gather_rows(index: torch.Tensor, *rows: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """All-gather every rank's ``(index, rows...)``; ranks may hold different numbers of rows.

    Returns the concatenated indices and rows of all ranks, in rank order (a later rank wins a duplicate index
    when the caller writes them back in order).
    """
    _, world = rank_and_world()
    if world == 1:
        return index, list(rows)
    device = index.device
    count = torch.tensor([index.numel()], device=device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    sizes = [int(c.item()) for c in counts]
    longest = max(sizes)

    def gather(t: torch.Tensor) -> torch.Tensor:
        padded = t.new_zeros((longest, *t.shape[1:]))
        padded[: t.shape[0]] = t
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])

    return gather(index), [gather(r) for r in rows]
