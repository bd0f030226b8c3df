"""``zoo-cli list / components / info / plugins``."""

from __future__ import annotations

import json

import typer

from zoo.cli.common import echo_fields


def _echo_json(obj) -> None:
    typer.echo(json.dumps(obj, indent=2))


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    typer.echo(line.rstrip())
    typer.echo("  ".join("-" * w for w in widths))
    for row in rows:
        typer.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def list_command(
    pattern: str = typer.Argument("*", help="fnmatch pattern, e.g. 'glamor*'"),
    pretrained: bool = typer.Option(False, "--pretrained", help="only models with published weights, per tag"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """List the model presets with their components and pretrained tags."""
    from zoo.names import split_model_name_tag
    from zoo.registry.plugins import get_preset, list_models

    rows = []
    for name in list_models(pattern, pretrained=pretrained):
        arch, tag = split_model_name_tag(name)
        preset = get_preset(arch)
        args = preset.model_args
        streams = args.get("streams", "both")
        row = {
            "name": name,
            "streams": streams,
            "backbone": args.get("backbone", "caer_cnn"),
            "attention": args.get("attention", "gla") if streams != "face" else "-",
            "fusion": args.get("fusion", "adaptive") if streams == "both" else "-",
            "target": args.get("target", "onehot"),
            "tags": preset.tags,
            "plugin": preset.plugin,
            "description": preset.description,
        }
        if tag is not None:
            cfg = preset.pretrained_cfg(tag)
            row.update(hf_hub_id=cfg.hf_hub_id, revision=cfg.revision, file=cfg.file, dataset=cfg.dataset,
                       metrics=dict(cfg.metrics))
        rows.append(row)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        typer.echo(f"no models match {pattern!r}" + (" with published weights" if pretrained else ""))
        return
    if pretrained:
        _table([[r["name"], f"package:{r['file']}" if r["file"] else r["hf_hub_id"] or "-", r["revision"] or "-",
                 r["dataset"] or "-", ",".join(f"{k}={v:.3f}" for k, v in r["metrics"].items()) or "-"]
                for r in rows], ["model", "repo", "revision", "dataset", "metrics"])
    else:
        _table(
            [[r["name"], r["streams"], r["backbone"], r["attention"], r["fusion"], r["target"], ",".join(r["tags"]) or "-"]
             for r in rows],
            ["model", "streams", "backbone", "attention", "fusion", "target", "tags"],
        )


def components_command(
    kind: str | None = typer.Argument(None, help="backbone, attention, fusion, target, ..."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List the registered components by kind, with the plugin that provides each."""
    from zoo.registry.plugins import component_registry, list_components

    kinds = list(list_components(kind))
    rows = []
    for k in kinds:
        for entry in component_registry(k).entries():
            rows.append({"kind": k, "name": entry.name + ("<name>" if entry.prefix else ""),
                         "plugin": entry.plugin, "description": entry.description})
    if as_json:
        _echo_json(rows)
        return
    _table([[r["kind"], r["name"], r["plugin"], r["description"]] for r in rows], ["kind", "name", "plugin", "description"])


def info_command(
    model: str = typer.Argument(..., help="preset name, local-dir:DIR or hf-hub:ORG/NAME"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Components, parameter count, input sizes and FLOPs of a model at its default input."""
    from zoo.factory import model_info

    info = model_info(model)
    if as_json:
        _echo_json(info)
        return
    face, context = info["face_size"], info["context_size"]
    echo_fields([("model", model)], width=13)
    for key, value in info["components"].items():
        typer.echo(f"  {key + ':':<18}{value}")
    echo_fields([
        ("classes", f"{info['num_classes']} ({', '.join(info['label_names'])})"),
        ("parameters", f"{info['parameters']:,} trainable"),
        ("face input", f"3×{face[0]}×{face[1]}" if face else None),
        ("context input", f"3×{context[0]}×{context[1]}" if context else None),
        ("mean / std", f"{info['mean']} / {info['std']}"),
        ("FLOPs", f"{info['gflops']:.3f} GFLOPs per image (forward)"),
    ], width=13)


def plugins_command(
    as_json: bool = typer.Option(False, "--json"),
    all_plugins: bool = typer.Option(False, "--all", help="include the built-in plugins"),
) -> None:
    """Installed plugins: name, version, hooks and load errors."""
    from zoo.registry.plugins import plugin_infos

    infos = [i for i in plugin_infos() if all_plugins or not i.builtin]
    if as_json:
        _echo_json([i.as_dict() for i in infos])
        return
    if not infos:
        typer.echo("no third-party plugins loaded (use --all to include the built-ins)")
        return
    _table(
        [[i.name, i.version or "-", ",".join(i.hooks) or "-", i.error or "ok"] for i in infos],
        ["plugin", "version", "hooks", "status"],
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("list")(list_command)
    app.command("components")(components_command)
    app.command("info")(info_command)
    app.command("plugins")(plugins_command)
