"""Per preset: training and inference images/s at batch 1 and 32, FLOPs, GFLOP/s and peak memory, for the
plain path (eager, fp32, NCHW) and the fast paths, interleaved in one run.

* training — plain: eager fp32 NCHW; ``fast``: channels_last fp32 (the engine's ``channels_last=true``);
  ``fast_bf16``: channels_last + bf16 autocast (``amp=bf16``; fp16 on CUDA is not measured).
* inference — plain: eager fp32 NCHW eval; ``fast``: :func:`zoo.inference.fast.optimize_for_inference` (BatchNorm
  folded, channels_last); ``fast_bf16``: the same under bf16 autocast; with ``compile=True`` also
  ``fast_compiled``: the same, ``torch.compile``-d with inductor's freezing (compile time not counted).
  Training under torch.compile is not measured: 0.6× and 45–85 s of compilation in a first measurement.

GFLOP/s use the plain model's FLOPs as the work of every path (training = 3× the forward).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import torch

from zoo.apps.bench.timing import interleaved
from zoo.inference.fast import optimize_for_inference
from zoo.models.info import count_flops, count_parameters, example_inputs

DEFAULT_MODELS = ("caer_net_s", "glamor_net", "glamor_resnet18", "fer_resnet18")
#: quick mode: every preset shrunk to tiny inputs (and tiny CNN channels where the backbone is caer_cnn)
QUICK_DATA = {"face_size": (32, 32), "context_size": (48, 48), "context_resize": (56, 64)}
QUICK_CNN = {"channels": [8, 8, 16, 16, 16]}


def _inputs(config, batch: int, device: torch.device, channels_last: bool = False) -> dict[str, torch.Tensor]:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(batch)
    return {k: v.to(device).contiguous(memory_format=fmt) for k, v in example_inputs(config, batch).items()}


def _create(name: str, quick: bool):
    import zoo

    if not quick:
        return zoo.create(name)
    config = zoo.create(name).config
    args: dict[str, Any] = {"data": QUICK_DATA}
    if config.backbone == "caer_cnn":
        args["backbone_args"] = {**config.backbone_args, **QUICK_CNN}
    return zoo.create(name, **args)


def _train_step(model, inputs, labels, device: torch.device, bf16: bool):
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(**inputs).logits
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def bench_model(
    name: str,
    device: str = "cpu",
    batches: tuple[int, ...] = (1, 32),
    reps: int = 5,
    warmup: int = 2,
    threads: int | None = None,
    quick: bool = False,
    compile: bool = False,
) -> dict[str, Any]:
    """Training and inference throughput, plain against fast, of one model (in this process)."""

    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    model = _create(name, quick)
    flops = count_flops(model)
    config = model.config
    result: dict[str, Any] = {
        "model": name, "threads": torch.get_num_threads(), "parameters": count_parameters(model),
        "gflops_per_image": flops / 1e9, "train": {}, "infer": {},
    }

    for batch in batches:
        labels = torch.randint(0, config.num_classes, (batch,), device=dev)
        steps = {}
        for path, cl, bf16 in (("plain", False, False), ("fast", True, False), ("fast_bf16", True, True)):
            torch.manual_seed(0)
            m = _create(name, quick).to(dev, memory_format=torch.channels_last if cl else torch.contiguous_format)
            steps[path] = _train_step(m.train(), _inputs(config, batch, dev, cl), labels, dev, bf16)
        try:
            timed = interleaved(steps, reps, warmup, sync)
        except (ValueError, RuntimeError) as exc:  # e.g. BatchNorm1d cannot train on a batch of 1
            result["train"][f"b{batch}"] = {"error": str(exc).splitlines()[0]}
            continue
        result["train"][f"b{batch}"] = _summarise(timed, batch, 3 * flops)

    plain_eval = model.to(dev).eval()
    fast_eval = optimize_for_inference(plain_eval)
    compiled_eval = optimize_for_inference(plain_eval, compile=True) if compile else None
    for batch in batches:
        x = _inputs(config, batch, dev)

        def run(m, bf16, x=x):
            def call():
                with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                    m(**x)
            return call

        paths = {"plain": run(plain_eval, False), "fast": run(fast_eval, False), "fast_bf16": run(fast_eval, True)}
        if compiled_eval is not None:
            paths["fast_compiled"] = run(compiled_eval, False)
        timed = interleaved(paths, reps, warmup, sync)
        result["infer"][f"b{batch}"] = _summarise(timed, batch, flops)

    if config.streams == "both":
        result["heads"] = heads_overhead(plain_eval, max(batches), dev, reps, warmup, sync)

    if dev.type == "cuda":
        result["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        import resource

        result["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _summarise(timed: dict[str, dict[str, Any]], batch: int, flops_per_image: float) -> dict[str, Any]:
    out: dict[str, Any] = {"batch": batch}
    for path, t in timed.items():
        # gflop_s_cpu: the work over this process's CPU time — with one thread, the rate while it held a core
        out[path] = {"img_s": batch / t["wall_s"], "gflop_s": flops_per_image * batch / t["wall_s"] / 1e9,
                     "gflop_s_cpu": flops_per_image * batch / max(t["cpu_s"], 1e-9) / 1e9,
                     "wall_s": t["wall_s"], "cpu_s": t["cpu_s"], "speedup": t["ratio"]}
    return out


def heads_overhead(model, batch: int, dev: torch.device, reps: int, warmup: int, sync) -> dict[str, Any]:
    """Cost of attention + fusion + classifier relative to the two encoders (eval forward, plain path).

    Timed (interleaved: encoders alone, whole model) and counted (FLOPs of the whole model over the encoders').
    """
    from torch.utils.flop_counter import FlopCounterMode

    x = _inputs(model.config, batch, dev)

    def encoders():
        with torch.inference_mode():
            model.face_encoder(x["face"])
            model.context_encoder(x["context"])

    def whole():
        with torch.inference_mode():
            model(**x)

    flops = {}
    for key, fn in (("encoders", encoders), ("whole", whole)):
        counter = FlopCounterMode(display=False)
        with counter:
            fn()
        flops[key] = counter.get_total_flops()
    timed = interleaved({"encoders": encoders, "whole": whole}, reps, warmup, sync)
    return {"time_overhead": 1.0 / timed["whole"]["ratio"] - 1.0,
            "flop_overhead": flops["whole"] / flops["encoders"] - 1.0}


def run_isolated(name: str, **kwargs: Any) -> dict[str, Any]:
    """``bench_model`` in a fresh subprocess (its own peak memory, no other model's warm caches)."""
    code = (
        "import json, sys; from zoo.apps.bench.models import bench_model; "
        f"print('@@' + json.dumps(bench_model({name!r}, **{kwargs!r})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"benchmark of {name} failed:\n{proc.stderr[-2000:]}")
    return json.loads(line[2:])
