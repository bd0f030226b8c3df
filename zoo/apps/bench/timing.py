"""Interleaved timing and machine facts, so that plain/fast ratios survive a CPU shared with other jobs.

Every measurement runs its variants round by round (plain, fast, plain, fast, ...): load from other
processes hits all variants of a round alike, and the reported ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


def interleaved(
    variants: dict[str, Callable[[], Any]], reps: int, warmup: int = 1, sync: Callable[[], None] | None = None
) -> dict[str, dict[str, Any]]:
    """Time each variant ``reps`` times, one call of each per round, after ``warmup`` untimed rounds.

    Returns per variant ``{"wall_s": median, "cpu_s": median, "walls": [...], "ratio": median over rounds
    of (first variant's wall / this variant's wall)}`` — the first variant is the baseline.
    """
    sync = sync or (lambda: None)
    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(warmup + reps):
        for name, fn in variants.items():
            sync()
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            sync()
            if round_ >= warmup:
                walls[name].append(time.perf_counter() - w0)
                cpus[name].append(time.process_time() - c0)
    base = next(iter(variants))
    out = {}
    for name in variants:
        ratios = [b / t for b, t in zip(walls[base], walls[name], strict=True)]
        out[name] = {"wall_s": statistics.median(walls[name]), "cpu_s": statistics.median(cpus[name]),
                     "walls": [round(t, 6) for t in walls[name]], "ratio": statistics.median(ratios)}
    return out


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gemm_gflops(dtype: torch.dtype = torch.float32, n: int = 1024, reps: int = 5,
                device: str = "cpu", clock: Callable[[], float] = time.perf_counter) -> float:
    """Best GFLOP/s of an n×n matrix product over ``reps``: the practical peak the model figures are compared
    with (``clock=time.process_time``: per CPU second, i.e. per core when one thread runs)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    a @ b
    sync()
    best = float("inf")
    for _ in range(reps):
        start = clock()
        a @ b
        sync()
        best = min(best, clock() - start)
    return 2 * n**3 / max(best, 1e-9) / 1e9


def conv_gflops(dtype: torch.dtype = torch.float32, channels: int = 256, size: int = 28, batch: int = 8,
                reps: int = 3, device: str = "cpu", clock: Callable[[], float] = time.perf_counter) -> float:
    """Best GFLOP/s of a channels_last 3×3 convolution (oneDNN on CPU): the practical compute peak of the
    convolutions these models are made of. (On AMD CPUs MKL's fp32 GEMM, used by ``nn.Linear``, runs a
    slower code path than oneDNN's convolutions, so the GEMM figure alone would understate the peak.)"""
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(device, dtype)
    conv = conv.to(memory_format=torch.channels_last)
    x = torch.randn(batch, channels, size, size, device=device, dtype=dtype).contiguous(
        memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    best = float("inf")
    with torch.no_grad():
        conv(x)
        sync()
        for _ in range(reps):
            start = clock()
            conv(x)
            sync()
            best = min(best, clock() - start)
    return 2 * batch * channels * channels * 9 * size * size / max(best, 1e-9) / 1e9


def machine_info(device: str = "cpu", gemm_size: int = 1024) -> dict[str, Any]:
    """CPU model, cores, torch version, threads, load average and the measured GEMM peak (fp32, bf16)."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
        "load_average": load_average(),
        "gemm_gflops_fp32": round(gemm_gflops(torch.float32, gemm_size, device=device), 1),
        "gemm_gflops_bf16": round(gemm_gflops(torch.bfloat16, gemm_size, device=device), 1),
    }
    small = gemm_size < 1024
    conv_args = {"channels": 64 if small else 256, "size": 14 if small else 28, "device": device}
    info["conv3x3_gflops_fp32"] = round(conv_gflops(torch.float32, **conv_args), 1)
    info["conv3x3_gflops_bf16"] = round(conv_gflops(torch.bfloat16, **conv_args), 1)
    if not device.startswith("cuda"):
        info["conv3x3_gflops_fp32_cpu"] = round(conv_gflops(torch.float32, clock=time.process_time, **conv_args), 1)
        info["conv3x3_gflops_bf16_cpu"] = round(conv_gflops(torch.bfloat16, clock=time.process_time, **conv_args), 1)
        info["gemm_gflops_fp32_cpu"] = round(gemm_gflops(torch.float32, gemm_size, clock=time.process_time), 1)
        info["gemm_gflops_bf16_cpu"] = round(gemm_gflops(torch.bfloat16, gemm_size, clock=time.process_time), 1)
    return info
