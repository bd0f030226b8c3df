"""Ablation grids like GLAMOR-Net's Table 2 (Le et al., 2022): one seeded training run per cell of a grid
of overrides (``attention=none,ca,gla`` × ``streams=face,context,context_guided,both``; ``context_guided``:
context-only models whose GLA still reads the face vector), resumable, summarised in
``OUT/ablation.md`` and ``OUT/ablation.csv``.
"""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path
from typing import Any

from zoo.errors import ConfigError
from zoo.factory import create
from zoo.models.info import count_parameters
from zoo.training.engine import train
from zoo.training.rundir import BEST_DIR, EVAL_JSON, LAST_CHECKPOINT
from zoo.training.settings import RecipeError, parse_key_values, parse_value

METRIC_COLUMNS = ("accuracy", "balanced_accuracy", "macro_f1")


def parse_grid(items: list[str] | dict[str, Any]) -> dict[str, list[Any]]:
    """``["attention=none,ca,gla", "streams=face,both"]`` -> ``{"attention": ["none", "ca", "gla"], ...}``."""
    if isinstance(items, dict):
        return {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in items.items()}
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise RecipeError(f"--grid {item!r} is not KEY=V1,V2,... (e.g. --grid attention=none,ca,gla).")
        if key.strip() in grid:
            raise RecipeError(f"--grid names {key.strip()!r} twice; list all its values in one --grid.")
        grid[key.strip()] = [parse_value(v.strip()) for v in values.split(",")]
    if not grid:
        raise RecipeError("ablate needs at least one --grid KEY=V1,V2,...")
    return grid


def cell_name(cell: dict[str, Any]) -> str:
    return "_".join(f"{k}-{v}" for k, v in cell.items()).replace("/", "-").replace(":", "-")


def ablate(
    data: str,
    grid: list[str] | dict[str, Any],
    base: str = "glamor_net",
    val: str | None = None,
    out: str | Path = "runs/ablate",
    overrides: dict[str, Any] | list[str] | None = None,
    recipe: str | None = None,
) -> list[dict[str, Any]]:
    """Train every cell of ``grid`` over ``base`` and return one row per cell (also written as MD and CSV).

    A cell whose run finished (``eval.json`` exists) is read back; a cell with a checkpoint is resumed.
    A combination the model cannot be built with (e.g. ``streams=context`` with ``attention=gla``, or
    ``streams=context_guided`` with an attention that ignores the face) is reported in the table, not trained.
    """

    grid = parse_grid(grid)
    out = Path(out)
    if isinstance(overrides, list):
        overrides = parse_key_values(overrides, "Override")
    rows = []
    for values in itertools.product(*grid.values()):
        cell = dict(zip(grid, values, strict=True))
        run_dir = out / cell_name(cell)
        row: dict[str, Any] = {**cell}
        try:
            if (run_dir / EVAL_JSON).exists():
                metrics = json.loads((run_dir / EVAL_JSON).read_text())
                row["status"] = "done (read back)"
            else:
                resume = (run_dir / LAST_CHECKPOINT).exists()
                # a cell stopped before its first checkpoint has nothing to keep: start it again
                result = train(base, data=data, val=val, out=run_dir, overrides={**(overrides or {}), **cell},
                               recipe=recipe, resume=resume, overwrite=not resume)
                metrics = result.eval_metrics
                row["status"] = "resumed" if resume else "trained"
            model = create(f"local-dir:{run_dir / BEST_DIR}")
            row["params"] = count_parameters(model, trainable_only=False)
            row.update({k: metrics.get(k) for k in METRIC_COLUMNS})
        except ConfigError as exc:
            row.update({"status": f"not buildable: {exc}", "params": None, **dict.fromkeys(METRIC_COLUMNS)})
        rows.append(row)
    out.mkdir(parents=True, exist_ok=True)
    write_tables(rows, list(grid), out)
    return rows


def write_tables(rows: list[dict[str, Any]], keys: list[str], out: Path) -> None:
    columns = [*keys, *METRIC_COLUMNS, "params", "status"]
    with open(out / "ablation.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c) for c in columns})

    def fmt(value: Any, column: str) -> str:
        if value is None:
            return "–"
        if column in METRIC_COLUMNS:
            return f"{100 * value:.2f}"
        if column == "params":
            return f"{value:,}"
        return str(value)

    lines = ["| " + " | ".join(c if c not in METRIC_COLUMNS else f"{c} (%)" for c in columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c), c) for c in columns) + " |" for row in rows]
    (out / "ablation.md").write_text("\n".join(lines) + "\n")

