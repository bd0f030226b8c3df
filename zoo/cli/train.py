"""``zoo-cli train / eval / predict / ablate``: thin layers over ``zoo.train``, ``zoo.evaluate``,
``zoo.predict`` and ``zoo.training.ablate.ablate``."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import typer

from zoo.cli.common import configure_logging

_OVERRIDES_HELP = "settings as KEY=VALUE: epochs=5 optimizer.lr=0.01 attention=ca model_args.data.face_size=[64,64]"


def _split_model_and_overrides(model: str | None, overrides: list[str] | None) -> tuple[str | None, list[str]]:
    overrides = list(overrides or [])
    if model is not None and "=" in model:
        return None, [model, *overrides]
    return model, overrides


def _metrics_summary(metrics: dict) -> str:
    return "  ".join(f"{k} {100 * metrics[k]:.2f}%" for k in ("accuracy", "balanced_accuracy", "macro_f1")
                     if metrics.get(k) is not None)


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler's stop) ends the run as Ctrl-C would: the stack unwinds, so the run lock is
    released and files are closed, instead of the process vanishing mid-write. Exit status 143 (128 + 15)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        print("stopped by SIGTERM; the last checkpoint is kept: continue with the same command, --resume instead of "
              "--overwrite", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def train_command(
    model: Optional[str] = typer.Argument(None, help="recipe, preset or local-dir:DIR (see --list-recipes)"),  # noqa: UP045
    overrides: Optional[list[str]] = typer.Argument(None, help=_OVERRIDES_HELP),  # noqa: UP045
    data: Optional[str] = typer.Option(None, "--data", help="training data spec, e.g. caer_s:/data/CAER-S"),  # noqa: UP045
    val: Optional[str] = typer.Option(None, "--val", help="validation data spec (default: --data, split val)"),  # noqa: UP045
    out: Optional[str] = typer.Option(None, "--out", help="run directory (default runs/<recipe>)"),  # noqa: UP045
    recipe: Optional[str] = typer.Option(None, "--recipe", help="train MODEL with this recipe's settings"),  # noqa: UP045
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out from its last checkpoint"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace the run in a non-empty --out"),
    list_recipes: bool = typer.Option(False, "--list-recipes", help="list the recipes and exit"),
) -> None:
    """Train a model with a paper recipe; writes run_config.json, metrics.jsonl, best/, eval.json."""
    from zoo.training.engine import train
    from zoo.training.recipes import list_recipes as recipes

    if list_recipes:
        for name, description in recipes().items():
            typer.echo(f"{name:<26}{description}")
        return
    model, overrides = _split_model_and_overrides(model, overrides)
    configure_logging()
    with _sigterm_unwinds():
        result = train(model, data=data, val=val, out=out, overrides=overrides, recipe=recipe, resume=resume,
                       overwrite=overwrite)
    typer.echo(f"run directory: {result.out}")
    if result.best_epoch is not None:
        typer.echo(f"best epoch {result.best_epoch}: {_metrics_summary(result.best_metrics)}")
    if result.stopped_early:
        typer.echo("stopped early (no improvement for early_stopping epochs)")


def eval_command(
    model: str = typer.Argument(..., help="preset with published weights, local-dir:DIR (e.g. RUN/best) or "
                                          "hf-hub:REPO"),
    data: str = typer.Option(..., "--data", help="data spec"),
    tta: str = typer.Option("none", "--tta", help="test-time augmentation: none or flip (reported apart)"),
    data_options: Optional[list[str]] = typer.Option(  # noqa: UP045
        None, "--option", "-o", help="dataset reader option KEY=VALUE (repeat), e.g. -o votes=ferplus.csv"),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="weights file to load into MODEL"),  # noqa: UP045
    allow_untrained: bool = typer.Option(False, "--allow-untrained", help="evaluate a preset without weights"),
    split: Optional[str] = typer.Option(  # noqa: UP045
        None, "--split", help="split to evaluate (default val; a dataset with one split folder, e.g. only test/, "
                              "uses that one and says so)"),
    class_map: Optional[str] = typer.Option(  # noqa: UP045
        None, "--class-map", help="JSON object or a JSON file: dataset class -> model class, null to leave a class out, "
                                  "e.g. '{\"contempt\": null, \"happiness\": \"Happy\"}'; only for names the "
                                  "built-in synonyms (Anger/Angry, Happiness/Happy, ...) do not match"),
    batch_size: int = typer.Option(64, "--batch-size"),
    device: str = typer.Option("auto", "--device"),
    amp: str = typer.Option("none", "--amp", help="none, bf16 or fp16 (CUDA)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    plots: Optional[Path] = typer.Option(  # noqa: UP045
        None, "--plots", help="write the confusion matrix (and, for a run's best/, its training curves) here"
    ),
) -> None:
    """Accuracy, balanced accuracy, macro-F1, per-class recall and confusion matrix of MODEL on --data.

    The dataset's classes are matched to the model's by name (Anger/Angry, Happiness/Happy, Sadness/Sad, ...);
    classes the model lacks (FER+'s Contempt for a 7-class model) are left out and counted; --class-map says what
    the names that cannot be matched are."""
    from zoo.factory import create_for_inference
    from zoo.training.evaluate import evaluate
    from zoo.training.settings import parse_key_values

    mapping = _read_class_map(class_map) if class_map is not None else None
    net = create_for_inference(model, checkpoint=checkpoint, allow_untrained=allow_untrained)

    options = parse_key_values(data_options or [], "--option")
    metrics = evaluate(net, data, split=split, batch_size=batch_size, device=device, amp=amp, tta=tta,
                       options=options, class_map=mapping)
    split = metrics["split"]
    metrics["model"] = model
    if plots is not None:
        for path in write_eval_plots(model, metrics, plots):
            typer.echo(f"wrote {path}", err=as_json)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
        return
    typer.echo(f"{model} on {data} ({split}, {metrics['num_samples']} samples"
               + (", flip TTA)" if tta == "flip" else ")"))
    typer.echo(_metrics_summary(metrics))
    for name, count in metrics["dropped"].items():
        typer.echo(f"left out: {name}, {count} samples (the model has no such class)")
    for key in ("kl", "js", "majority_agreement"):
        if key in metrics:
            typer.echo(f"{key}: {metrics[key]:.4f}")
    for name, recall in metrics["per_class_recall"].items():
        typer.echo(f"  recall {name:<12}{'-' if recall is None else f'{100 * recall:.2f}%'}")


def _read_class_map(value: str) -> dict:
    """``--class-map``: a JSON object, or the path of a file holding one."""
    from zoo.errors import ZooError

    path = Path(value).expanduser()
    source = f"--class-map {path}" if path.is_file() else "--class-map"
    text = path.read_text(encoding="utf-8") if path.is_file() else value
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ZooError(f"{source}: {value!r} is neither a JSON object nor a file ({exc.msg}); give e.g. "
                       f"'{{\"contempt\": null, \"happiness\": \"Happy\"}}' or a file holding one.") from None
    if not isinstance(mapping, dict):
        raise ZooError(f"{source}: expected a JSON object of dataset class -> model class (or null), got {text!r}.")
    return mapping


def write_eval_plots(model: str, metrics: dict, folder: Path) -> list[Path]:
    """Confusion matrix of an evaluation; training curves too when MODEL is a run's ``local-dir:RUN/best``."""
    from zoo import viz
    from zoo.names import parse
    from zoo.training.rundir import METRICS_LOG

    paths = [viz.confusion_matrix_figure(metrics["confusion"], list(metrics["per_class_recall"]),
                                         folder / "confusion.png", title=f"{model} ({metrics['num_samples']} samples)")]
    name = parse(model)
    if name.source == "local-dir":
        log = Path(name.path).parent / METRICS_LOG
        if log.exists():
            paths.append(viz.training_curves_figure(viz.metrics_log_rows(log), folder / "training_curves.png",
                                                    title=str(log.parent)))
    return paths


def predict_command(
    inputs: Optional[list[str]] = typer.Argument(  # noqa: UP045
        None, help="images, videos, folders (searched recursively) and quoted globs ('photos/**/*.jpg')"),
    model: Optional[str] = typer.Option(  # noqa: UP045
        None, "--model", help="preset with published weights, local-dir:DIR or hf-hub:REPO (default: the bundled "
                              "FER2013 model)"),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="weights file to load into MODEL"),  # noqa: UP045
    allow_untrained: bool = typer.Option(False, "--allow-untrained", help="run a preset without trained weights"),
    detector: str = typer.Option("auto", "--detector",
                                 help="face detector: auto (mtcnn when its weights are present, else haar), mtcnn, haar"),
    min_score: float = typer.Option(0.0, "--min-score", help="drop faces the detector scored below this"),
    device: str = typer.Option("auto", "--device"),
    batch_size: int = typer.Option(32, "--batch-size", help="faces per forward pass, across images and frames"),
    boxes: Optional[Path] = typer.Option(  # noqa: UP045
        None, "--boxes", help="CSV of path,x1,y1,x2,y2 rows: known face boxes, no detection (images only; "
                              "without INPUTS, the images it lists)"),
    missing_face: str = typer.Option("skip", "--missing-face",
                                     help="an image without a face: skip, whole (it is a face crop), zeros "
                                          "(black face, unmasked scene; context models), error"),
    every: Optional[int] = typer.Option(None, "--every", help="videos: every Nth frame"),  # noqa: UP045
    fps: Optional[float] = typer.Option(None, "--fps", help="videos: F frames per second"),  # noqa: UP045
    camera: Optional[int] = typer.Option(None, "--camera", help="read webcam N (e.g. 0) instead of files"),  # noqa: UP045
    max_frames: Optional[int] = typer.Option(  # noqa: UP045
        None, "--max-frames", help="stop each video / the webcam after N processed frames"),
    save_vis: Optional[str] = typer.Option(  # noqa: UP045
        None, "--save-vis", help="DIR: a PNG per face of each image and DIR/<name>_vis.mp4 per video; "
                                 "OUT.mp4 (or .avi): the annotated video of a single video or the webcam"),
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="write one row per face to this CSV"),  # noqa: UP045
    as_json: bool = typer.Option(False, "--json", help="print JSON (a list with one entry per image / frame)"),
) -> None:
    """Find the faces in images, videos or the webcam and print each face's emotion probabilities.

    Faces are batched across images and frames; frames stream through, so long videos use constant memory.
    Video faces get a track id (IoU tracker) and timestamps. Ctrl-C stops the webcam cleanly.
    """
    from zoo.errors import ZooError
    from zoo.factory import DEFAULT_MODEL, create_for_inference
    from zoo.inference.predict import (
        CsvWriter,
        JsonStreamWriter,
        close_writers,
        iter_frames,
        iter_predictions,
        read_boxes_csv,
        write_visualisations,
    )
    from zoo.inference.video import check_sampling, is_video, iter_video_frames

    check_sampling(every, fps)
    known = read_boxes_csv(boxes) if boxes is not None else None
    if camera is not None and (inputs or known is not None):
        raise ZooError("--camera reads the webcam; give no INPUTS and no --boxes with it.")
    if not inputs and camera is None:
        if known is None:
            raise ZooError("Nothing to predict: give images, videos, folders or globs, --boxes FILE, or --camera N.")
        inputs = list(known)
    video_file = None
    if save_vis is not None and is_video(save_vis):
        video_file = Path(save_vis)
        videos = camera is not None or (len(inputs or []) == 1 and is_video(inputs[0]))
        if not videos:
            raise ZooError(f"--save-vis {save_vis} is a video file: use it with one video or --camera; for images "
                           f"give a folder.")
    net = create_for_inference(model or DEFAULT_MODEL, checkpoint=checkpoint, allow_untrained=allow_untrained)
    logging.getLogger("zoo.cli.predict").info(
        "model: %s%s, %s", model or DEFAULT_MODEL, " (the default)" if model is None else "",
        "face + context" if net.config.uses_context else "face only")
    if camera is not None:
        frames = iter_video_frames(camera, every=every, fps=fps, max_frames=max_frames)
    else:
        frames = iter_frames(inputs, every=every, fps=fps, max_frames=max_frames, boxes=known)
    names = list(net.label_names)
    csv_writer = CsvWriter(csv_out, names) if csv_out is not None else None
    json_writer = JsonStreamWriter(typer.echo) if as_json else None
    table = _PredictTable(names, inputs or [f"camera:{camera}"]) if not as_json else None
    writers: dict = {}
    counts = {"frames": 0, "faces": 0}
    try:
        for pred in iter_predictions(frames, net, detector=detector, device=device, min_score=min_score,
                                     batch_size=batch_size, missing_face=missing_face,
                                     keep_inputs=lambda frame: save_vis is not None and not frame.is_video):
            if save_vis is not None:
                write_visualisations(pred, net.config.data, Path(save_vis), writers, video_file=video_file)
            counts["frames"] += 1
            counts["faces"] += len(pred.entry["faces"])
            if csv_writer is not None:
                csv_writer.write(pred.entry)
            if json_writer is not None:
                json_writer.write(pred.entry)
            if table is not None:
                table.write(pred.entry)
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)
    finally:
        close_writers(writers)
        if csv_writer is not None:
            csv_writer.close()
        if json_writer is not None:
            json_writer.close()
    if not as_json:  # stdout stays pure JSON with --json
        if csv_out is not None:
            typer.echo(f"wrote {csv_writer.rows} rows to {csv_out}")
        if save_vis is not None:
            typer.echo(f"visualisations in {save_vis}")


