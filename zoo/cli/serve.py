"""``zoo-cli serve``: the Gradio web page (``pip install 'emotion-zoo[app]'``)."""

from __future__ import annotations

from pathlib import Path

import typer


def serve_command(
    model: str = typer.Option(None, "--model", "-m",
                              help="model preselected in the picker (default: the first pretrained tag or model "
                                   "directory found, else the untrained glamor_net)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0 exposes it to the network)"),
    port: int = typer.Option(None, "--port", "-p", help="port (default: the first free one from 7860)"),
    models_dir: list[Path] = typer.Option(None, "--models-dir",
                                          help="offer every model directory (config.json + model.safetensors) "
                                               "under this folder; repeatable"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    max_upload_mb: float = typer.Option(None, "--max-upload-mb",
                                        help="largest upload accepted, in MB (default: 20)"),
) -> None:
    """A web page: upload a photo, take a webcam shot or pick an example; see each face's emotion and, for
    context models, where the model looked."""
    from zoo.apps.webapp import serve

    limit = {} if max_upload_mb is None else {"max_upload_mb": max_upload_mb}
    serve(model, host=host, port=port, models_dirs=list(models_dir or []), device=device, block=True, **limit)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("serve")(serve_command)
