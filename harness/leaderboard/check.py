"""The committed leaderboards (``leaderboards/`` in the repository) against what the current code
makes of a fresh run of their suites: ``harness leaderboard --check``.

Only the suites that are deterministic and fast enough for CI are run (``CHECKED``); the Markdown must
match exactly (its figures are rounded for display) and the JSON's numbers to 6 significant digits
(the last bits of a float differ between CPUs). The HTML page and the CSV are written with them but
not compared: the page embeds plots whose PNG bytes depend on the matplotlib version.
"""

from __future__ import annotations

import difflib
import json
import tempfile
from pathlib import Path
from typing import Any

from harness.leaderboard import leaderboard, render

CHECKED = ("quick", "fairness")
TITLE = "harness leaderboard: {suite}"


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def write(store: Any, suite: str, folder: Path) -> list[Path]:
    """The leaderboard of ``suite`` from ``store`` in every format, into ``folder``."""
    from harness.leaderboard.html import page

    board = leaderboard(store, suite=suite)
    title = TITLE.format(suite=suite)
    shown = set(board.frame["model"])
    records = [r for r in store.records() if r.model in shown]
    texts = {
        "md": render.markdown(board, title),
        "csv": render.csv(board),
        "json": render.as_json(board),
        "html": page(board, records, title, figures=store.figures(), runs=store.runs()),
    }
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext, text in texts.items():
        path = folder / f"{suite}.{ext}"
        path.write_text(text)
        paths.append(path)
    return paths


def check(folder: Path, suites: tuple[str, ...] = CHECKED) -> list[str]:
    """Run each suite into a new store and compare; returns the differences (empty: all match)."""
    from harness import runner
    from harness.config import load_suite
    from harness.store import Store

    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        with Store(Path(tmp) / "store") as store:
            for suite in suites:
                runner.run(load_suite(suite), store)
                write(store, suite, Path(tmp) / "fresh")
        for suite in suites:
            committed_md, fresh_md = folder / f"{suite}.md", Path(tmp) / "fresh" / f"{suite}.md"
            if not committed_md.is_file():
                problems.append(f"{committed_md} is missing")
                continue
            if committed_md.read_text() != fresh_md.read_text():
                diff = difflib.unified_diff(committed_md.read_text().splitlines(), fresh_md.read_text().splitlines(),
                                            str(committed_md), "fresh run", lineterm="", n=0)  # fmt: skip
                problems.append("\n".join(list(diff)[:20]))
            committed_json = folder / f"{suite}.json"
            fresh = _rounded(json.loads((Path(tmp) / "fresh" / f"{suite}.json").read_text()))
            if not committed_json.is_file() or _rounded(json.loads(committed_json.read_text())) != fresh:
                problems.append(f"{committed_json} differs from a fresh run (or is missing)")
    return problems