class _PredictTable:
    """The plain-text table of ``zoo-cli predict``, printed row by row as frames arrive."""

    def __init__(self, names: list[str], sources: list[str]) -> None:
        self.names = names
        source_width = max([len("image"), *(len(str(s)) for s in sources)])
        self.widths = [source_width + (16 if any(_looks_like_video(s) for s in sources) else 0), 4, 19,
                       max([len("emotion"), *(len(n) for n in names)]), *(max(5, len(n)) for n in names)]
        self._header = False

    def _row(self, cells: list[str]) -> None:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(cells, self.widths, strict=True)).rstrip())

    def write(self, entry: dict) -> None:
        source = entry["image"]
        if "frame" in entry:
            source = f"{source}#{entry['frame']}@{entry['timestamp']:.2f}s"
        if not entry["faces"]:
            if "frame" not in entry:
                typer.echo(f"{source}: {entry.get('note', 'no face found')}")
            return
        if not self._header:
            self._row(["image", "face", "box", "emotion", *self.names])
            self._header = True
        for face in entry["faces"]:
            box = ",".join(str(round(v)) for v in face["box"]) if face["box"] is not None else "-"
            label = face["label"] + (f"#{face['track']}" if face.get("track") is not None else "")
            self._row([source, str(face["face"]), box, label, *(f"{face['probs'][n]:.3f}" for n in self.names)])


