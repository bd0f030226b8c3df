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


def gather_rows(*rows: torch.Tensor) -> list[torch.Tensor]:
    """All-gather every rank's rows (same first dimension within a rank; ranks may hold different counts).

    Returns each tensor concatenated over ranks in rank order (a later rank wins a duplicate index when the
    caller writes rows back in order). Without a process group the inputs come back unchanged.
    """
    _, world = rank_and_world()
    if world == 1:
        return list(rows)
    count = torch.tensor([rows[0].shape[0]], device=rows[0].device)
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

    return [gather(r) for r in rows]


class GlobalBatchNorm1d(torch.nn.BatchNorm1d):
    """BatchNorm1d whose training statistics span the batches of all ranks (differentiably all-reduced).

    Without a process group, or in eval mode, it is exactly ``nn.BatchNorm1d``. With one, a DDP step equals
    a single-process step on the global batch (``nn.SyncBatchNorm`` does the same but only on GPUs).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, world = rank_and_world()
        if not self.training or world == 1:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        local = torch.cat([x.sum(0), (x * x).sum(0), x.new_tensor([x.shape[0]])])
        total = all_reduce(local)
        n = total[-1]
        mean = total[:c] / n
        var = (total[c : 2 * c] / n - mean * mean).clamp_min(0.0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1).clamp_min(1.0))
        out = (x - mean) / torch.sqrt(var + self.eps)
        return out * self.weight + self.bias if self.affine else out
