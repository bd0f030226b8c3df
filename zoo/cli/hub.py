"""``zoo-cli pull / push / convert``: the Hugging Face Hub and weight conversion."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from zoo.cli.common import echo_fields


def pull_command(
    names: list[str] = typer.Argument(..., help="presets with a tag (fer_cnn.expw) or hf-hub:ORG/NAME[@REV]"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Download models' config.json and weights into the Hugging Face cache, for offline use."""
    from zoo.weights.sources import prefetch

    rows = [prefetch(name) for name in names]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        if "package" in row:  # weights shipped inside the package: nothing was downloaded
            typer.echo(f"{row['name']}: {row['note']}")
        else:
            typer.echo(f"{row['name']}: {row['hf_hub_id']}@{row['revision']} -> commit {row['commit']}")
        typer.echo(f"  {Path(row['weights']).parent}")


def push_command(
    path: Path = typer.Argument(..., help="a model dir (config.json + model.safetensors) or a training run dir"),
    repo_id: str = typer.Option(..., "--repo-id", help="ORG/NAME on the Hub (created if missing)"),
    revision: str = typer.Option(None, "--revision", help="branch to commit to (default main; created from main if missing)"),
    private: bool = typer.Option(False, "--private", help="create the repo private"),
    create_pr: bool = typer.Option(False, "--create-pr", help="open a pull request instead of committing"),
    tag: str = typer.Option(None, "--tag", help="also tag the new commit"),
    license: str = typer.Option("apache-2.0", "--license", help="license id for the card's front matter"),
    overwrite_card: bool = typer.Option(False, "--overwrite-card", help="replace an existing README.md"),
    card_template: Path = typer.Option(None, "--card-template", help="render this template instead"),
    message: str = typer.Option(None, "--message", "-m", help="commit message"),
    evaluations: list[Path] = typer.Option(
        None, "--eval", help="`zoo-cli eval --json` output for the card's model-index instead of the run's "
                             "eval.json (repeat: the first is the headline, e.g. single crop, then --tta flip)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="write the files push would upload to --out; send nothing"),
    out: Path = typer.Option(None, "--out", help="with --dry-run: the folder to write"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Upload config.json, model.safetensors and a model card; print the commit id to pin."""
    from zoo.errors import HubError
    from zoo.publish.push import push_to_hub, stage_push_folder

    if dry_run or out is not None:
        if not (dry_run and out is not None):
            raise HubError("--dry-run and --out go together: `zoo-cli push RUN --repo-id ORG/NAME --dry-run --out DIR` "
                           "writes the folder push would upload.")
        staged = stage_push_folder(path, repo_id, out, license=license, card_template=card_template,
                                   evaluations=evaluations)
        if as_json:
            typer.echo(json.dumps(staged, indent=2))
            return
        typer.echo(f"dry run: wrote {', '.join(staged['files'])} to {out} (nothing was sent)")
        return

    result = push_to_hub(path, repo_id, revision=revision, private=private, create_pr=create_pr, tag=tag,
                         license=license, overwrite_card=overwrite_card, card_template=card_template,
                         commit_message=message, evaluations=evaluations)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(f"pushed {result['source']} to {repo_id} ({result['revision']})")
    echo_fields([
        ("model card", "written" if result["card_written"] else "kept the existing README.md"),
        ("pull request", result["pr_url"] or None),
        ("tag", result["tag"] or None),
        ("commit", result["commit"]),
        ("pin it", f"zoo.create(\"hf-hub:{repo_id}@{result['commit']}\")"),
    ])


def convert_command(
    source: str = typer.Argument(..., help="caer-port (ndkhanh360/CAER .pth) or glamor-tf (TF2 checkpoint prefix)"),
    checkpoint: Path = typer.Argument(..., help="the source checkpoint"),
    out_dir: Path = typer.Argument(..., help="model directory to write (config.json + model.safetensors)"),
) -> None:
    """Import weights from a reference implementation into an emotion-zoo model directory."""
    from zoo.publish.convert import CONVERTERS, ConversionError

    if source not in CONVERTERS:
        raise ConversionError(f"Unknown conversion source {source!r}; choose one of {', '.join(CONVERTERS)}.")
    directory = CONVERTERS[source](checkpoint, out_dir)
    typer.echo(f"wrote {directory} (load it with zoo.create('local-dir:{directory}'), push it with zoo-cli push)")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("pull")(pull_command)
    app.command("push")(push_command)
    app.command("convert")(convert_command)
