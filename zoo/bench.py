"""Benchmarks, measured as ratios in one run: plain path (eager, fp32, NCHW) against the fast path.

``zoo-cli bench [MODEL...]`` / ``python benchmarks/run.py`` print a table and write JSON. Each model runs in
its own subprocess so its peak memory (max RSS on CPU, max allocated on CUDA) is its own.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

DEFAULT_MODELS = ("caer_net_s", "glamor_net", "glamor_resnet18", "fer_resnet18")


def _timeit(fn: Callable[[], Any], min_time: float, warmup: int, sync: Callable[[], None]) -> float:
    """Seconds per call: ``warmup`` calls, then repeat until ``min_time`` has passed (at least 3 calls)."""
    for _ in range(warmup):
        fn()
    sync()
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < min_time:
        fn()
        calls += 1
    sync()
    return (time.perf_counter() - start) / calls


def _inputs(config, batch: int, device: torch.device, channels_last: bool = False) -> dict[str, torch.Tensor]:
    from zoo.info import example_inputs

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return {k: v.to(device).contiguous(memory_format=fmt) for k, v in example_inputs(config, batch).items()}


def bench_model(
    name: str,
    device: str = "cpu",
    train_batch: int = 32,
    min_time: float = 2.0,
    compile: bool = False,
) -> dict[str, Any]:
    """Training and inference throughput, plain against fast, of one model (in this process)."""
    import zoo
    from zoo.fast import optimize_for_inference
    from zoo.info import count_flops, count_parameters

    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    model = zoo.create(name)
    flops = count_flops(model)
    model = model.to(dev)
    config = model.config
    labels = torch.randint(0, config.num_classes, (train_batch,), device=dev)
    result: dict[str, Any] = {
        "model": name,
        "device": _device_name(dev),
        "parameters": count_parameters(model),
        "gflops_per_image": flops / 1e9,
    }

    def train_step_fn(m, opt, inputs, autocast: bool):
        def step():
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
                loss = torch.nn.functional.cross_entropy(m(**inputs).logits.float(), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    # training: plain = eager fp32 NCHW; fast = channels_last (+ bf16 autocast on CUDA, + compile if asked)
    plain_model = model.train()
    opt = torch.optim.SGD(plain_model.parameters(), lr=1e-4, momentum=0.9)
    t_plain = _timeit(train_step_fn(plain_model, opt, _inputs(config, train_batch, dev), False), min_time, 2, sync)
    fast_model = zoo.create(name).to(dev).to(memory_format=torch.channels_last).train()
    runner = torch.compile(fast_model) if compile else fast_model
    opt = torch.optim.SGD(fast_model.parameters(), lr=1e-4, momentum=0.9)
    fast_inputs = _inputs(config, train_batch, dev, channels_last=True)
    t_fast = _timeit(train_step_fn(runner, opt, fast_inputs, dev.type == "cuda"), min_time, 3 if compile else 2, sync)
    result["train"] = {
        "batch": train_batch,
        "plain_img_s": train_batch / t_plain,
        "fast_img_s": train_batch / t_fast,
        "speedup": t_plain / t_fast,
        "plain_gflop_s": 3 * flops * train_batch / t_plain / 1e9,  # forward + backward ≈ 3× forward
    }

    # inference: plain = eager fp32 NCHW eval; fast = BN folded + channels_last (+ compile)
    plain_eval = model.eval()
    fast_eval = optimize_for_inference(model, compile=compile)
    for batch in (1, 32):
        x = _inputs(config, batch, dev)
        with torch.inference_mode():
            tp = _timeit(lambda: plain_eval(**x), min_time, 2, sync)  # noqa: B023
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                tf = _timeit(lambda: fast_eval(**x), min_time, 3 if compile else 2, sync)  # noqa: B023
        result[f"infer_b{batch}"] = {
            "plain_img_s": batch / tp,
            "fast_img_s": batch / tf,
            "speedup": tp / tf,
            "plain_gflop_s": flops * batch / tp / 1e9,
            "fast_gflop_s": flops * batch / tf / 1e9,
        }

    # the share of attention + fusion + classifier in the plain forward (batch 32, eval)
    if config.streams == "both":
        x = _inputs(config, 32, dev)
        with torch.inference_mode():
            t_enc = _timeit(lambda: (model.face_encoder(x["face"]), model.context_encoder(x["context"])),
                            min_time, 2, sync)
            t_all = _timeit(lambda: model(**x), min_time, 2, sync)
        result["heads_overhead"] = t_all / t_enc - 1.0

    if dev.type == "cuda":
        result["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        import resource

        result["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def run_isolated(name: str, **kwargs: Any) -> dict[str, Any]:
    """``bench_model`` in a fresh subprocess (own peak memory, no cross-model warm caches)."""
    code = (
        "import json, sys; from zoo.bench import bench_model; "
        f"print('@@' + json.dumps(bench_model({name!r}, **{kwargs!r})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"benchmark of {name} failed:\n{proc.stderr[-2000:]}")
    return json.loads(line[2:])


def format_table(results: Sequence[dict[str, Any]]) -> str:
    header = ("model", "GFLOPs", "train img/s plain→fast (×)", "infer b1 img/s (×)", "infer b32 img/s (×)",
              "b32 GFLOP/s plain→fast", "heads", "peak MB")
    rows = []
    for r in results:
        tr, b1, b32 = r["train"], r["infer_b1"], r["infer_b32"]
        rows.append((
            r["model"], f"{r['gflops_per_image']:.3f}",
            f"{tr['plain_img_s']:.1f}→{tr['fast_img_s']:.1f} ({tr['speedup']:.2f}×)",
            f"{b1['plain_img_s']:.1f}→{b1['fast_img_s']:.1f} ({b1['speedup']:.2f}×)",
            f"{b32['plain_img_s']:.1f}→{b32['fast_img_s']:.1f} ({b32['speedup']:.2f}×)",
            f"{b32['plain_gflop_s']:.1f}→{b32['fast_gflop_s']:.1f}",
            f"{100 * r['heads_overhead']:+.1f}%" if "heads_overhead" in r else "-",
            f"{r['peak_memory_mb']:.0f}",
        ))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
