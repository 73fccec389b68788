"""MkDocs hook: the pages made from what the project already holds, so that nothing is written twice.

- ``index.md`` (getting started): the README's opening and its two commands;
- ``guide/*.md`` and ``store.md``: the README's sections of the same subject;
- ``suites.md``: every built-in suite from ``harness/configs/*.yaml`` (description, jobs, headlines);
- ``plugins.md``: every registry, its entry-point group, its built-in entries and its interface;
- ``leaderboards/*.md``: the committed reference leaderboards.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
GUIDES = {  # page -> the README sections it holds (headings as they start)
    "guide/robustness.md": ["Robustness"],
    "guide/fairness.md": ["Fairness"],
    "guide/interpretability.md": ["Interpretability"],
    "guide/efficiency.md": ["Efficiency"],
    "guide/ood.md": ["Out-of-distribution"],
    "guide/privacy.md": ["Privacy"],
    "guide/variants.md": ["Variants"],
    "guide/leaderboards.md": ["Leaderboards, comparisons", "Reference zoo", "Data"],
    "guide/commands.md": ["Commands", "Performance", "Layout"],
    "store.md": ["The result store"],
}
INTERFACES = {  # registry -> the class its entries are (or follow), whose docstring says how
    "models": "harness.models.zoo:ZooSource", "tasks": "harness.tasks.base:Task",
    "metrics": "harness.metrics.base:Metric", "attacks": "harness.attacks.adversarial:Attack",
    "variants": "harness.variants.base:Variant", "explainers": "harness.explain.methods:Method",
    "privacy_attacks": "harness.privacy.attacks:PrivacyAttack", "detectors": "harness.detectors.base:Detector",
}  # fmt: skip
SUITES = ("quick", "robustness", "fairness", "interpretability", "efficiency", "compression", "ood", "privacy")


def sections(readme: str) -> tuple[str, dict[str, str]]:
    """The README's text before its first ``##`` heading, and each ``##`` section by heading."""
    parts = re.split(r"^## ", readme, flags=re.M)
    return parts[0], {p.split("\n", 1)[0].strip(): "## " + p for p in parts[1:]}


def getting_started(opening: str) -> str:
    body = opening.split("\n", 1)[1].replace("](docs/", "](")  # without the title; links as the site has them
    return (
        "# harness\n" + body + "\n## Where to go next\n\n"
        "- [Suites](suites.md): what each built-in suite runs and shows\n"
        "- [Metrics](metrics.md): every figure's definition, formula, interval and convention\n"
        "- [Your own models and data](byo.md), [Variants](guide/variants.md), [Operations](operations.md)\n"
        "- [The result store and job specs](store.md), [Plugins](plugins.md)\n"
        "- The reference leaderboards, from [quick](leaderboards/quick.md) to [privacy](leaderboards/privacy.md)\n"
    )


def suites_page() -> str:
    import yaml

    out = ["# Suites", "", "`harness run --suite NAME`; `harness list suites`. Each suite is a YAML file in "
           "`harness/configs/` (a suite of your own: `harness run --config my.yaml`).", ""]  # fmt: skip
    for name in SUITES:
        suite = yaml.safe_load((ROOT / "harness" / "configs" / f"{name}.yaml").read_text())
        out += [f"## {name}", "", suite.get("description", "").strip(), "", "| models | tasks | metrics |",
                "| --- | --- | --- |"]  # fmt: skip
        for group in suite["groups"]:
            metrics = [m if isinstance(m, str) else next(iter(m)) + " (with parameters)" for m in group["metrics"]]
            out.append(f"| {', '.join(group['models'])} | {', '.join(group['tasks'])} | {', '.join(metrics)} |")
        heads = suite.get("leaderboard", [])
        if heads:
            out += ["", "Its leaderboard shows: " + "; ".join(h.get("label") or h["metric"] for h in heads) + ".",
                    f"The committed one: [leaderboards/{name}](leaderboards/{name}.md)."]  # fmt: skip
        out.append("")
    return "\n".join(out)


def plugins_page() -> str:
    import inspect

    from harness import registry

    out = ["# Plugins", "", "Every kind of entry lives in one generic registry (`harness/registry.py`, as "
           "lm-evaluation-harness's). A package adds entries through entry points of the group below, loaded "
           "only when their name is used:", "", "```toml", '[project.entry-points."harness.tasks"]',
           'blobs = "harness_blobs:Blobs"', "```", "",
           "`examples/harness-plugin-example/` is a complete one (a task and a model source). The registries:",
           ""]  # fmt: skip
    import importlib

    found = [(n, r) for n, r in vars(registry).items() if isinstance(r, registry.Registry)]
    for name, reg in found:
        out += [f"## {reg.kind}s", "", f"Entry-point group `{reg._group}`; `harness.registry.{name}`."]
        if name in INTERFACES:
            module, _, cls = INTERFACES[name].partition(":")
            doc = inspect.getdoc(getattr(importlib.import_module(module), cls)) or ""
            kind = "A model source follows" if name == "models" else "An entry is a subclass of"
            out += ["", f"{kind} `{module}.{cls}`:", "", *(f"> {line}" if line else ">" for line in doc.splitlines())]
        rows = [f"| `{e.name}` | {e.description.replace('|', chr(92) + '|')} |" for e in reg.entries()]
        out += ["", "| name | what it is |", "| --- | --- |", *rows, ""]
    return "\n".join(out)


def on_files(files: Files, config) -> Files:
    opening, by_heading = sections((ROOT / "README.md").read_text())
    pages = {"index.md": getting_started(opening), "suites.md": suites_page(), "plugins.md": plugins_page()}
    for page, headings in GUIDES.items():
        chosen = [text for heading, text in by_heading.items() if any(heading.startswith(h) for h in headings)]
        if len(chosen) != len(headings):
            raise ValueError(f"docs: {page} wants the README sections {headings}; found {len(chosen)}")
        text = "\n".join(chosen).replace("](docs/", "](../" if "/" in page else "](")
        pages[page] = "# " + text.removeprefix("## ").replace("\n## ", "\n# ", 0)
    for name in SUITES:
        pages[f"leaderboards/{name}.md"] = (ROOT / "leaderboards" / f"{name}.md").read_text()
    for path, content in pages.items():
        files.append(File.generated(config, path, content=content))
    return files
