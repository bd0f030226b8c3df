"""Training engine: every preset family learns, resume equals an uninterrupted run, eval reproduces the
run's validation metrics, and bad inputs fail with clear errors."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import tiny_training as T
import torch

import zoo
import zoo.cli
from zoo.data import DatasetSpecError
from zoo.errors import ZooError
from zoo.registry.plugins import get_component
from zoo.training import checkpoint as ckpt
from zoo.training.engine import NonFiniteLossError, evaluate, train
from zoo.training.recipes import RecipeError


@pytest.fixture(autouse=True)
def tiny_plugin():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: more threads only add contention
    T.register()
    yield
    T.unregister()
    torch.set_num_threads(threads)


FAMILIES = {
    "caer_net_s": ("tiny:caer", {"model_args.backbone_args": T.TINY_CNN}),
    "glamor_net": ("tiny:caer", {"model_args.backbone_args": T.TINY_CNN}),
    "fer_resnet18": ("tiny:fer2013", {"backbone": "caer_cnn", "model_args.backbone_args": T.TINY_CNN}),
    # LDLVA's model with an LDL-VA-shaped target (per-sample λ, own optimiser, class centres)
    "ldlva_resnet18": ("tiny:affectnet7", {"backbone": "caer_cnn", "model_args.backbone_args": T.TINY_CNN,
                                           "target": "tiny_stateful", "model_args.target_args": {},
                                           "optimizer.lr": 1e-2}),
}
FAST = {"optimizer": {"name": "adam", "lr": 3e-3}, "schedule.name": "constant"}


@pytest.mark.parametrize("preset", list(FAMILIES))
def test_each_preset_family_learns(preset, tmp_path):
    data, extra = FAMILIES[preset]
    result = train(preset, data=data, out=tmp_path / "run", overrides=T.tiny_overrides(**{**FAST, **extra}))
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 3
    assert losses[-1] < 0.8 * losses[0], losses
    out = tmp_path / "run"
    for name in ("run_config.json", "metrics.jsonl", "eval.json", "best/config.json", "best/model.safetensors",
                 "checkpoints/last/state.safetensors", "checkpoints/last/state.json"):
        assert (out / name).exists(), name
    config = json.loads((out / "run_config.json").read_text())
    assert config["model"] == preset and config["epochs"] == 3 and config["optimizer"]["name"] == "adam"
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3


def test_stateful_target_lifecycle_and_state_checkpointed(tmp_path):
    data, extra = FAMILIES["ldlva_resnet18"]
    result = train("ldlva_resnet18", data=data, out=tmp_path / "run",
                   overrides=T.tiny_overrides(**FAST, **extra, epochs=1))
    assert result.history[0]["train_disc"] > 0  # the builder's loss terms are logged
    tensors, meta = ckpt.load_checkpoint(tmp_path / "run/checkpoints/last")
    lamb = tensors["target.lamb"]
    assert lamb.shape == (T.SIZES["train"],) and not torch.allclose(lamb, torch.full_like(lamb, 0.5))
    assert tensors["target.centres"].abs().sum() > 0  # after_step ran
    assert len(meta["optimizers"]) == 2 and any(k.startswith("optim.1.") for k in tensors)  # λ's SGD state


def _weights(run_dir):
    tensors, meta = ckpt.load_checkpoint(run_dir / "checkpoints/last")
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "target.", "optim."))}, meta


def test_kill_and_resume_equals_uninterrupted_run(tmp_path, monkeypatch):
    from zoo.training import engine

    # dropout (head), data noise (train=True) and Adam state all have to be restored exactly
    overrides = T.tiny_overrides(**FAST, epochs=2, deterministic=True, checkpoint_every=3,
                                 **{"model_args.backbone_args": T.TINY_CNN})
    train("caer_net_s", data="tiny:caer", out=tmp_path / "full", overrides=overrides)

    original = engine._Run._train_step

    def crash_at_step_10(self, batch, epoch):
        if self.global_step == 10:
            raise KeyboardInterrupt("simulated kill")
        return original(self, batch, epoch)

    monkeypatch.setattr(engine._Run, "_train_step", crash_at_step_10)
    with pytest.raises(KeyboardInterrupt):
        train("caer_net_s", data="tiny:caer", out=tmp_path / "killed", overrides=overrides)
    _, meta = _weights(tmp_path / "killed")
    assert (meta["epoch"], meta["step_in_epoch"], meta["global_step"]) == (1, 2, 9)  # mid-epoch checkpoint
    monkeypatch.setattr(engine._Run, "_train_step", original)
    with pytest.raises(Exception, match="--resume"):
        train("caer_net_s", data="tiny:caer", out=tmp_path / "killed", overrides=overrides)
    train("caer_net_s", data="tiny:caer", out=tmp_path / "killed", overrides=overrides, resume=True)

    full, full_meta = _weights(tmp_path / "full")
    resumed, resumed_meta = _weights(tmp_path / "killed")
    assert full.keys() == resumed.keys()
    for key in full:
        assert torch.equal(full[key], resumed[key]), key
    assert full_meta["global_step"] == resumed_meta["global_step"] == 14

    def lines(run):
        return [{k: v for k, v in json.loads(x).items() if k != "time_s"}
                for x in (run / "metrics.jsonl").read_text().splitlines()]

    assert lines(tmp_path / "full") == lines(tmp_path / "killed")


def test_eval_reproduces_validation_metrics(tmp_path):
    out = tmp_path / "run"
    result = train("caer_net_s", data="tiny:caer", out=out,
                   overrides=T.tiny_overrides(**FAST, **{"model_args.backbone_args": T.TINY_CNN}))
    logged = json.loads((out / "eval.json").read_text())
    best_line = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][result.best_epoch - 1]
    again = evaluate(f"local-dir:{out / 'best'}", "tiny:caer", split="val", batch_size=5)
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "per_class_recall", "confusion", "num_samples"):
        assert again[key] == logged[key] == best_line["val"][key], key
    assert logged["dataset"] == "tiny:caer" and logged["num_samples"] == T.SIZES["val"]
    assert logged["accuracy"] > 3 / 7  # well above chance (1/7)

    from typer.testing import CliRunner

    import zoo.cli

    cli = CliRunner().invoke(zoo.cli.app, ["eval", f"local-dir:{out / 'best'}", "--data", "tiny:caer", "--json"])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["accuracy"] == logged["accuracy"]


def test_bf16_autocast_channels_last_and_clipping_train_on_cpu(tmp_path):
    out = tmp_path / "run"
    result = train("glamor_net", data="tiny:caer", out=out, overrides=T.tiny_overrides(
        **FAST, amp="bf16", channels_last=True, grad_clip=1.0, **{"model_args.backbone_args": T.TINY_CNN}))
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.8 * losses[0], losses
    best_line = result.history[result.best_epoch - 1]["val"]
    assert result.eval_metrics["confusion"] == best_line["confusion"]  # eval.json uses the run's autocast too
    with pytest.raises(RecipeError, match="fp16 needs a CUDA device"):
        train("glamor_net", data="tiny:caer", out=tmp_path / "fp16", overrides=T.tiny_overrides(amp="fp16"))


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path):
    overrides = T.tiny_overrides(epochs=5, early_stopping=1, optimizer={"name": "sgd", "lr": 0.0},
                                 max_steps_per_epoch=1, **{"model_args.backbone_args": T.TINY_CNN})
    result = train("caer_net_s", data="tiny:caer", out=tmp_path / "run", overrides=overrides)
    assert result.stopped_early and len(result.history) == 2 and result.best_epoch == 1
    assert [h["best"] for h in result.history] == [True, False]


def test_reference_distributions_give_kl_js_and_majority_agreement(tmp_path):
    overrides = T.tiny_overrides(**FAST, epochs=1, **{"data.options": {"votes": True},
                                                      "model_args.backbone_args": T.TINY_CNN})
    result = train("caer_net_s", data="tiny:caer", out=tmp_path / "run", overrides=overrides)
    val = result.history[0]["val"]
    assert val["kl"] > 0 and 0 < val["js"] <= math.log(2)
    # the vote majority is the label here, so agreement with it is the accuracy
    assert val["majority_agreement"] == pytest.approx(val["accuracy"])
    assert result.eval_metrics["kl"] == pytest.approx(val["kl"])


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    overrides = T.tiny_overrides(**FAST, target="tiny_nan", checkpoint_every=2,
                                 **{"model_args.backbone_args": T.TINY_CNN, "model_args.target_args": {"nan_at": 6}})
    with pytest.raises(NonFiniteLossError, match=r"nan at epoch 1, step 6.*checkpoints/last"):
        train("caer_net_s", data="tiny:caer", out=tmp_path / "run", overrides=overrides)
    tensors, meta = ckpt.load_checkpoint(tmp_path / "run/checkpoints/last")
    assert meta["global_step"] == 4
    assert all(torch.isfinite(v).all() for k, v in tensors.items() if k.startswith("model."))


def test_clear_errors_for_bad_data_recipe_and_checkpoint(tmp_path):
    with pytest.raises(DatasetSpecError, match="nosuch"):
        train("caer_net_s", data="nosuch:/x", out=tmp_path / "a", overrides=T.tiny_overrides())
    with pytest.raises(RecipeError, match="neither a training recipe nor a model.*Recipes: caer_net_s"):
        train("glamor_nett", data="tiny:caer", out=tmp_path / "b")
    with pytest.raises(RecipeError, match="Unknown setting 'epochz'"):
        train("glamor_net", data="tiny:caer", overrides=["epochz=3"])

    out = tmp_path / "c"
    overrides = T.tiny_overrides(epochs=1, max_steps_per_epoch=1, **{"model_args.backbone_args": T.TINY_CNN})
    train("caer_net_s", data="tiny:caer", out=out, overrides=overrides)
    state = out / "checkpoints/last/state.safetensors"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(ckpt.CheckpointError, match=r"state\.safetensors: corrupt or truncated"):
        train("caer_net_s", data="tiny:caer", out=out, overrides={**overrides, "epochs": 2}, resume=True)


def test_cli_bad_data_spec_exits_with_message(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "zoo", "train", "caer_net_s", "--data", "nosuch:/x", "--out",
                           str(tmp_path / "r")], cwd=root, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 1, proc.stderr
    assert "error:" in proc.stderr and "nosuch" in proc.stderr and "Unknown dataset" in proc.stderr


def test_atomic_checkpoint_survives_a_crash_mid_write(tmp_path, monkeypatch):
    import safetensors.torch

    directory = tmp_path / "last"
    ckpt.save_checkpoint(directory, {"w": torch.ones(3)}, {"epoch": 1, "global_step": 5})

    def broken_save(tensors, path, metadata=None):
        with open(path, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken_save)
    with pytest.raises(ckpt.CheckpointError, match=r"disk full.*previous checkpoint .*last is intact"):
        ckpt.save_checkpoint(directory, {"w": torch.zeros(3)}, {"epoch": 2, "global_step": 9})
    tensors, meta = ckpt.load_checkpoint(ckpt.find_checkpoint(directory))
    assert meta["epoch"] == 1 and torch.equal(tensors["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]  # the partial copy is gone


def test_tiny_plugin_components_are_registered():
    assert get_component("dataset", "tiny")[0].plugin == T.PLUGIN_NAME


def test_recipes_say_how_the_paper_initialised_the_backbone():
    from zoo.training.recipes import resolve_recipe

    assert "MS-Celeb" in resolve_recipe("ldlva_resnet18")["paper_backbone_init"]
    assert "ImageNet" in resolve_recipe("glamor_resnet18")["paper_backbone_init"]
    assert resolve_recipe("glamor_net")["paper_backbone_init"] == "from scratch"
    assert resolve_recipe("glamor_net")["backbone_pretrained"] is False


def test_backbone_pretrained_setting_reaches_create(tmp_path, monkeypatch):
    """The run setting is passed to zoo.create: offline with no cache, timm weights fail with the Hub error."""
    from zoo.errors import HubError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    overrides = {**FAST, **T.tiny_overrides(), "backbone": "timm:resnet18", "model_args.backbone_args": {},
                 "backbone_pretrained": True, "epochs": 1}
    with pytest.raises(HubError, match="resnet18"):
        train("caer_net_s", data="tiny:caer", out=tmp_path / "run", overrides=overrides)


@pytest.mark.parametrize("recipe, face, context", [
    ("glamor_net", ("hflip", "rotate20"), ()),
    ("ldlva_resnet18_raf", ("hflip", "padcrop", "erase"), ()),
    ("caer_net_s", (), ()),
    ("fer2013_cnn", ("hflip", "affine", "erase"), ()),
])
def test_recipe_augmentation_reaches_the_training_split_only(recipe, face, context, tmp_path, monkeypatch):
    """What run_config.json records as augmentation is what the training dataset applies; eval gets none."""
    import importlib

    import zoo.data
    from zoo.data.transforms import parse_augment

    opened = []
    real_open = zoo.data.open_dataset

    def recording_open(spec, split="train", **options):
        opened.append((split, options))
        return real_open(spec, split, **options)

    for module in ("zoo.training.engine", "zoo.training.evaluate"):  # every place a run opens datasets from
        monkeypatch.setattr(importlib.import_module(module), "open_dataset", recording_open)
    overrides = T.tiny_overrides(epochs=1, max_steps_per_epoch=1, amp="none", channels_last=False,
                                 model_args={"backbone": "caer_cnn", "backbone_args": T.TINY_CNN, "target": "onehot",
                                             "target_args": {}, "data": T.TINY_DATA})
    overrides["data.options"] = {}
    family = "fer2013" if recipe == "fer2013_cnn" else "affectnet7" if recipe.startswith("ldlva") else "caer"
    train(recipe, data=f"tiny:{family}", out=tmp_path / "run", overrides=overrides)
    recorded = json.loads((tmp_path / "run" / "run_config.json").read_text())["augmentation"]
    assert parse_augment(recorded["face"]) == face and parse_augment(recorded["context"]) == context
    by_split = {split: options for split, options in opened}
    assert parse_augment(by_split["train"]["face_augment"]) == face
    assert parse_augment(by_split["train"]["context_augment"]) == context
    assert by_split["train"]["train"] is True
    assert not by_split["val"].get("face_augment") and not by_split["val"].get("context_augment")
    assert by_split["val"]["train"] is False


def test_augmentation_is_one_setting_with_known_names(tmp_path):
    with pytest.raises(RecipeError, match="augmentation.face: Unknown augmentation 'blur'"):
        train("glamor_net", data="tiny:caer", out=tmp_path / "a", overrides={"augmentation.face": "blur"})
    with pytest.raises(RecipeError, match="data.options.face_augment is not a run setting"):
        train("glamor_net", data="tiny:caer", out=tmp_path / "b",
              overrides={"data.options": {"face_augment": "hflip"}})


def test_keep_last_saves_the_final_epoch_not_the_best(tmp_path):
    overrides = T.tiny_overrides(epochs=3, keep="last", optimizer={"name": "sgd", "lr": 0.0},
                                 max_steps_per_epoch=1, **{"model_args.backbone_args": T.TINY_CNN})
    result = train("caer_net_s", data="tiny:caer", out=tmp_path / "run", overrides=overrides)
    assert result.best_epoch == 3 and json.loads((tmp_path / "run" / "eval.json").read_text())["best_epoch"] == 3


def test_crash_between_the_two_renames_resumes_from_the_old_checkpoint(tmp_path, monkeypatch):
    """save_checkpoint moves ``last`` aside to ``.last.old``, then renames the new one into place; a crash
    between the two leaves only ``.last.old``. --resume must continue from it (and equal an uninterrupted run)."""
    import os

    overrides = T.tiny_overrides(**FAST, epochs=2, max_steps_per_epoch=2, deterministic=True,
                                 **{"model_args.backbone_args": T.TINY_CNN})
    train("caer_net_s", data="tiny:caer", out=tmp_path / "full", overrides=overrides)

    real_replace = os.replace
    writes = []

    def crash_before_second_rename(src, dst):
        if os.path.basename(str(src)).startswith(".last.tmp-"):
            writes.append(dst)
            if len(writes) == 2:  # the epoch-2 checkpoint: the old one is already moved aside
                raise KeyboardInterrupt("simulated kill between the two renames")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_before_second_rename)
    with pytest.raises(KeyboardInterrupt):
        train("caer_net_s", data="tiny:caer", out=tmp_path / "killed", overrides=overrides)
    monkeypatch.setattr(os, "replace", real_replace)
    checkpoints = tmp_path / "killed/checkpoints"
    assert not (checkpoints / "last").exists() and (checkpoints / ".last.old").is_dir()
    assert ckpt.find_checkpoint(checkpoints / "last") == checkpoints / ".last.old"
    assert ckpt.load_checkpoint(checkpoints / ".last.old")[1]["global_step"] == 2  # end of epoch 1

    train("caer_net_s", data="tiny:caer", out=tmp_path / "killed", overrides=overrides, resume=True)
    full, full_meta = _weights(tmp_path / "full")
    resumed, resumed_meta = _weights(tmp_path / "killed")
    assert resumed_meta["global_step"] == full_meta["global_step"] == 4
    for key in full:
        assert torch.equal(full[key], resumed[key]), key


ONE_EPOCH = T.tiny_overrides(epochs=1, **{"model_args.backbone_args": T.TINY_CNN})


def test_a_second_run_on_the_same_out_is_refused_during_the_first(tiny_plugin, tmp_path, monkeypatch):
    from zoo.training import engine
    from zoo.training.runlock import LOCK_NAME, RunDirectoryError

    out = tmp_path / "run"
    original = engine._Run._train_step
    refused = []

    def second_run_mid_epoch(self, batch, epoch):
        if not refused:
            with pytest.raises(RunDirectoryError, match=rf"in use by another training run: pid {os.getpid()} on "
                                                        rf"host '{re.escape(os.uname().nodename)}'") as info:
                engine.train("caer_net_s", data="tiny:caer", out=out, overrides=ONE_EPOCH, overwrite=True)
            refused.append(str(info.value))
        return original(self, batch, epoch)

    monkeypatch.setattr(engine._Run, "_train_step", second_run_mid_epoch)
    engine.train("caer_net_s", data="tiny:caer", out=out, overrides=ONE_EPOCH)
    assert refused and not (out / LOCK_NAME).exists()  # cleaned on exit
    assert (out / "eval.json").exists()


def test_a_lock_held_by_another_process_is_refused_and_reported_with_its_owner_when_stale(tiny_plugin, tmp_path):
    from zoo.training import engine
    from zoo.training.runlock import LOCK_NAME, RunDirectoryError, StaleLockWarning

    out = tmp_path / "run"
    code = ("import sys; from zoo.training.runlock import RunLock; RunLock(sys.argv[1]).acquire(); "
            "print('locked', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(Path(zoo.__file__).parents[1])})
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirectoryError, match=rf"pid {holder.pid} on host"):
            engine.train("caer_net_s", data="tiny:caer", out=out, overrides=ONE_EPOCH)
        holder.kill()  # kill -9: the lock file stays, unlocked
        holder.wait(timeout=30)
        assert (out / LOCK_NAME).exists()
        with pytest.warns(StaleLockWarning, match=rf"took over the lock left by pid {holder.pid} on host"):
            engine.train("caer_net_s", data="tiny:caer", out=out, overrides=ONE_EPOCH)
        assert not (out / LOCK_NAME).exists()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)


def test_sigterm_stops_zoo_cli_train_cleanly_releasing_its_lock(tmp_path):
    """``kill PID`` (SIGTERM) of a real ``zoo-cli train`` unwinds like Ctrl-C: exit 143, a one-line reason, the lock
    released (no StaleLockWarning on the resume), the last epoch's checkpoint kept and resumable."""
    import signal

    from zoo.training.runlock import LOCK_NAME

    out = tmp_path / "run"
    settings = ["epochs=10000", "batch_size=2", "progress=false", "device=cpu", 'data.options={"n": 8}',
                "model_args.backbone_args=" + json.dumps(T.TINY_CNN), "model_args.data=" + json.dumps(T.TINY_DATA)]
    proc = subprocess.Popen([sys.executable, "-m", "zoo", "train", "caer_net_s", "--data", "synth_caer", "--out",
                             str(out), *settings], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(zoo.__file__).parents[1])})
    try:
        deadline = time.monotonic() + 240
        # "last" appears by one rename once the first checkpoint is complete; "checkpoints/" appears before it
        while not (out / "checkpoints" / "last").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("stopped by SIGTERM; the last checkpoint is kept"), err
    assert not (out / LOCK_NAME).exists()
    done = len((out / "metrics.jsonl").read_text().splitlines())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a lock left behind would warn (StaleLockWarning) on the take-over
        from zoo.training import engine

        result = engine.train("caer_net_s", data="synth_caer", out=out, resume=True,
                              overrides=[f"epochs={done + 1}", *settings[1:]])
    assert [h["epoch"] for h in result.history] == list(range(1, done + 2))


