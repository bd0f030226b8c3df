"""Where and how tensors run: the device (``"auto"``), the autocast dtype, CPU threads, and every
torch.distributed helper.

DDP runs are started by ``torchrun`` (no home-made launcher): ``torchrun --nproc-per-node N -m zoo train ...``
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables; :func:`setup` reads them,
initialises the process group (NCCL on CUDA, gloo on CPU) and picks the device. A single process needs none
of this and runs with ``world_size == 1``.

One style for the collective helpers: each takes the :class:`DistInfo` of the run, or ``None`` to read the
initialised process group (:func:`current`), and is a no-op in a single process. Label-target builders, which
do not hold the engine's ``DistInfo``, call them with ``None``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from zoo.errors import ZooError


class DeviceError(ZooError, ValueError):
    """A device setting that is not a device, or names one this machine does not have."""


# ---------------------------------------------------------------------------------------------- device


def resolve_device(device: Any) -> torch.device:
    """``"auto"`` (CUDA when available, else CPU) or a device torch knows and this machine has."""
    if not isinstance(device, str) or not device:
        raise DeviceError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}.")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise DeviceError(f"device {device!r} is not a device; use 'auto', 'cpu', 'cuda' or 'cuda:N'.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r}: no CUDA device is available here; use 'cpu' or 'auto'.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    return dev


# ---------------------------------------------------------------------------------------------- precision

#: mixed-precision modes of training and evaluation (fp16 needs CUDA)
AMP_MODES = ("none", "bf16", "fp16")


def amp_dtype(amp: str) -> torch.dtype:
    """The autocast dtype of an AMP mode (float32 for ``"none"``)."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp, torch.float32)


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device``'s type in ``amp``'s dtype; disabled for ``amp="none"``."""
    return torch.autocast(device.type, dtype=amp_dtype(amp), enabled=amp != "none")


# ---------------------------------------------------------------------------------------------- threads


def cpu_threads(setting: int | str | None) -> int:
    """Torch CPU threads for ``setting``: an int, ``"auto"`` (cores left idle by the 1-min load average) or
    ``None`` (torch's current number)."""
    if setting is None:
        return torch.get_num_threads()
    if setting == "auto":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        # the load average counts this process too when it is running, hence the +1 allowance
        return max(1, min(cores, round(cores - busy + 1)))
    try:
        threads = int(setting)
    except (TypeError, ValueError):
        threads = 0
    if threads < 1 or str(threads) != str(setting).strip():
        raise ValueError(f"threads must be a positive integer or 'auto', got {setting!r}.")
    return threads


# ---------------------------------------------------------------------------------------------- distributed


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto") -> DistInfo:
    """Join the process group described by the torchrun environment (if any) and choose the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank if world_size > 1 else torch.cuda.current_device())
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    owns = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        owns = True
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank, world_size, local_rank, dev, owns)


def teardown(info: DistInfo) -> None:
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def rank_and_world(info: DistInfo | None = None) -> tuple[int, int]:
    """``(rank, world size)`` of ``info``, or of the initialised process group (``(0, 1)`` without one)."""
    if info is not None:
        return info.rank, info.world_size
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def average_(tensor: torch.Tensor, info: DistInfo | None = None) -> torch.Tensor:
    """All-reduce ``tensor`` in place to the mean over ranks."""
    _, world = rank_and_world(info)
    if world > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= world
    return tensor


def all_reduce_mean(value: torch.Tensor, info: DistInfo | None = None) -> torch.Tensor:
    """The mean of ``value`` over ranks, as a new tensor (``value`` itself in a single process)."""
    if rank_and_world(info)[1] == 1:
        return value
    return average_(value.clone(), info)


def all_reduce_sum(value: torch.Tensor, info: DistInfo | None = None) -> torch.Tensor:
    """The sum of ``value`` over ranks, as a new tensor (``value`` itself in a single process)."""
    if rank_and_world(info)[1] == 1:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def average_gradients(params: list[torch.nn.Parameter], info: DistInfo | None = None) -> None:
    """Average ``.grad`` over ranks for parameters DDP does not own (a target builder's shared parameters)."""
    if rank_and_world(info)[1] == 1:
        return
    for p in params:
        if p.grad is not None:
            average_(p.grad, info)


def gather_objects(obj: Any, info: DistInfo | None = None) -> list[Any]:
    """Every rank's ``obj`` in rank order (pickled by torch.distributed; results only, never weights)."""
    world = rank_and_world(info)[1]
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out


def gather_rows(*rows: torch.Tensor, info: DistInfo | None = None) -> list[torch.Tensor]:
    """All-gather every rank's rows (same first dimension within a rank; ranks may hold different counts).

    Returns each tensor concatenated over ranks in rank order (a later rank wins a duplicate index when the
    caller writes rows back in order). Without a process group the inputs come back unchanged.
    """
    _, world = rank_and_world(info)
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


def barrier(info: DistInfo | None = None) -> None:
    if rank_and_world(info)[1] > 1:
        dist.barrier()


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


def show_progress(enabled: bool | None) -> bool:
    """Whether to draw a progress bar: ``enabled`` as given; None: when stderr is a terminal."""
    if enabled is not None:
        return enabled
    import sys

    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress_bar(enabled: bool | None, total: int | None = None, unit: str = "it", desc: str | None = None) -> Any:
    """A ``tqdm`` bar on stderr (never stdout, so ``--json`` output and pipes stay clean), a context manager
    with ``update(n)``; disabled unless :func:`show_progress` (predict over several inputs and video frames,
    eval)."""
    import sys

    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=not show_progress(enabled),
                leave=False, dynamic_ncols=True)
