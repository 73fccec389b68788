"""Leaderboards from the store: which records, which headline figures (``table``), rendered as
terminal tables, Markdown, CSV or JSON (``render``)."""

from __future__ import annotations

from harness.config import Headline, load_suite, suite_names
from harness.errors import HarnessError
from harness.leaderboard.table import ANY_DEVICE, Board, build
from harness.selection import Choice, SelectionError, selected
from harness.store import Store

__all__ = ["ANY_DEVICE", "Board", "LeaderboardError", "headlines", "leaderboard"]


class LeaderboardError(HarnessError, ValueError):
    """Nothing to show, or a filter that matches nothing; the message says what the store holds."""


ORDER = ("quick", "robustness", "fairness", "interpretability", "efficiency")  # "every suite": accuracy first


def headlines(suite: str | None) -> list[Headline]:
    """The suite's declared headline figures, or every built-in suite's (first declaration wins), the
    reference suites first so that a board of every suite is ranked by accuracy."""
    names = [suite] if suite else sorted(suite_names(), key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    out: dict[tuple[str, str], Headline] = {}
    for name in names:
        for h in load_suite(name).leaderboard:
            out.setdefault((h.metric, h.slice), h)
    return list(out.values())


def leaderboard(store: Store, *, suite: str | None = None, task: str | None = None, device: str | None = None,
                sort: str | None = None, choice: Choice | None = None) -> Board:  # fmt: skip
    """The board of the chosen evaluation of each figure family (by default the most complete one)."""
    from dataclasses import replace

    from harness.export import suite_params, suite_scope

    choice = choice or Choice()
    try:
        if suite:
            scope = suite_scope(suite)
            choice = replace(choice, suite=suite_params(suite))
            models = sorted({m for m, _, _ in scope})
            tasks = sorted({t for _, t, _ in scope})
            records = [r for r in selected(store, choice, models=models, tasks=tasks) if (r.model, r.task) in
                       {(m, t) for m, t, _ in scope}]  # fmt: skip
        else:
            records = selected(store, choice)
    except SelectionError as exc:
        raise LeaderboardError(str(exc)) from None
    if task:
        records = [r for r in records if r.task == task]
    if not records:
        raise LeaderboardError(f"the store at {store.root} holds no records for suite {suite}, task {task}: "
                               "run `harness run` first, or pass --store")  # fmt: skip
    try:
        board = build(records, headlines(suite), sort=sort)
    except ValueError as exc:
        raise LeaderboardError(str(exc)) from None
    if device:
        known = sorted(set(board.frame["device"]))
        kept = board.frame[board.frame["device"].str.startswith(device)]
        if kept.empty:
            raise LeaderboardError(f"no leaderboard row on device {device!r}; devices in the store: {', '.join(known)}")
        board.frame = kept.reset_index(drop=True)
    if not board.columns:
        raise LeaderboardError(f"none of the headline figures of suite {suite or 'any'} is in the store yet")
    from harness.leaderboard.ties import mark

    mark(board, store)
    return board