def test_a_finished_run_is_not_overwritten_without_overwrite(tiny_plugin, tmp_path):
    import shutil

    from zoo.training import engine
    from zoo.training.runlock import RunDirectoryError

    out = tmp_path / "run"
    engine.train("caer_net_s", data="tiny:caer", out=out, overrides=ONE_EPOCH)
    shutil.rmtree(out / "checkpoints")
    before = {p: (out / p).read_bytes() for p in ("eval.json", "metrics.jsonl", "best/model.safetensors")}
    with pytest.raises(RunDirectoryError, match=r"is not empty: it holds best, datasets.json, eval.json.*--resume.*--overwrite"):
        engine.train("caer_net_s", data="tiny:caer", out=out, overrides={**ONE_EPOCH, "seed": 1})
    assert {p: (out / p).read_bytes() for p in before} == before
    (out / "notes.txt").write_text("mine")
    result = engine.train("caer_net_s", data="tiny:caer", out=out, overrides={**ONE_EPOCH, "seed": 1}, overwrite=True)
    assert result.best_epoch == 1 and (out / "notes.txt").read_text() == "mine"  # only the run's files go
    assert (out / "best/model.safetensors").read_bytes() != before["best/model.safetensors"]
    with pytest.raises(ZooError, match="pass only one of them"):
        engine.train("caer_net_s", data="tiny:caer", out=out, overrides=ONE_EPOCH, overwrite=True, resume=True)


