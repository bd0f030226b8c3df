"""A walk over bad zoo-cli invocations and bad config.json files: each gives one ``error:`` line naming the
bad value, exit status 1 and no traceback; the traceback only with ``--debug``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_face import png, timm_face_config, tiny_face_model

import zoo
import zoo.weights.files
from zoo.errors import ConfigError

# untrained tiny models stand in for real ones; datasets announce counted boxes with a DataWarning
pytestmark = [pytest.mark.filterwarnings("ignore::zoo.data.records.DataWarning"),
              pytest.mark.filterwarnings("ignore::zoo.errors.UntrainedModelWarning")]


def _base_config() -> dict:
    return zoo.weights.files.config_to_json_dict(tiny_face_model().config)


def _mutated(mutate) -> dict:
    config = _base_config()
    mutate(config)
    return config


def _set(path: str, value):
    def mutate(config):
        node = config
        *parents, last = path.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    return mutate


def _nest(depth: int):
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value


#: bad config.json files: name -> (config dict, raw text or a marker, the text the error line must contain)
CONFIG_CASES = {
    "backbone_args-list": (_mutated(_set("model_args.backbone_args", ["channels"])), "backbone_args"),
    "backbone-null": (_mutated(_set("model_args.backbone", None)), "backbone must be a component name"),
    "channels-negative": (_mutated(_set("model_args.backbone_args.channels", [-8, 4, 4, 4, 4])), "-8"),
    "channels-string": (_mutated(_set("model_args.backbone_args.channels", "abc")), "'abc'"),
    "channels-huge": (_mutated(_set("model_args.backbone_args.channels", [4, 10**7])), "10000000"),
    "dropout-2": (_mutated(_set("model_args.head_dropout", 2.0)), "2.0"),
    "face_size-string": (_mutated(_set("pretrained_cfg.face_size", "96")), "'96'"),
    "mean-two-values": (_mutated(_set("pretrained_cfg.mean", [0.5, 0.5])), "[0.5, 0.5]"),
    "std-zero": (_mutated(_set("pretrained_cfg.std", [0, 0, 0])), "data.std"),
    "std-nan-string": (_mutated(_set("pretrained_cfg.std", ["nan", 1, 1])), "'nan'"),
    "unknown-target": (_mutated(_set("model_args.target", "bogus_target")), "bogus_target"),
    "duplicate-labels": (_mutated(_set("label_names", ["a", "b", "c", "d", "e", "f", "a"])), "'a'"),
    "labels-a-string": (_mutated(_set("label_names", "abcdefg")), "'abcdefg'"),
    "labels-zero-width": (_mutated(_set("label_names", ["a", "b", "c", "d", "e", "f", "Happy\u200b"])), "U+200B"),
    "labels-fullwidth": (_mutated(_set("label_names", ["a", "b", "c", "d", "e", "f", "\uff28appy"])), "'Happy'"),
    "labels-not-strings": (_mutated(_set("label_names", [1, 2, 3, 4, 5, 6, 7])), "non-empty strings, got 1"),
    "num_classes-1e9": (_mutated(lambda c: (c.update(num_classes=10**9, label_names=None),
                                            c["model_args"].update(num_classes=10**9))), "1000000000"),
    "num_classes-string": (_mutated(lambda c: (c.update(num_classes="7", label_names=None),
                                               c["model_args"].update(num_classes="7"))), "'7'"),
    "num_classes-mismatch": (_mutated(_set("num_classes", 8)), "num_classes is 8"),
    "head_hidden-1e9": (_mutated(_set("model_args.head_hidden", 10**9)), "1000000000"),
    "face_size-30000": (_mutated(_set("pretrained_cfg.face_size", [30000, 30000])), "30000"),
    "mask-no": (_mutated(_set("pretrained_cfg.mask_face_in_context", "no")), "'no'"),
    "interpolation": (_mutated(_set("pretrained_cfg.interpolation", "cubicspline")), "cubicspline"),
    "streams": (_mutated(_set("model_args.streams", "all")), "'all'"),
    "init": (_mutated(_set("model_args.init", "xavier")), "xavier"),
    "feature_norm-yes": (_mutated(_set("model_args.feature_norm", "yes")), "'yes'"),
    "unknown-key": (_mutated(_set("model_args.bogus_key", 1)), "bogus_key"),
    "unknown-backbone": (_mutated(_set("model_args.backbone", "nonet")), "nonet"),
    "unknown-backbone-arg": (_mutated(_set("model_args.backbone_args.widths", [4])), "widths"),
    "model_args-string": (_mutated(_set("model_args", "abc")), "model_args"),
    "data-string": (_mutated(_set("pretrained_cfg", "abc")), "pretrained_cfg"),
    "top-level-list": ([1, 2, 3], "model_args"),
    "timm-pretrained": (timm_face_config({"pretrained": True}), "pretrained"),
    "timm-checkpoint_path": (timm_face_config({"checkpoint_path": "/etc/hostname"}), "checkpoint_path"),
    "timm-overlay-url": (timm_face_config({"pretrained_cfg_overlay": {"url": "http://x"}}), "pretrained_cfg_overlay"),
    "timm-url-value": (timm_face_config({"anything": "https://example.invalid/w"}), "https://example.invalid/w"),
    "timm-deep-args": (timm_face_config({"a": _nest(30)}), "config.json: backbone_args.a.a"),
    # the model part of a component name naming a Hub repo or a file would make timm fetch or read it (issue 30)
    **{f"backbone-{prefix}": ({**timm_face_config({}), "model_args": {**timm_face_config({})["model_args"],
                                                                      "backbone": f"timm:{prefix}evil/x"}},
                              f"timm:{prefix}evil/x")
       for prefix in ("hf-hub:", "hf_hub:", "HF-HUB:", " hf-hub:", "local-dir:", "/")},
    "deep-json": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "not-json": ("{ not json", "not valid JSON"),
    "not-utf8": (b"\xff\xfe{\"x\": 1}", "not UTF-8"),
    "config-is-a-directory": ("DIRECTORY", "config.json"),
    "no-config": ("MISSING", "config.json"),
    "nan-weights": ("NAN_WEIGHTS", "classifier.weight"),
    "int-weights": ("INT_WEIGHTS", "torch.int64"),
    "wrong-shape-weights": ("SHAPE_WEIGHTS", "classifier.weight"),
    "weights-fifo": ("FIFO_WEIGHTS", "not a regular file"),  # reading a FIFO would block for ever
    "config-fifo": ("FIFO_CONFIG", "not a regular file"),
}


def _write_config_case(directory: Path, case) -> None:
    from safetensors.torch import load_file, save_file

    zoo.save_pretrained(tiny_face_model(), directory)
    config_path = directory / "config.json"
    if case == "DIRECTORY":
        config_path.unlink()
        config_path.mkdir()
    elif case == "MISSING":
        config_path.unlink()
    elif case in ("FIFO_WEIGHTS", "FIFO_CONFIG"):
        target = directory / ("model.safetensors" if case == "FIFO_WEIGHTS" else "config.json")
        target.unlink()
        os.mkfifo(target)
    elif case in ("NAN_WEIGHTS", "INT_WEIGHTS", "SHAPE_WEIGHTS"):
        state = load_file(str(directory / "model.safetensors"))
        weight = state["classifier.weight"]
        state["classifier.weight"] = {"NAN_WEIGHTS": weight.clone().fill_(float("nan")),
                                      "INT_WEIGHTS": weight.long(), "SHAPE_WEIGHTS": weight[:3]}[case]
        save_file(state, str(directory / "model.safetensors"))
    elif isinstance(case, bytes):
        config_path.write_bytes(case)
    elif isinstance(case, str):
        config_path.write_text(case)
    else:
        config_path.write_text(json.dumps(case))


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """Files the bad invocations point at: a tiny model, bad model directories, bad data files."""
    root = tmp_path_factory.mktemp("walk")
    zoo.save_pretrained(tiny_face_model(), root / "model")
    for name, (case, _) in CONFIG_CASES.items():
        _write_config_case(root / "configs" / name, case)
    png(root / "image.png")
    (root / "notimage.jpg").write_bytes(b"this is not a jpeg")
    (root / "latin1.csv").write_bytes("path,label\nimage.png,gl\xfccklich\n".encode("latin-1"))
    (root / "a_file").write_text("in the way")
    (root / "nonempty").mkdir()
    (root / "nonempty" / "notes.txt").write_text("mine")
    return root


def CLI_CASES(w: Path) -> dict[str, tuple[list[str], str]]:
    """Bad invocations: name -> (arguments, text the error line must contain)."""
    out = str(w / "runs" / "x")

    # should a bad value ever be accepted, the run stays tiny (the case's own setting comes last and wins)
    safe = ("epochs=1", "max_steps_per_epoch=1", "batch_size=2", "progress=false", "device=cpu",
            'data.options={"n": 8}')

    def train(*settings: str, data: str = "synth_caer", model: str = "caer_net_s", extra=()) -> list[str]:
        return ["train", model, "--data", data, "--out", out, *extra, *safe, *settings]

    model = f"local-dir:{w / 'model'}"
    return {
        "epochs-abc": (train("epochs=abc"), "epochs='abc'"),
        "epochs-negative": (train("epochs=-1"), "epochs=-1"),
        "epochs-float": (train("epochs=2.5"), "epochs=2.5"),
        "seed-abc": (train("seed=abc"), "seed='abc'"),
        "batch_size-0": (train("batch_size=0"), "batch_size=0"),
        "batch_size-string": (train("batch_size=big"), "batch_size='big'"),
        "eval_batch_size-0": (train("eval_batch_size=0"), "eval_batch_size=0"),
        "grad_clip-abc": (train("grad_clip=abc"), "grad_clip='abc'"),
        "grad_clip-negative": (train("grad_clip=-1"), "grad_clip=-1"),
        "device-bogus": (train("device=bogus"), "'bogus'"),
        "amp-bogus": (train("amp=bogus"), "bogus"),
        "lr-abc": (train("optimizer.lr=abc"), "optimizer.lr='abc'"),
        "lr-negative": (train("optimizer.lr=-0.1"), "optimizer.lr=-0.1"),
        "momentum-string": (train("optimizer.momentum=high"), "optimizer.momentum='high'"),
        "optimizer-unknown": (train("optimizer=bogusopt"), "bogusopt"),
        "threads-bogus": (train("threads=bogus"), "bogus"),
        "num_workers-negative": (train("num_workers=-1"), "num_workers=-1"),
        "early_stopping-abc": (train("early_stopping=abc"), "early_stopping='abc'"),
        "checkpoint_every-abc": (train("checkpoint_every=abc"), "checkpoint_every='abc'"),
        "max_steps-0": (train("max_steps_per_epoch=0"), "max_steps_per_epoch=0"),
        "channels_last-maybe": (train("channels_last=maybe"), "channels_last='maybe'"),
        "deterministic-no": (train("deterministic=no"), "deterministic='no'"),
        "drop_last-1": (train("drop_last=1"), "drop_last=1"),
        "schedule-bogus": (train("schedule=bogus"), "bogus"),
        "milestones-abc": (train("schedule.milestones=abc"), "schedule.milestones='abc'"),
        "gamma-negative": (train("schedule.gamma=-1"), "schedule.gamma=-1"),
        "unknown-setting": (train("bogus_setting=1"), "bogus_setting"),
        "not-key-value": (train("notanoverride"), "notanoverride"),
        "backbone_pretrained-5": (train("backbone_pretrained=5"), "backbone_pretrained=5"),
        "options-n-0": (train('data.options={"n": 0}'), "got 0"),
        "options-not-dict": (train("data.options=[1]"), "data.options=[1]"),
        "options-image_size": (train('data.options={"image_size": "big"}'), "'big'"),
        "options-unknown": (train('data.options={"bogus_opt": 1}'), "bogus_opt"),
        "train_subset-0": (train('data.train_subset={"size": 0}'), "keeps 0 samples"),
        "train_subset-too-big": (train('data.train_subset={"size": 100}'), "the training split has 8"),
        "face_size-30000": (train("model_args.data.face_size=[30000,30000]"), "30000"),
        "face_size-string": (train("model_args.data.face_size=96"), "96"),
        "num_classes-1e9": (train("num_classes=1000000000"), "1000000000"),
        "head_hidden-1e9": (train("head_hidden=1000000000"), "1000000000"),
        "head_dropout-2": (train("head_dropout=2.0"), "2.0"),
        "mask-no": (train("model_args.data.mask_face_in_context=no"), "'no'"),
        "label_names-duplicate": (train('label_names=["a","b","c","d","e","f","a"]'), "'a'"),
        "attention-bogus": (train("attention=bogus_attention"), "bogus_attention"),
        "target-bogus": (train("target=bogus_target"), "bogus_target"),
        "channels-string": (train('backbone_args={"channels": "abc"}'), "'abc'"),
        "channels-negative": (train('backbone_args={"channels": [-3, 4]}'), "-3"),
        "data-unknown": (train(data="bogus_dataset:/x"), "bogus_dataset"),
        "data-non-utf8-csv": (train("data.options={}", data=f"csv:{w / 'latin1.csv'}"), "not UTF-8"),
        "data-missing-folder": (train(data="folder:/nonexistent/data"), "/nonexistent/data"),
        "model-unknown": (train(model="glamor_nett"), "glamor_nett"),
        "resume-missing-out": (["train", "--resume", "--out", "/nonexistent/run"], "/nonexistent/run"),
        "resume-and-overwrite": (train(extra=("--resume", "--overwrite")), "--overwrite"),
        "out-not-empty": (["train", "caer_net_s", "--data", "synth_caer", "--out", str(w / "nonempty"), *safe],
                          "not empty"),
        "out-under-a-file": (["train", "caer_net_s", "--data", "synth_caer", "--out", str(w / "a_file" / "run"),
                              *safe], "a_file"),
        "eval-batch-size-0": (["eval", model, "--data", "synth_caer", "--batch-size", "0"], "got 0"),
        "eval-amp-bogus": (["eval", model, "--data", "synth_caer", "--amp", "bogus"], "'bogus'"),
        "eval-device-bogus": (["eval", model, "--data", "synth_caer", "--device", "bogus"], "'bogus'"),
        "eval-missing-model": (["eval", "local-dir:/nonexistent/m", "--data", "synth_caer"], "/nonexistent/m"),
        "eval-bad-split": (["eval", model, "--data", "synth_caer", "--split", "bogus_split"], "bogus_split"),
        "eval-class-map-not-json": (["eval", model, "--data", "synth_caer", "--class-map", "{bogus"], "'{bogus'"),
        "eval-class-map-unknown-class": (["eval", model, "--data", "synth_caer", "--class-map", '{"bogus_cls": null}'],
                                         "'bogus_cls' is not a class of the dataset"),
        "predict-missing-image": (["predict", str(w / "missing.jpg"), "--model", model], "missing.jpg"),
        "predict-not-an-image": (["predict", str(w / "notimage.jpg"), "--model", model], "notimage.jpg"),
        "predict-unknown-model": (["predict", str(w / "image.png"), "--model", "bogus_model"], "bogus_model"),
        "predict-device-bogus": (["predict", str(w / "image.png"), "--model", model, "--device", "bogus"], "'bogus'"),
        "predict-bad-detector": (["predict", str(w / "image.png"), "--model", model, "--detector", "bogus_det"],
                                 "bogus_det"),
        "predict-max-frames-0": (["predict", str(w / "image.png"), "--model", model, "--max-frames", "0"],
                                 "max_frames must be a positive number"),
        "predict-max-frames-negative": (["predict", str(w / "image.png"), "--model", model, "--max-frames", "-1"],
                                        "got -1"),
        "predict-min-score-nan": (["predict", str(w / "image.png"), "--model", model, "--min-score", "nan"],
                                  "min_score (--min-score) must be a finite"),
        "predict-fps-inf": (["predict", str(w / "image.png"), "--model", model, "--fps", "inf"], "fps must be"),
        "predict-camera-negative": (["predict", "--camera", "-1", "--model", model, "--max-frames", "2"],
                                    "camera must be a webcam index"),
        "export-out-a-folder": (["export", model, "--format", "torchscript", "--out", str(w / "nonempty")],
                                "is a folder"),
        "export-tolerance-nan": (["export", model, "--format", "torchscript", "--out", str(w / "m.pt"),
                                  "--tolerance", "nan"], "--tolerance"),
        "serve-port-99999": (["serve", "--port", "99999"], "99999"),
        "bench-threads-bogus": (["bench", "--threads", "bogus", "--sections", "machine"], "'bogus'"),
        "info-unknown": (["info", "bogus_model"], "bogus_model"),
        "info-bare-path": (["info", "some/dir"], "some/dir"),
        "info-bad-repo-id": (["info", "hf-hub:bad repo!!/x"], "bad repo!!"),
        "info-revision-traversal": (["info", "hf-hub:org/name@../../x"], "../../x"),
        "info-missing-dir": (["info", "local-dir:/nonexistent/m"], "/nonexistent/m"),
        "pull-absolute-revision": (["pull", "hf-hub:org/name@/abs"], "/abs"),
        "pull-local-dir": (["pull", model], "needs no prefetching"),
        "push-unreachable": (["push", str(w / "model"), "--repo-id", "org/name"], "org/name"),
        "push-bad-repo-id": (["push", str(w / "model"), "--repo-id", "bad id!!"], "bad id!!"),
        "push-revision-traversal": (["push", str(w / "model"), "--repo-id", "org/name", "--revision", "../x"], "../x"),
        "push-not-a-model": (["push", str(w / "nonempty"), "--repo-id", "org/name"], "nonempty"),
        "components-unknown-kind": (["components", "bogus_kind"], "bogus_kind"),
        "convert-unknown-source": (["convert", "bogus_src", str(w / "x.pth"), str(w / "o")], "bogus_src"),
        "convert-missing-file": (["convert", "caer-port", str(w / "missing.pth"), str(w / "o")], "missing.pth"),
        "build-ncaer-missing": (["build-ncaer", "/nonexistent/caer", str(w / "ncaer")], "/nonexistent/caer"),
    }


def _error_text(err: str) -> str:
    return err[err.index("error:"):] if "error:" in err else ""


def test_walk_bad_cli_invocations_and_config_files(walk, run_cli):
    """At least 60 bad invocations and bad config.json files: each exits non-zero with an ``error:`` line
    naming the bad value, and no traceback."""
    cases = {f"cli:{k}": v for k, v in CLI_CASES(walk).items()}
    for name, (_, needle) in CONFIG_CASES.items():
        cases[f"config:{name}"] = (["info", f"local-dir:{walk / 'configs' / name}"], needle)
    assert len(cases) >= 60 + 40
    failures = []
    for name, (args, needle) in cases.items():
        try:
            code, out, err = run_cli(args)
        except BaseException as exc:  # noqa: BLE001 - a traceback would reach the user
            failures.append(f"{name}: raised {type(exc).__name__}: {exc}"[:300])
            continue
        text = _error_text(err)
        if code == 0 or not text or needle not in text or "Traceback" in out + err:
            failures.append(f"{name}: exit {code}, wanted {needle!r} in: {(err or out).strip()[:300]!r}")
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures)


def test_debug_shows_the_traceback(walk, run_cli):
    args = ["info", f"local-dir:{walk / 'configs' / 'not-json'}"]
    code, out, err = run_cli(args)
    assert code == 1 and "error:" in err and "not valid JSON" in err
    with pytest.raises(ConfigError, match="not valid JSON"):
        run_cli([*args, "--debug"])


def test_a_real_process_prints_one_error_line_without_traceback(walk):
    proc = subprocess.run([sys.executable, "-m", "zoo", "train", "caer_net_s", "--data", "synth_caer",
                           "--out", str(walk / "runs" / "real"), "epochs=abc"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(Path(zoo.__file__).parents[1])})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: setting epochs='abc': must be an integer >= 1."]


def test_a_local_model_naming_a_hub_backbone_never_reaches_timm(tmp_path, monkeypatch):
    import timm

    calls = []

    def create_model(*args, **kwargs):
        calls.append(args)
        raise AssertionError("timm.create_model was reached")

    monkeypatch.setattr(timm, "create_model", create_model)
    zoo.save_pretrained(tiny_face_model(), tmp_path / "m")
    for name in ("timm:hf-hub:evil/x", "timm:hf_hub:evil/x", "timm:HF-HUB:evil/x"):
        config = timm_face_config({})
        config["model_args"]["backbone"] = name
        (tmp_path / "m" / "config.json").write_text(json.dumps(config))
        with pytest.raises(ConfigError, match="names a file, URL or Hub repo"):
            zoo.create(f"local-dir:{tmp_path / 'm'}")
    assert calls == []


def test_a_bug_inside_the_library_keeps_its_traceback_and_asks_for_a_report(run_cli, monkeypatch):
    """A KeyError that zoo's own code raised by an operation (not a check) is a bug: traceback + please report;
    a check's bare ValueError (here or in a library) stays the user's one ``error:`` line."""
    import zoo.factory
    from zoo.cli.common import is_user_error

    monkeypatch.setattr(zoo.factory, "model_info", lambda name: {})  # the info command then reads a missing key
    code, out, err = run_cli(["info", "fer_cnn"])
    assert code == 1 and "Traceback" in err and "KeyError: 'face_size'" in err
    assert err.strip().splitlines()[-1].startswith("error: an internal error in emotion-zoo (KeyError: 'face_size')")
    assert "Please report it at https://github.com/emotion-zoo/emotion-zoo/issues" in err
    from zoo.runtime import cpu_threads

    with pytest.raises(ValueError) as checked:
        cpu_threads("bogus")  # a check of zoo's: raise ValueError(...)
    with pytest.raises(ValueError) as failed:
        int("abc")  # raised by an operation, but outside zoo (this test file)
    assert is_user_error(checked.value) and is_user_error(failed.value)
