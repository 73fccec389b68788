"""Leaderboards as text: terminal tables (rich), Markdown, CSV and JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness import slices
from harness import text as doc
from harness.leaderboard.table import Board, Column
from harness.leaderboard.ties import tie_mark
from harness.measures import format_value

LEGEND = ("± the larger side of the 95% interval (methods in docs/metrics.md; a range is the min-max of repeated "
          "timings, not an interval), n the examples (or repeats) measured (of a group: its size; of a gap between "
          "groups: the smallest group's; of the worst group: that group's); "
          "↑ higher is better, ↓ lower; ≈ not significantly "
          "different from the best in its column (paired test on the same examples where the store has them, "
          "Holm-adjusted; otherwise overlapping CIs)")  # fmt: skip


def chosen(pattern: str, found: str) -> str:
    """`` (knn)``: what a glob headline (``detector=*,set=digits``) picked for this row, else ""."""
    if "*" not in pattern or not found:
        return ""
    wanted = [k for k, v in slices.parse(pattern).items() if "*" in v]
    picked = [v for k, v in slices.parse(found).items() if k in wanted and "*" not in v]
    return f" ({', '.join(picked)})" if picked else ""


def cells(board: Board) -> list[dict[str, str]]:
    """Each row as display strings: rank, model, one formatted figure per column, flags."""
    out = []
    for _, row in board.frame.iterrows():
        rank = "" if row["rank"] is pd.NA or row["rank"] is None else str(row["rank"])
        shown = {"task": row["task"], "device": row["device"], "rank": rank, "model": row["model"]}
        for c in board.columns:
            label = c.headline.label
            text = format_value(c.headline.metric, row[label], row[f"{label} low"], row[f"{label} high"])
            if text and row.get(f"{label} interval") == "range":  # repeats' min-max: a spread, not a CI
                text = f"{format_value(c.headline.metric, row[label], row[label], row[label])} " \
                       f"(range {row[f'{label} low']:,.4g}-{row[f'{label} high']:,.4g})"  # fmt: skip
            if text:
                text += chosen(c.headline.slice, row.get(f"{label} slice", "")) + f" n={int(row[f'{label} n']):,}"
            shown[label] = text + tie_mark(row.get(f"{label} tie"))
        shown["flags"] = row["flags"].replace(";", ", ")
        out.append(shown)
    return out


@dataclass
class Group:
    """The rows of one (task, device), the columns that have a figure there, and the ranking column."""

    task: str
    device: str
    columns: list[Column]
    ranked_by: str
    rows: list[dict[str, str]]

    @property
    def headers(self) -> list[str]:
        arrows = [f"{c.headline.label} {'↑' if c.direction == 'higher' else '↓'}" for c in self.columns]
        return ["rank", "model", *arrows, "flags"]

    def values(self, row: dict[str, str]) -> list[str]:
        return [row["rank"], row["model"], *[row[c.headline.label] for c in self.columns], row["flags"]]


def groups(board: Board) -> list[Group]:
    """The (task, device) groups in order."""
    out: list[Group] = []
    shown = cells(board)
    for (task, device), part in board.frame.groupby(["task", "device"], sort=False):
        columns = [c for c in board.columns if part[c.headline.label].notna().any()]
        rows = [row for row in shown if (row["task"], row["device"]) == (task, device)]
        out.append(Group(str(task), str(device), columns, str(part["ranked_by"].iloc[0]), rows))
    return out


def markdown(board: Board, title: str) -> str:
    escape = doc.markdown
    lines = [f"# {escape(title)}", "", f"{escape(LEGEND)}.", ""]
    for group in groups(board):
        lines += [f"## {escape(group.task)} · {escape(group.device)} (ranked by {escape(group.ranked_by)})", ""]
        lines.append("| " + " | ".join(escape(h) for h in group.headers) + " |")
        lines.append("|" + "|".join(" --- " for _ in group.headers) + "|")
        for row in group.rows:
            lines.append("| " + " | ".join(escape(v) for v in group.values(row)) + " |")
        lines.append("")
    return "\n".join(lines)


def as_json(board: Board) -> str:
    rows: list[dict[str, Any]] = []
    for _, row in board.frame.iterrows():  # every column, with the ranking column of its group
        figures = {}
        for c in board.columns:
            label = c.headline.label
            if not math.isnan(row[label]):
                figures[label] = {
                    "metric": c.headline.metric, "slice": row.get(f"{label} slice") or c.headline.slice,
                    "value": row[label],
                    "ci_low": row[f"{label} low"], "ci_high": row[f"{label} high"], "n": int(row[f"{label} n"]),
                    "direction": c.direction, "category": c.category,
                }  # fmt: skip
                tie = row.get(f"{label} tie")
                if tie is not None and tie is not pd.NA:
                    figures[label]["tie_with_best"] = bool(tie)
                    figures[label]["tie_by"] = row[f"{label} tie by"]
        rank = None if row["rank"] is None or row["rank"] is pd.NA else int(row["rank"])
        rows.append({
            "task": row["task"], "device": row["device"], "rank": rank, "ranked_by": row["ranked_by"],
            "model": row["model"], "figures": figures,
            "flags": [f for f in row["flags"].split(";") if f],
        })  # fmt: skip
    return json.dumps({"sort": board.sort, "rows": rows}, indent=1, default=float) + "\n"


def csv(board: Board) -> str:
    """Every column (run ids, which change with every run, are in the HTML page's provenance)."""
    return doc.csv_frame(board.frame.drop(columns=["runs"])).to_csv(index=False)


def terminal(board: Board, console: Any, title: str) -> None:
    """One table per (task, device); a group wider than the terminal continues in further tables that
    repeat the rank and the model, numbered (1/3, 2/3...)."""
    from rich.table import Table
    from rich.text import Text  # strings from the store are text, never rich markup

    for group in groups(board):
        heading = f"{title}: {group.task} · {group.device} (ranked by {group.ranked_by})"
        headers, rows = group.headers, [group.values(row) for row in group.rows]
        width = [max(len(h), *(len(r[i]) for r in rows)) + 3 for i, h in enumerate(headers)]
        fixed = width[0] + width[1] + 1
        parts: list[list[int]] = [[]]
        for i in range(2, len(headers)):
            if parts[-1] and fixed + sum(width[j] for j in parts[-1]) + width[i] > console.width:
                parts.append([])
            parts[-1].append(i)
        for k, part in enumerate(parts, 1):
            label = heading if len(parts) == 1 else f"{heading} ({k}/{len(parts)})"
            table = Table(title=Text(label), title_justify="left")
            for i in (0, 1, *part):
                h = headers[i]
                table.add_column(h, justify="left" if h in ("model", "flags") else "right", no_wrap=True)
            for r in rows:
                table.add_row(*[Text(r[i]) for i in (0, 1, *part)])
            console.print(table)
    console.print(Text(LEGEND))
