"""``zoo-cli predict``: a thin layer over :func:`zoo.inference.run.predict_and_write`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from zoo.inference.defaults import DEFAULT_MODEL


def predict_command(
    inputs: Optional[list[str]] = typer.Argument(  # noqa: UP045
        None, help="images, videos, folders (searched recursively) and quoted globs ('photos/**/*.jpg')"),
    model: Optional[str] = typer.Option(  # noqa: UP045
        None, "--model", help="preset with published weights, local-dir:DIR or hf-hub:REPO (default: "
                              f"{DEFAULT_MODEL}, one face model for web photos and face crops alike; "
                              "glamor_fer_cnn.expw adds the scene)"),
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
        None, "--save-vis", help="DIR: one annotated PNG per photo (every face boxed with its label and "
                                 "probability, probability bars, attention panels) and DIR/<name>_vis.mp4 per "
                                 "video; OUT.mp4 (or .avi): the annotated video of a single video or the webcam"),
    vis_attention: bool = typer.Option(
        True, "--vis-attention/--no-vis-attention",
        help="--save-vis: draw the context attention (photo panels, video overlay)"),
    on_error: str = typer.Option(
        "auto", "--on-error", help="an input that cannot be read: skip (record its error, go on, exit 1 at the "
                                   "end), raise (stop); auto skips files of folders / globs and videos"),
    tta: str = typer.Option("none", "--tta", help="test-time augmentation: none, flip (average with the mirror)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar (it shows only on a terminal)"),
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="write one row per face to this CSV"),  # noqa: UP045
    as_json: bool = typer.Option(False, "--json", help="print JSON (a list with one entry per image / frame)"),
    force: bool = typer.Option(False, "--force", help="replace an existing --csv / --save-vis file, or write into "
                                                      "a non-empty --save-vis folder"),
) -> None:
    """Find the faces in images, videos or the webcam and print each face's emotion probabilities.

    Faces are batched across images and frames; frames stream through, so long videos use constant memory.
    Video faces get a track id (IoU tracker) and timestamps. Ctrl-C stops the webcam cleanly. An input that
    cannot be read is recorded with its error and the run goes on (--on-error); the exit code is then 1.
    Output fields: docs/prediction.md.
    """
    from zoo.inference.run import predict_and_write

    summary = predict_and_write(
        inputs, model=model, checkpoint=checkpoint, allow_untrained=allow_untrained, detector=detector,
        min_score=min_score, device=device, batch_size=batch_size, boxes=boxes, missing_face=missing_face,
        every=every, fps=fps, camera=camera, max_frames=max_frames, save_vis=save_vis, csv_out=csv_out,
        as_json=as_json, on_error=on_error, tta=tta, vis_attention=vis_attention, progress=False if quiet else None,
        force=force, echo=typer.echo, echo_err=lambda text: typer.echo(text, err=True))
    if not as_json:  # stdout stays pure JSON with --json
        if csv_out is not None:
            typer.echo(f"wrote {summary.csv_rows} rows to {csv_out}")
        if save_vis is not None:
            typer.echo(f"visualisations in {save_vis}")
    if summary.failed:
        where = f"their rows in {csv_out} have an 'error'" if csv_out is not None else (
            "their entries have an 'error'" if as_json else "listed above with 'error:'")
        shown = ", ".join(summary.failed[:5]) + (", ..." if len(summary.failed) > 5 else "")
        typer.echo(f"{len(summary.failed)} of {summary.frames} inputs failed ({shown}); {where}.", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("predict")(predict_command)
