"""The leaderboard page's plots, drawn from the records (PNG bytes; None where the store lacks the
figures a plot needs)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from harness.figures import _png, _pyplot
from harness.records import Record

MARKERS = ("o", "s", "^", "D", "v", "P")


def _by_model(records: list[Record], metric: str, slice: str) -> dict[str, Record]:
    return {r.model: r for r in records if r.metric == metric and r.slice == slice}


def _scatter(points: dict[str, tuple[float, float]], xlabel: str, ylabel: str, title: str,
             pareto: tuple[bool, bool] | None = None) -> bytes:  # fmt: skip
    """One marker per model, named in a legend below the axes (labels beside close points would overlap);
    with ``pareto`` = (x higher is better, y higher is better), the front drawn."""
    plt = _pyplot()
    rows = -(-len(points) // 2)  # the legend's rows, two models to a row
    fig, ax = plt.subplots(figsize=(6.4, 4.4 + 0.2 * rows))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, (x, y)) in enumerate(sorted(points.items())):
        ax.scatter([x], [y], s=40, color=colors[i % len(colors)], marker=MARKERS[i // len(colors) % len(MARKERS)],
                   label=name, zorder=3)  # fmt: skip
    if pareto is not None:
        front = pareto_front(points, *pareto)
        if len(front) >= 2:  # the staircase of points nothing beats: what lies under it is dominated
            xs, ys = zip(*sorted(points[name] for name in front), strict=True)
            ax.step(xs, ys, where="post" if pareto[0] != pareto[1] else "pre", color="#C44E52", linewidth=1,
                    linestyle="--", label=f"Pareto front ({len(front)} of {len(points)} models)")  # fmt: skip
        ax.scatter(*zip(*(points[n] for n in front), strict=True), s=110, facecolors="none", edgecolors="#C44E52",
                   label=None if len(front) >= 2 else "not beaten on both axes")  # fmt: skip
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _lines(curves: dict[str, dict[float, tuple[float, float, float]]], xlabel: str, ylabel: str,
           title: str) -> bytes | None:  # fmt: skip
    """One line per model through its (x, (value, low, high)) points, the 95% intervals as error bars;
    whole-number ticks where every x is whole. None when there is no curve."""
    if not curves:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for model, curve in sorted(curves.items()):
        xs = sorted(curve)
        values = np.array([curve[x] for x in xs])
        ax.errorbar(xs, values[:, 0], yerr=[values[:, 0] - values[:, 1], values[:, 2] - values[:, 0]], marker="o",
                    markersize=4, capsize=2, label=model)  # fmt: skip
    every = sorted({x for curve in curves.values() for x in curve})
    if all(float(x).is_integer() for x in every):
        ax.set_xticks(every)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def pareto_front(points: dict[str, tuple[float, float]], x_higher: bool, y_higher: bool) -> list[str]:
    """The names no other point beats on both coordinates (each in its better direction)."""
    sx, sy = (1 if x_higher else -1), (1 if y_higher else -1)
    front = []
    for name, (x, y) in points.items():
        beaten = any(sx * ox >= sx * x and sy * oy >= sy * y and (ox, oy) != (x, y) for ox, oy in points.values())
        if not beaten:
            front.append(name)
    return front


def accuracy_vs_robust(records: list[Record], task: str) -> bytes | None:
    records = [r for r in records if r.task == task]
    clean = _by_model(records, "accuracy.top1", "overall")
    robust = _by_model(records, "adversarial.robust_accuracy", "attack=worst-linf@0.1")
    points = {m: (100 * clean[m].value, 100 * robust[m].value) for m in clean if m in robust}
    if len(points) < 2:
        return None
    return _scatter(points, "accuracy (%)", "robust accuracy, worst case Linf 0.1 (%)",
                    f"{task}: accuracy against robust accuracy", pareto=(True, True))  # fmt: skip


def accuracy_vs_energy(records: list[Record], task: str, device: str) -> bytes | None:
    records = [r for r in records if r.task == task]
    clean = _by_model(records, "accuracy.top1", "overall")
    energy = {r.model: r for r in records if r.metric == "efficiency.energy_wh_per_1k" and
              r.parts == {"precision": "fp32"} and str(r.provenance.get("device")) == device}  # fmt: skip
    points = {m: (energy[m].value, 100 * clean[m].value) for m in clean if m in energy}
    if len(points) < 2:
        return None
    estimated = any("energy-estimated" in energy[m].flags for m in points)
    xlabel = "Wh per 1,000 inferences" + (" (estimated)" if estimated else "")
    return _scatter(points, xlabel, "accuracy (%)", f"{task}: accuracy against energy on {device}",
                    pareto=(False, True))  # fmt: skip


def robust_curves(records: list[Record], task: str) -> bytes | None:
    """Worst-case robust accuracy against Linf epsilon, from epsilon 0 (the clean accuracy of the same
    attacked subset), with intervals."""
    curves: dict[str, dict[float, tuple[float, float, float]]] = defaultdict(dict)
    for r in records:
        attack = r.parts.get("attack", "") if r.task == task and r.metric == "adversarial.robust_accuracy" else ""
        if attack.startswith("worst-linf@"):
            curves[r.model][float(attack.partition("@")[2])] = (100 * r.value, 100 * r.ci_low, 100 * r.ci_high)
    for r in records:
        clean = r.metric == "adversarial.clean_accuracy" and r.slice == "attack=none"
        if clean and r.task == task and r.model in curves:
            curves[r.model][0.0] = (100 * r.value, 100 * r.ci_low, 100 * r.ci_high)
    return _lines(curves, "Linf epsilon (0: clean, the same examples)", "robust accuracy, worst case (%), 95% CI",
                  f"{task}: robust accuracy against epsilon")  # fmt: skip


GROUP_RATES = (("fairness.accuracy", "accuracy"), ("fairness.selection_rate", "selection rate"),
               ("fairness.true_positive_rate", "true-positive rate"))  # fmt: skip


def group_order(name: str) -> tuple:
    """Groups in their natural order: buckets by their bounds (``<25``, ``25-44``, ``45-64``, ``65+``;
    ``<0.5``, ``[0.5, 2)``, ``>=2``), the rest by name."""
    import re

    found = re.match(r"^(<|>=|>|\[)?\s*(-?\d+(?:\.\d+)?)", name)
    if found is None:
        return (1, 0.0, name)
    shift = {"<": -0.5, ">=": 0.5, ">": 0.5}.get(found.group(1) or "", 0.5 if name.endswith("+") else 0.0)
    return (0, float(found.group(2)) + shift, name)


def group_rates(records: list[Record], task: str, feature: str) -> bytes | None:
    """Accuracy, selection rate and true-positive rate of each group of ``feature`` (a panel each, the
    groups as rows in their natural order with their sizes, a bar per model with its 95% interval):
    the rates whose gaps the fairness criteria judge. The caption names the figure (no title)."""
    panels = []
    for metric, label in GROUP_RATES:
        rows = [r for r in records if r.task == task and r.metric == metric and list(r.parts) == [feature]]
        if rows:
            panels.append((label, rows))
    if not panels:
        return None
    models = sorted({r.model for _, rows in panels for r in rows})
    groups = sorted({r.parts[feature] for _, rows in panels for r in rows}, key=group_order)
    sizes = {r.parts[feature]: int(r.value) for r in records if r.task == task and r.metric == "fairness.count"
             and list(r.parts) == [feature]}  # fmt: skip
    names = [f"{g} (n={sizes[g]:,})" if g in sizes else g for g in groups]
    plt = _pyplot()
    height = 0.9 + 0.22 * len(groups) * len(models) + 0.15 * len(groups)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels) + 1.6, height), sharey=True, squeeze=False)
    width = 0.8 / len(models)
    for ax, (label, rows) in zip(axes[0], panels, strict=True):
        for i, model in enumerate(models):
            cell = {r.parts[feature]: r for r in rows if r.model == model}
            ys = np.arange(len(groups)) + i * width
            values = [100 * cell[g].value if g in cell else np.nan for g in groups]
            errors = [[100 * (cell[g].value - cell[g].ci_low) if g in cell else 0 for g in groups],
                      [100 * (cell[g].ci_high - cell[g].value) if g in cell else 0 for g in groups]]  # fmt: skip
            ax.barh(ys, values, width, xerr=errors, capsize=1.5, label=model)
        ax.set_xlabel(f"{label} (%), 95% CI", fontsize=8)
        ax.set_xlim(0, 100)
        ax.grid(alpha=0.3, axis="x")
        ax.tick_params(labelsize=7)
    axes[0, 0].set_yticks(np.arange(len(groups)) + 0.4 - width / 2, names, fontsize=7)
    axes[0, 0].invert_yaxis()
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(models), 4), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.35 / height * 1.4, 1, 1))
    return _png(fig)


def corruption_severity(records: list[Record], task: str) -> bytes | None:
    """Accuracy averaged over the corruptions at each severity 1-5 (the band: the mean of the
    corruptions' interval bounds, a guide, not an interval of the mean)."""
    by: dict[str, dict[int, list[tuple[float, float, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        name = r.parts.get("corruption", "") if r.task == task and r.metric == "corruption.accuracy" else ""
        if "@" in name:
            by[r.model][int(name.rpartition("@")[2])].append((100 * r.value, 100 * r.ci_low, 100 * r.ci_high))
    means = {model: {s: tuple(np.mean(v, axis=0)) for s, v in severities.items()} for model, severities in by.items()}
    title = f"{task}: corruption accuracy by severity\n(bars: the corruptions' 95% CI bounds, averaged)"
    return _lines(means, "severity", "accuracy, mean over corruptions (%)", title)


SHIFT = "corruption:"  # covariate-shift sets: drawn as one heatmap, not a panel each


def _auroc_records(records: list[Record], task: str, shift: bool) -> tuple[list[Record], list[str], list[str],
                                                                          list[str]] | None:  # fmt: skip
    """The task's OOD AUROC records of the covariate-shift sets (``shift``) or of the others, with their
    sets, detectors and models in order; None where there are none."""
    found = [
        r for r in records if r.task == task and r.metric == "ood.auroc" and r.parts["set"].startswith(SHIFT) == shift
    ]
    if not found:
        return None
    return (found, sorted({r.parts["set"] for r in found}), sorted({r.parts["detector"] for r in found}),
            sorted({r.model for r in found}))  # fmt: skip


def ood_auroc(records: list[Record], task: str) -> bytes | None:
    """AUROC of each detector for each model, one panel per OOD set (three to a row), with the
    intervals as error bars; covariate-shift sets are left to ``ood_shift``."""
    chosen = _auroc_records(records, task, shift=False)
    if chosen is None:
        return None
    found, sets, detectors, models = chosen
    plt = _pyplot()
    columns = min(3, len(sets))
    rows = -(-len(sets) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.4 * columns, 3.6 * rows + 0.4), squeeze=False, sharey=True)
    width = 0.8 / len(detectors)
    for ax in axes.flat[len(sets) :]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, sets, strict=False):
        for k, detector in enumerate(detectors):
            cell = {r.model: r for r in found if r.parts == {"detector": detector, "set": name}}
            xs = [m + k * width for m, model in enumerate(models) if model in cell]
            rs = [cell[model] for model in models if model in cell]
            ax.bar(
                xs,
                [r.value for r in rs],
                width,
                label=detector,
                yerr=[[r.value - r.ci_low for r in rs], [r.ci_high - r.value for r in rs]],
                capsize=1.5,
            )
        ax.set_xticks([m + 0.4 - width / 2 for m in range(len(models))])
        ax.set_xticklabels([m.removeprefix("zoo:") for m in models], rotation=35, ha="right", fontsize=7)
        ax.set_ylim(min(0.4, min(r.value for r in found) - 0.05), 1.0)
        ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    for ax in axes[:, 0]:
        ax.set_ylabel("AUROC (in-distribution positive)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(detectors), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.3 / (3.6 * rows + 0.4), 1, 1))
    return _png(fig)


def ood_shift(records: list[Record], task: str) -> bytes | None:
    """Covariate shift: for each model (row) and corruption (column), the AUROC of each detector as a
    heatmap, one panel per detector (0.5: the detector cannot tell the corrupted images from the clean)."""
    chosen = _auroc_records(records, task, shift=True)
    if chosen is None:
        return None
    found, sets, detectors, models = chosen
    plt = _pyplot()
    severities = {name.rpartition("@")[2] for name in sets}
    labels = [name.removeprefix(SHIFT).rpartition("@")[0] if len(severities) == 1 else name.removeprefix(SHIFT)
              for name in sets]  # fmt: skip
    at = f" at severity {severities.pop()}" if len(severities) == 1 else ""
    height = 0.38 * len(models) * len(detectors) + 0.45 * len(detectors) + 1.6
    fig, axes = plt.subplots(len(detectors), 1, figsize=(0.5 * len(sets) + 3, height), squeeze=False, sharex=True,
                             layout="constrained")  # fmt: skip
    for ax, detector in zip(axes[:, 0], detectors, strict=True):
        grid = np.full((len(models), len(sets)), np.nan)
        for r in found:
            if r.parts["detector"] == detector:
                grid[models.index(r.model), sets.index(r.parts["set"])] = 100 * r.value
        image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            if not np.isnan(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6.5)
        ax.set_yticks(range(len(models)), [m.removeprefix("zoo:") for m in models], fontsize=7)
        ax.set_title(detector, fontsize=9, loc="left")
    axes[-1, 0].set_xticks(range(len(sets)), labels, rotation=40, ha="right", fontsize=7)
    fig.suptitle(f"AUROC (%) of the clean test images against each corruption{at}", fontsize=10)
    fig.colorbar(image, ax=axes[:, 0].tolist(), fraction=0.02, pad=0.01, label="AUROC (%): 50 cannot tell them apart")
    return _png(fig)