def test_overwrite_deletes_nothing_before_the_new_run_has_checked_its_data(tiny_plugin, tmp_path):
    from zoo.outputs import OutputError
    from zoo.training import engine

    out = tmp_path / "run"
    engine.train("caer_net_s", data="tiny:caer", out=out, overrides=ONE_EPOCH)
    before = {p: (out / p).read_bytes() for p in ("eval.json", "metrics.jsonl", "best/model.safetensors")}
    # classes no dataset class matches by name: refused at setup (the same names in another order would be
    # mapped by name since issue 32, and train)
    unmatched = [f"class{i}" for i in range(len(zoo.labels.CAER))]
    with pytest.raises(ZooError, match="training would teach the model's output"):
        engine.train("caer_net_s", data="tiny:caer", out=out, overrides={**ONE_EPOCH, "label_names": unmatched},
                     overwrite=True)
    assert {p: (out / p).read_bytes() for p in before} == before
    with pytest.raises(ZooError, match="class_weights has 1 values for 7 classes"):  # fails after the data opened
        engine.train("caer_net_s", data="tiny:caer", out=out,
                     overrides={**ONE_EPOCH, "target_args": {"class_weights": [1.0]}}, overwrite=True)
    assert {p: (out / p).read_bytes() for p in before} == before
    assert sorted(p.name for p in out.iterdir()) == ["best", "checkpoints", "datasets.json", "eval.json",
                                                      "metrics.jsonl", "run_config.json"]
    dataset = tmp_path / "dsroot"
    (dataset / "happy").mkdir(parents=True)
    (dataset / "metrics.jsonl").write_text("mine")
    for where in (dataset, dataset / "happy"):  # the dataset's folder, or one inside it, is no run directory
        with pytest.raises(OutputError, match="lies inside it"):
            engine.train("caer_net_s", data=f"folder:{dataset}", out=where, overrides=ONE_EPOCH, overwrite=True)
    assert (dataset / "metrics.jsonl").read_text() == "mine"


