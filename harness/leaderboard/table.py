"""A leaderboard as a pandas table: one row per (task, device, model), a rank, and for each headline
figure its value, interval, count and flags.

A headline whose slice is a glob (``detector=*,set=digits``) shows, per model, the best of the
records it matches (the best detector), or the worst where the headline picks it (the strongest
privacy attack), with that record's slice and interval.

The headline figures are data (each suite's ``leaderboard:`` in its YAML), so a new metric reaches
the leaderboard by being declared there, not by code here. A figure that depends on the device it
was measured on (a metric that ``needs`` a device: efficiency) puts the model on one row per device;
every other figure is the same on each of them.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from harness import slices
from harness.config import Headline
from harness.records import Record

ANY_DEVICE = "any"


@cache
def device_dependent(name: str) -> bool:
    """Whether the metric whose records carry ``name`` (``efficiency.params``) depends on the device."""
    from harness.measures import metric_of
    from harness.registry import metrics

    metric = metric_of(name)
    return metric is not None and "device" in metrics.get(metric).needs


@dataclass(frozen=True)
class Column:
    headline: Headline
    category: str
    direction: str


@dataclass
class Board:
    """The rows (a DataFrame) and what they mean: the headline columns in order and the sort."""

    frame: pd.DataFrame
    columns: list[Column]
    sort: str  # the label of the column ranked by
    runs: list[str] = field(default_factory=list)


def match(record: Record, headline: Headline) -> bool:
    """Whether ``record`` is (one of) the headline's: the same metric, and a slice with the same keys
    whose values match the headline's, globs included (``attack=*`` does not match
    ``attack=loss,class=Coat``)."""
    if record.metric != headline.metric:
        return False
    if "*" not in headline.slice:
        return record.slice == headline.slice
    wanted, found = slices.parse(headline.slice), record.parts
    return set(wanted) == set(found) and all(fnmatch.fnmatchcase(found[k], v) for k, v in wanted.items())


def chosen_over(record: Record, other: Record, pick: str) -> bool:
    """Whether a glob headline that picks the ``best`` (or ``worst``) shows ``record`` rather than
    ``other``: a finite value before a NaN, then by the measure's direction; ties go to the first slice."""
    if not (np.isfinite(record.value) and np.isfinite(other.value)):
        return bool(np.isfinite(record.value))
    if record.value == other.value:
        return record.slice < other.slice
    beats = (record.value > other.value) == (record.direction == "higher")
    return beats if pick == "best" else not beats


def build(records: list[Record], headlines: list[Headline], *, sort: str | None = None) -> Board:
    """The leaderboard of ``records`` on ``headlines`` (those no record matches are left out)."""
    present = [h for h in headlines if any(match(r, h) for r in records)]
    columns = []
    for h in present:
        first = next(r for r in records if match(r, h))
        columns.append(Column(h, h.category or first.category, first.direction))
    cells: dict[tuple[str, str, str], dict[str, Record]] = {}
    devices: dict[tuple[str, str], set[str]] = {}
    for r in records:  # the devices a model has headline figures on
        if device_dependent(r.metric) and any(match(r, c.headline) for c in columns):
            devices.setdefault((r.task, r.model), set()).add(str(r.provenance.get("device", ANY_DEVICE)))
    for r in records:
        for c in columns:
            if not match(r, c.headline):
                continue
            if device_dependent(r.metric):
                where = [str(r.provenance.get("device", ANY_DEVICE))]
            else:
                where = sorted(devices.get((r.task, r.model), {ANY_DEVICE}))
            for device in where:
                cell = cells.setdefault((r.task, device, r.model), {})
                held = cell.get(c.headline.label)
                if held is None or chosen_over(r, held, c.headline.pick):  # a glob shows the best or the worst
                    cell[c.headline.label] = r
    rows = []
    for (task, device, model), found in cells.items():
        row: dict[str, Any] = {"task": task, "device": device, "model": model}
        flags: list[str] = []
        for c in columns:
            r = found.get(c.headline.label)
            label = c.headline.label
            row[label] = r.value if r else np.nan
            row[f"{label} low"] = r.ci_low if r else np.nan
            row[f"{label} high"] = r.ci_high if r else np.nan
            row[f"{label} n"] = r.n if r else 0
            row[f"{label} job"] = r.job if r else ""
            row[f"{label} interval"] = r.interval if r else ""
            row[f"{label} slice"] = r.slice if r else ""
            flags += [f for f in (r.flags if r else ()) if f not in flags]
        row["flags"] = ";".join(flags)
        row["runs"] = ";".join(sorted({r.run_id for r in found.values()}))
        rows.append(row)
    frame = pd.DataFrame(rows)
    labels = [c.headline.label for c in columns]
    if sort is not None and sort not in labels:
        raise ValueError(f"cannot sort by {sort!r}: the leaderboard's columns are {', '.join(labels)}")
    if not frame.empty and columns:
        directions = {c.headline.label: c.direction for c in columns}
        parts = []
        for _, part in frame.groupby(["task", "device"], sort=True):
            # rank by the asked column, or by the first one this task has figures for
            by = sort or next((label for label in labels if part[label].notna().any()), labels[0])
            part = part.assign(rank=part[by].rank(method="min", ascending=directions[by] == "lower"), ranked_by=by)
            parts.append(part.sort_values(["rank", "model"], na_position="last"))
        frame = pd.concat(parts, ignore_index=True)
        frame["rank"] = frame["rank"].astype("Int64")
        first = ["task", "device", "rank", "model"]
        frame = frame[[*first, *[c for c in frame.columns if c not in first]]]
    sort_label = sort or (labels[0] if labels else "")
    runs = sorted({r.run_id for cell in cells.values() for r in cell.values()})
    return Board(frame, columns, sort_label, runs)