def _looks_like_video(source: str) -> bool:
    from zoo.inference.video import is_video

    return str(source).startswith("camera:") or is_video(source) or Path(str(source)).is_dir() or "*" in str(source)


def ablate_command(
    base: str = typer.Argument("glamor_net", help="recipe or preset every cell starts from"),
    overrides: Optional[list[str]] = typer.Argument(None, help=_OVERRIDES_HELP),  # noqa: UP045
    data: str = typer.Option(..., "--data", help="training data spec"),
    grid: list[str] = typer.Option(..., "--grid", help="KEY=V1,V2,... (repeat for more axes)"),
    val: Optional[str] = typer.Option(None, "--val", help="validation data spec"),  # noqa: UP045
    out: str = typer.Option("runs/ablate", "--out", help="directory for the cells and the tables"),
    recipe: Optional[str] = typer.Option(None, "--recipe"),  # noqa: UP045
) -> None:
    """Train every cell of a grid (seeded, resumable) and write ablation.md and ablation.csv."""
    from pathlib import Path

    from zoo.training.ablate import ablate

    base_name, overrides = _split_model_and_overrides(base, overrides)
    configure_logging()
    ablate(data, grid, base=base_name or "glamor_net", val=val, out=out, overrides=overrides, recipe=recipe)
    typer.echo((Path(out) / "ablation.md").read_text())


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("train", context_settings={"allow_extra_args": False})(train_command)
    app.command("eval")(eval_command)
    app.command("predict")(predict_command)
    app.command("ablate")(ablate_command)
