"""The card section of a variant: what the transform changed, written from paired comparisons with its
parent on the same examples (``compare``), the change in each group gap (``deltas``) and the
compression-identified exemplars (``exemplars``)."""

from __future__ import annotations

from typing import Any

from harness.leaderboard.compare import CompareError, Comparison, compare
from harness.leaderboard.deltas import gap_deltas
from harness.leaderboard.exemplars import exemplars_in, paired_clean
from harness.measures import format_value, measure
from harness.text import p_value


def _variant_minus_parent(c: Comparison) -> tuple[float, float, float]:
    """``compare``'s difference is parent - variant: the change and its interval are its negative."""
    return -c.difference.value, -c.difference.ci_high, -c.difference.ci_low


def _points(value: float) -> str:
    """Signed points to a tenth; a change that rounds to nothing reads 0.0, not -0.0."""
    text = f"{100 * value:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text


def _change(metric: str, change: float, low: float, high: float) -> str:
    """In points for a percentage, else in the figure's own units."""
    declared = measure(metric)
    if declared is not None and declared.percent:
        return f"{_points(change)} [{_points(low)}, {_points(high)}] points"
    return f"{change:+.3g} [{low:+.3g}, {high:+.3g}]"


def changes(
    store: Any, name: str, parent: str, task: str, classes: tuple[str, ...]
) -> tuple[list[str], list[list[str]]]:
    """(sentences, table rows: figure, parent, variant, change with its interval, verdict)."""
    try:
        compared = [c for c in compare(store, parent, name, task=task) if c.key]
    except CompareError as exc:
        return [f"No paired comparison with {parent} is possible from the store ({exc}): run both on the same "
                "examples (`harness run --model PARENT --model VARIANT ...`)."], []  # fmt: skip
    sentences, rows = [], []
    for c in compared:
        change, low, high = _variant_minus_parent(c)
        verdict = {"A better": "worse than the parent", "B better": "better than the parent"}.get(
            c.verdict, "no significant difference")  # fmt: skip
        rows.append([c.figure, format_value(c.metric, c.a.value, c.a.ci_low, c.a.ci_high),
                     format_value(c.metric, c.b.value, c.b.ci_low, c.b.ci_high), _change(c.metric, change, low, high),
                     verdict])  # fmt: skip
    top = next((c for c in compared if c.metric == "accuracy.top1"), None)
    if top is not None:
        change, low, high = _variant_minus_parent(top)
        sentences.append(f"Accuracy changes by {_points(change)} points [{_points(low)}, {_points(high)}] "
                         f"({100 * top.a.value:.1f}% → {100 * top.b.value:.1f}%, paired on {top.paired_on}; "
                         f"McNemar, Holm p = {p_value(top.p_holm)}).")  # fmt: skip
    joined = paired_clean(store, parent, name, task=task)[task]  # read once: the gaps and the exemplars
    for d in gap_deltas(joined, classes):
        moved = "moves" if _points(d.delta.value) == "0.0" else "widens" if d.delta.value > 0 else "narrows"
        decided = d.delta.ci_low > 0 or d.delta.ci_high < 0
        sentences.append(
            f"The {d.rate} gap between {d.feature} groups {moved} by {abs(100 * d.delta.value):.1f} points "
            f"[{_points(d.delta.ci_low)}, {_points(d.delta.ci_high)}] ({100 * d.parent:.1f} → {100 * d.variant:.1f}; "
            f"paired bootstrap, nominal 95%){'' if decided else ': the interval includes zero'}."
        )  # fmt: skip
    found = exemplars_in(task, joined, classes)
    lost, gained = found.counts().values()
    over = [g for g in found.over_represented() if g.direction.startswith("A right")][:3]
    named = "; ".join(f"{g.feature} {g.group} ({100 * g.share:.0f}% of them, {100 * g.base_share:.0f}% of the "
                      f"data, Holm p = {p_value(g.p_holm)})" for g in over)  # fmt: skip
    sentences.append(
        f"Of {found.examples:,} examples, {lost:,} that the parent classifies correctly the variant gets wrong "
        f"and {gained:,} the reverse (compression-identified exemplars, Hooker et al. 2019); "
        + (f"over-represented among the first: {named}." if named else "no class or group is over-represented "
           "among the first (Fisher's exact test, Holm, 0.05).")
    )  # fmt: skip
    return sentences, rows
