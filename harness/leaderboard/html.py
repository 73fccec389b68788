"""The leaderboard as one self-contained HTML page: CSS, script and pictures inlined (no network
needed to open it), a sortable table per task and device, a tab per category, plots, the stored
figures (corruption and attribution grids), and each model's provenance. Every string that comes
from the store is escaped."""

from __future__ import annotations

import base64
import math
from html import escape
from pathlib import Path

import pandas as pd

from harness.leaderboard import plots
from harness.leaderboard.render import LEGEND, groups
from harness.leaderboard.table import Board
from harness.records import Record

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 1.6rem; }
nav button { font: inherit; border: 1px solid #bbb; background: #f4f4f4; padding: .3rem .8rem; cursor: pointer; }
nav button.active { background: #2b5797; color: #fff; border-color: #2b5797; }
table { border-collapse: collapse; margin: .6rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .6rem; text-align: right; white-space: nowrap; }
th { cursor: pointer; background: #fafafa; position: sticky; top: 0; }
td.model, th.model, td.flags { text-align: left; } td.flags { color: #b00; white-space: normal; }
th.sorted-asc::after { content: " \\25B2"; } th.sorted-desc::after { content: " \\25BC"; }
figure { display: inline-block; margin: .5rem 1rem .5rem 0; vertical-align: top; }
figure img { max-width: min(95vw, 1300px); border: 1px solid #eee; } figcaption { font-size: .85rem; color: #555; }
.note { color: #555; font-size: .9rem; }
"""

SCRIPT = """
function showTab(tab) {
  document.querySelectorAll('nav button').forEach(b => b.classList.toggle('active', b.dataset.tab === tab));
  document.querySelectorAll('[data-category]').forEach(el => {
    el.hidden = tab !== 'all' && el.dataset.category !== tab;
  });
}
function sortBy(th) {
  const table = th.closest('table');
  const index = Array.from(th.parentNode.children).indexOf(th);
  const descending = !th.classList.contains('sorted-desc');
  table.querySelectorAll('th').forEach(h => h.classList.remove('sorted-asc', 'sorted-desc'));
  th.classList.add(descending ? 'sorted-desc' : 'sorted-asc');
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const key = row => {
    const cell = row.cells[index];
    const value = cell.dataset.value;
    return value === undefined || value === '' ? null : (isNaN(Number(value)) ? value : Number(value));
  };
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === null) return 1;
    if (y === null) return -1;
    const order = x < y ? -1 : x > y ? 1 : 0;
    return descending ? -order : order;
  });
  rows.forEach(row => body.appendChild(row));
}
document.querySelectorAll('nav button').forEach(b => b.addEventListener('click', () => showTab(b.dataset.tab)));
document.querySelectorAll('th').forEach(th => th.addEventListener('click', () => sortBy(th)));
"""


def _image(png: bytes, caption: str, category: str) -> str:
    data = base64.b64encode(png).decode()
    return (f'<figure data-category="{escape(category)}"><img src="data:image/png;base64,{data}" '
            f'alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>')  # fmt: skip


def _value(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else repr(float(x))


def page(board: Board, records: list[Record], title: str, *, figures: list[dict] | None = None,
         runs: list[dict] | None = None) -> str:  # fmt: skip
    """The whole page as a string."""
    categories = list(dict.fromkeys(c.category for c in board.columns))
    tabs = "".join(f'<button data-tab="{escape(c)}">{escape(c)}</button>' for c in categories)
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="note">{escape(LEGEND)}. Click a column to sort; the tabs show one category.</p>',
        f'<nav><button data-tab="all" class="active">all</button>{tabs}</nav>',
    ]
    frame = board.frame
    for group in groups(board):
        part = frame[(frame["task"] == group.task) & (frame["device"] == group.device)]
        out.append(f'<section class="group"><h2>{escape(group.task)} · {escape(group.device)} '
                   f"(ranked by {escape(group.ranked_by)})</h2><table><thead><tr>")  # fmt: skip
        out.append('<th data-col="rank">rank</th><th class="model" data-col="model">model</th>')
        for c in group.columns:
            arrow = "↑" if c.direction == "higher" else "↓"
            out.append(f'<th data-category="{escape(c.category)}" data-col="{escape(c.headline.label)}">'
                       f"{escape(c.headline.label)} {arrow}</th>")  # fmt: skip
        out.append("<th>flags</th></tr></thead><tbody>")
        for (_, row), shown in zip(part.iterrows(), group.rows, strict=True):
            rank = "" if row["rank"] is pd.NA else str(int(row["rank"]))
            cells = [f'<td data-value="{rank}">{rank}</td>',
                     f'<td class="model" data-value="{escape(row["model"])}">{escape(row["model"])}</td>']  # fmt: skip
            for c in group.columns:
                label = c.headline.label
                cells.append(f'<td data-category="{escape(c.category)}" data-value="{_value(row[label])}">'
                             f"{escape(shown[label])}</td>")  # fmt: skip
            cells.append(f'<td class="flags">{escape(shown["flags"])}</td>')
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tbody></table></section>")
    out += _plots(board, records, set(categories))
    out += _stored_figures(figures or [], {m for m in frame["model"]}, set(categories))
    out += _provenance(records, board, runs or [])
    out.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(out) + "\n"


def _plots(board: Board, records: list[Record], categories: set[str]) -> list[str]:
    """The plots of the categories the board shows."""
    out = ["<h2>Plots</h2>"]
    tasks = list(dict.fromkeys(board.frame["task"]))
    devices = [d for d in dict.fromkeys(board.frame["device"]) if d != "any"]
    for task in tasks:
        drawn = [
            (plots.accuracy_vs_robust(records, task), f"{task}: accuracy against robust accuracy", "robustness"),
            (plots.robust_curves(records, task), f"{task}: robust accuracy against epsilon", "robustness"),
            (plots.corruption_severity(records, task), f"{task}: corruption accuracy by severity", "robustness"),
            (plots.ood_auroc(records, task), f"{task}: AUROC of each detector against each OOD set", "ood"),
            (
                plots.ood_shift(records, task),
                f"{task}: AUROC of each detector against each corruption (severity "
                "as in the set's name): covariate shift",
                "ood",
            ),
        ]
        for d in devices:
            drawn.append((plots.accuracy_vs_energy(records, task, d), f"{task}: accuracy against energy on {d}",
                          "efficiency"))  # fmt: skip
        features = sorted({next(iter(r.parts)) for r in records if r.task == task
                           and r.metric == "fairness.accuracy" and len(r.parts) == 1})  # fmt: skip
        drawn += [(plots.group_rates(records, task, f), f"{task}: accuracy, selection rate and true-positive rate "
                   f"by {f}", "fairness") for f in features]  # fmt: skip
        out += [_image(png, caption, category) for png, caption, category in drawn
                if png is not None and category in categories]  # fmt: skip
    return out if len(out) > 1 else []


def _stored_figures(figures: list[dict], models: set[str], categories: set[str]) -> list[str]:
    kinds = {"attributions": "interpretability", "feature-importance": "interpretability", "ood-scores": "ood",
             "risk-coverage": "calibration"}  # fmt: skip
    out, seen, drawn = [], set(), set()
    for f in figures:
        if f["model"] not in models or (f["model"], f["task"], f["name"]) in seen:
            continue
        seen.add((f["model"], f["task"], f["name"]))
        category = kinds.get(f["name"], "robustness" if f["name"].startswith("corruptions") else "accuracy")
        png = Path(f["path"]).read_bytes()
        if category not in categories or png in drawn:  # the same picture for every model (the data): once
            continue
        drawn.add(png)
        same = [g for g in figures if g["task"] == f["task"] and g["name"] == f["name"] and g["model"] in models]
        shared = len(same) > 1 and all(Path(g["path"]).read_bytes() == png for g in same)
        who = f"{f['task']} (the same for every model)" if shared else f"{f['model']} on {f['task']}"
        out.append(_image(png, f"{who}: {f['name']}", category))
    return ["<h2>Figures</h2>", *out] if out else []


def _provenance(records: list[Record], board: Board, runs: list[dict]) -> list[str]:
    heads = ["model", "task", "harness", "torch", "model fingerprint", "task fingerprint", "runs"]
    out = ["<h2>Provenance</h2><table><thead><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr></thead><tbody>"]
    shown = {(m, t) for m, t in zip(board.frame["model"], board.frame["task"], strict=True)}
    done = set()
    for r in records:
        if (r.model, r.task) in shown and (r.model, r.task) not in done:
            done.add((r.model, r.task))
            runs_of = sorted({x.run_id for x in records if (x.model, x.task) == (r.model, r.task)})
            p = r.provenance
            values = [r.model, r.task, p.get("harness", ""), p.get("torch", ""), p.get("model_fingerprint", ""),
                      p.get("task_fingerprint", ""), ", ".join(runs_of)]  # fmt: skip
            out.append("<tr>" + "".join(f'<td class="{"model" if i == 0 else ""}">{escape(str(v))}</td>'
                                        for i, v in enumerate(values)) + "</tr>")  # fmt: skip
    out.append("</tbody></table>")
    used = {run for run in board.runs}
    costs = [r for r in runs if r["run_id"] in used and r.get("cost")]
    if costs:
        seconds = sum(r["cost"].get("seconds", 0) for r in costs)
        energy = [r["cost"]["energy"] for r in costs if r["cost"].get("energy")]
        wh = sum(e["kwh"] for e in energy) * 1000
        grams = sum(e["kg_co2"] for e in energy) * 1000
        estimated = any(e["method"] == "estimated" for e in energy)
        out.append(f'<p class="note">What this leaderboard cost to make: {len(costs)} runs, {seconds:,.0f} s, '
                   f"{wh:.3g} Wh, {grams:.3g} g CO2-eq{' (estimated)' if estimated else ''}.</p>")  # fmt: skip
    return out
