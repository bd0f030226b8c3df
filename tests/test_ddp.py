"""DDP: a 2-process gloo run on CPU (torch.multiprocessing, the environment torchrun sets) matches a
1-process run on the same global batch.

The comparison is meaningful only for a model whose per-sample function does not depend on the batch:
the test model has no BatchNorm (``tiny_nobn`` backbone, ``attention=none``; a BN layer would normalise
with per-rank statistics of 4 samples instead of 8) and no dropout (per-rank RNG streams), and the data
has no random augmentation. Tolerance: |Δ| ≤ 1e-5 + 1e-4·|w| on every weight, target state included,
after 6 SGD steps (the difference is float summation order in the gradient all-reduce).
"""

from __future__ import annotations

import json

import pytest
import tiny_training as T
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from zoo.training import checkpoint as ckpt
from zoo.training.engine import train


def _overrides(target: str, target_args: dict) -> dict:
    return T.tiny_overrides(**{
        "backbone": "tiny_nobn", "model_args.backbone_args": {"width": 4}, "attention": "none",
        "head_dropout": 0.0, "target": target, "model_args.target_args": target_args,
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9}, "schedule.name": "constant",
        "epochs": 2, "max_steps_per_epoch": 3, "data.options": {"noise": 0.0}, "checkpoint_every": None,
    })


def _run_both(tmp_path, target: str, target_args: dict):
    kwargs = {"model_or_recipe": "caer_net_s", "data": "tiny:caer", "overrides": _overrides(target, target_args)}
    T.register()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(out=tmp_path / "single", **kwargs)
        # the rendezvous store is hosted here, as torchrun's agent hosts it: bound to a port the OS picks and
        # held until both ranks are done (a port probed free, closed and handed on could be taken meanwhile)
        store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
        mp.spawn(T.ddp_worker, args=(2, store.port, {**kwargs, "out": str(tmp_path / "ddp")}), nprocs=2, join=True)
        del store
    finally:
        torch.set_num_threads(threads)
        T.unregister()
    single, single_meta = ckpt.load_checkpoint(tmp_path / "single/checkpoints/last")
    ddp, ddp_meta = ckpt.load_checkpoint(tmp_path / "ddp/checkpoints/last")
    return single, single_meta, ddp, ddp_meta


def _assert_close(single, ddp):
    keys = [k for k in single if k.startswith(("model.", "target."))]
    assert keys and set(keys) == {k for k in ddp if k.startswith(("model.", "target."))}
    for key in keys:
        torch.testing.assert_close(ddp[key], single[key], atol=1e-5, rtol=1e-4, msg=key)


def test_two_process_gloo_matches_one_process_with_stateful_target(tmp_path):
    single, single_meta, ddp, ddp_meta = _run_both(tmp_path, "tiny_stateful", {"lamb_lr": 1.0})
    assert single_meta["global_step"] == ddp_meta["global_step"] == 6
    _assert_close(single, ddp)
    # the per-sample state and the centres moved, so the comparison covers them
    assert not torch.allclose(single["target.lamb"], torch.full_like(single["target.lamb"], 0.5))
    assert single["target.centres"].abs().sum() > 0
    log = [json.loads(x) for x in (tmp_path / "ddp/metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(x) for x in (tmp_path / "single/metrics.jsonl").read_text().splitlines()]
    assert len(log) == len(ref) == 2  # rank 0 alone writes the log
    for a, b in zip(log, ref, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val"]["num_samples"] == b["val"]["num_samples"] == T.SIZES["val"]  # no sample counted twice
        assert a["val"]["confusion"] == b["val"]["confusion"]


def test_two_process_gloo_matches_one_process_with_ldl_va(tmp_path):
    single, _, ddp, _ = _run_both(tmp_path, "ldl_va", {})
    _assert_close(single, ddp)