def test_resume_from_a_checkpoint_past_the_end_says_so(tiny_plugin, tmp_path, caplog):
    from zoo.training import engine
    from zoo.training.checkpoint import CheckpointError

    out = tmp_path / "run"
    engine.train("caer_net_s", data="tiny:caer", out=out, overrides=ONE_EPOCH)
    state_file = out / "checkpoints/last/state.json"
    state = json.loads(state_file.read_text())
    with caplog.at_level(logging.WARNING, logger="zoo"):
        engine.train(out=out, resume=True)  # a finished run: nothing to train, and the log says so
    assert "holds a finished run (epoch 1 of 1); nothing is left to train" in caplog.text
    for epoch, needle in ((5, "past the end of this run"), (-1, "epoch must be an integer >= 0"),
                          ("1", "epoch must be an integer >= 0")):
        state_file.write_text(json.dumps({**state, "epoch": epoch}))
        with pytest.raises(CheckpointError, match=needle):
            engine.train(out=out, resume=True)


def test_cli_overwrite_flag(tiny_plugin, tmp_path):
    from typer.testing import CliRunner

    out = tmp_path / "run"
    out.mkdir()
    (out / "x").write_text("")
    args = ["train", "caer_net_s", "--data", "tiny:caer", "--out", str(out),
            *[f"{k}={json.dumps(v)}" for k, v in ONE_EPOCH.items()]]
    result = CliRunner().invoke(zoo.cli.app, args)
    assert result.exit_code != 0 and "is not empty" in str(result.exception)
    result = CliRunner().invoke(zoo.cli.app, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output


def test_bad_run_and_eval_settings(tiny_plugin, tmp_path):
    from zoo.training import engine

    with pytest.raises(RecipeError, match=r"setting epochs=-1: must be an integer >= 1"):
        engine.train("caer_net_s", data="tiny:caer", out=tmp_path / "a", overrides={**ONE_EPOCH, "epochs": -1})
    with pytest.raises(RecipeError, match=r"amp must be one of none, bf16, fp16, got 'bogus'"):
        engine.evaluate("caer_net_s", "tiny:caer", amp="bogus")
    with pytest.raises(Exception, match=r"--resume: the run directory .*nonexistent does not exist"):
        engine.train(None, out=tmp_path / "nonexistent", resume=True)


def test_disk_full_during_a_checkpoint_is_a_clear_error_and_keeps_the_previous_one(tiny_plugin, tmp_path,
                                                                                       monkeypatch):
    import safetensors.torch
    from safetensors import SafetensorError

    from zoo.training import engine

    real = safetensors.torch.save_file
    calls = []

    def fill_the_disk(tensors, path, metadata=None):
        calls.append(path)
        if "checkpoints" in str(path) and len([c for c in calls if "checkpoints" in str(c)]) > 1:
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real(tensors, path, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", fill_the_disk)
    with pytest.raises(ckpt.CheckpointError, match=r"No space left on device.*previous checkpoint .*last is intact"):
        engine.train("caer_net_s", data="tiny:caer", out=tmp_path / "run", overrides={**ONE_EPOCH, "epochs": 2})
    _, meta = ckpt.load_checkpoint(tmp_path / "run/checkpoints/last")
    assert meta["epoch"] == 1
    assert sorted(p.name for p in (tmp_path / "run/checkpoints").iterdir()) == ["last"]


def test_leftover_checkpoint_temporaries_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / f".last.tmp-{dead.pid}"
    leftover.mkdir()
    (leftover / "state.safetensors").write_bytes(b"partial")
    ckpt.save_checkpoint(tmp_path / "last", {"w": torch.ones(2)}, {"epoch": 1, "global_step": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_unwritable_out_corrupt_run_config_and_partial_metrics_line(tiny_plugin, tmp_path):
    from zoo.training import engine
    from zoo.training.runlock import RunDirectoryError

    (tmp_path / "file").write_text("in the way")
    with pytest.raises(RunDirectoryError, match=r"Cannot use .*file/run as a run directory"):
        engine.train("caer_net_s", data="tiny:caer", out=tmp_path / "file/run", overrides=ONE_EPOCH)

    out = tmp_path / "run"
    engine.train("caer_net_s", data="tiny:caer", out=out, overrides=ONE_EPOCH)
    log = out / "metrics.jsonl"
    good = log.read_text()
    log.write_text(good + '{"epoch": 2, "global_st')  # killed while writing the next line
    with pytest.warns(UserWarning, match=r"metrics\.jsonl:2: dropped a partial last line"):
        result = engine.train("caer_net_s", data="tiny:caer", out=out, overrides={**ONE_EPOCH, "epochs": 2}, resume=True)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2]

    (out / "run_config.json").write_text('{"epochs": ')
    with pytest.raises(ckpt.CheckpointError, match=r"run_config\.json: cannot be read"):
        engine.train("caer_net_s", data="tiny:caer", out=out, overrides={**ONE_EPOCH, "epochs": 3}, resume=True)
