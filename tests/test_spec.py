"""Job specs: two computations never share a key, the same computation always gets the same key, and
every view (boards, cards, compare, export) shows one evaluation per figure family.

One test per hole found in the first round (each failed on the code before job specs): a --limit equal
to the split, the mCE baseline by name only, the corruption cache without a code version, device-bound
figures without library versions, user code fingerprinted by its weights only, one model under three
names, a --limit 100 run displacing the full test set on the board, the card and compare.
"""

from __future__ import annotations

import json
import re
import sqlite3
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import runner
from harness.config import ConfigError, ModelRef, parse_suite
from harness.spec import JobSpec
from harness.store import Store


def suite(models: list[str], metrics: str, *, task: str = "fashion-mnist", limit: int | None = None,
          device: str = "cpu"):  # fmt: skip
    text = f"name: t\nbatch_size: 250\nresamples: 50\ndevice: {device}\n"
    text += f"limit: {limit}\n" if limit else ""
    text += f"groups:\n  - models: {json.dumps(models)}\n    tasks: [{task}]\n    metrics: {metrics}\n"
    return parse_suite(text, "t.yaml")


def jobs_of(s, tmp_path) -> dict[str, runner.Job]:
    with Store(tmp_path / "store") as store:
        return {job.metric: job for job in runner.plan(s, store).jobs}


def test_spec_round_trips_through_json_and_its_hash_is_the_key(tmp_path):
    job = jobs_of(suite(["zoo:fmnist-linear"], "[accuracy, corruption]"), tmp_path)["corruption"]
    back = JobSpec.from_json(job.spec.to_json())
    assert back == job.spec and back.key == job.key
    assert job.spec.metric.params["examples"] == 1000 and job.spec.metric.params["baseline"] == "zoo:fmnist-linear"
    assert job.spec.examples.count == 1000 and job.spec.examples.total == 10_000


def test_a_limit_as_large_as_the_split_means_every_example_in_the_costly_metrics_too(tmp_path):
    """--limit N evaluates N examples everywhere, as the README says: --limit 10000 on Fashion-MNIST's
    10,000 examples attacks all of them (a run without --limit attacks its default 1,000, another
    computation under another key), while the accuracy job is the same computation as without a limit."""
    metrics = "[accuracy, {adversarial: {attacks: [fgsm]}}]"
    full = jobs_of(suite(["zoo:fmnist-linear"], metrics), tmp_path)
    same = jobs_of(suite(["zoo:fmnist-linear"], metrics, limit=10_000), tmp_path)
    cut = jobs_of(suite(["zoo:fmnist-linear"], metrics, limit=5000), tmp_path)
    assert full["accuracy"].key == same["accuracy"].key
    assert full["adversarial"].spec.examples.count == 1000 and same["adversarial"].spec.examples.count == 10_000
    assert full["adversarial"].key != same["adversarial"].key
    assert cut["adversarial"].spec.examples.count == 5000  # under a real cut: every example of the subset
    assert cut["accuracy"].key != full["accuracy"].key


def test_the_mce_baselines_fingerprint_is_in_the_key(tmp_path, monkeypatch):
    """Retrain zoo:fmnist-linear and every model's mCE must be measured again."""
    import harness.models as models

    s = suite(["zoo:fmnist-cnn"], "[corruption]")
    before = jobs_of(s, tmp_path)["corruption"]
    assert before.spec.depends["baseline"]["name"] == "zoo:fmnist-linear"
    real = models.fingerprint_model

    def retrained(name, task, checkpoint=None, **options):
        found = real(name, task, checkpoint=checkpoint, **options)
        return "retrained0000000" if name == "zoo:fmnist-linear" else found

    monkeypatch.setattr(models, "fingerprint_model", retrained)
    monkeypatch.setattr(runner, "fingerprint_model", retrained)
    after = jobs_of(s, tmp_path)["corruption"]
    assert after.spec.depends["baseline"]["fingerprint"] == "retrained0000000"
    assert after.key != before.key and after.spec.model == before.spec.model


def test_the_corruption_code_version_keys_the_spec_and_the_batch_cache(tmp_path, monkeypatch):
    import hashlib

    import harness.attacks.corruptions as image
    import harness.attacks.text as text
    from harness.metrics import corruption

    files = [*sorted(Path(image.__file__).parent.glob("*.py")), Path(text.__file__)]
    digest = hashlib.sha256()
    for path in files:  # recomputed here from the sources
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    assert corruption.code_version() == digest.hexdigest()[:16]
    job = jobs_of(suite(["zoo:fmnist-linear"], "[corruption]"), tmp_path)["corruption"]
    assert job.spec.depends["corruption_code"] == corruption.code_version()

    monkeypatch.setattr(corruption, "_BATCHES", corruption.BatchCache())
    images, indices = torch.rand(4, 1, 8, 8), np.arange(4)
    first = corruption.corrupted(images, indices, "gaussian_noise", 3, 0, "task")
    assert [corruption.code_version() in key for key in corruption._BATCHES.items] == [True]
    assert torch.equal(corruption.corrupted(images, indices, "gaussian_noise", 3, 0, "task"), first)  # served
    monkeypatch.setattr(corruption, "code_version", lambda: "edited-code-0000")
    corruption.corrupted(images, indices, "gaussian_noise", 3, 0, "task")  # edited code: not served the old batch
    assert len(corruption._BATCHES.items) == 2


def test_device_bound_figures_are_keyed_by_the_device_and_library_versions(tmp_path, monkeypatch):
    from harness.hardware import devices

    s = suite(["zoo:fmnist-linear"], "[accuracy, {efficiency: {batch_sizes: [1], repeats: 1}}]")
    before = jobs_of(s, tmp_path)
    assert before["efficiency"].spec.device["torch"] == torch.__version__
    assert "codecarbon" in before["efficiency"].spec.device and before["accuracy"].spec.device is None
    real = devices.details
    monkeypatch.setattr(devices, "details", lambda device: {**real(device), "torch": "9.9.9", "driver": "999.1"})
    after = jobs_of(s, tmp_path)
    assert after["efficiency"].key != before["efficiency"].key
    assert after["accuracy"].key == before["accuracy"].key  # a device-free figure does not move


USER_MODEL = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1)){suffix}
"""


def test_user_code_enters_the_fingerprint_of_torch_models(tmp_path, monkeypatch):
    """Editing a torch:<module>:<Class>'s forward or a TorchScript file's code, with the same weights, is
    another model."""
    import importlib
    import sys

    from harness.models import load_model
    from harness.tasks import get_task

    task = get_task("fashion-mnist")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])  # (syspath_prepend trips on the pkg_resources shim)
    prints = []
    for suffix in ("", " * 2"):
        (tmp_path / "user_net.py").write_text(USER_MODEL.format(suffix=suffix))
        sys.modules.pop("user_net", None)
        importlib.invalidate_caches()
        torch.manual_seed(0)
        net = importlib.import_module("user_net").Net()
        torch.save(net.state_dict(), tmp_path / "w.pt")
        prints.append(load_model("torch:user_net:Net", task, checkpoint=str(tmp_path / "w.pt")).fingerprint)
        torch.jit.script(net).save(str(tmp_path / f"net{len(prints)}.pt"))
    assert prints[0] != prints[1]
    scripted = [load_model(f"torch:{tmp_path}/net{i}.pt", task).fingerprint for i in (1, 2)]
    assert scripted[0] != scripted[1]


def test_one_model_under_three_names_is_one_model(tmp_path, monkeypatch):
    """hf:vit, hf:./vit and hf:/abs/vit were three models with one fingerprint, measured three times."""
    (tmp_path / "vit").mkdir()
    monkeypatch.chdir(tmp_path)
    names = {ModelRef(name=n).name for n in ("hf:vit", "hf:./vit", f"hf:{tmp_path}/vit", "hf:../" +
                                              f"{tmp_path.name}/vit")}  # fmt: skip
    assert names == {f"hf:{tmp_path.resolve()}/vit"}
    assert ModelRef(name="hf:google/vit-base-patch16-224").name == "hf:google/vit-base-patch16-224"  # a hub id
    checkpoint = tmp_path / "w.safetensors"
    checkpoint.write_bytes(b"")
    assert ModelRef(name="timm:resnet18", checkpoint="w.safetensors").checkpoint == str(checkpoint.resolve())


@pytest.mark.parametrize("name", ["zoo:fmnist-cnn\n# heading", "torch:m.pt\r", "hf:a\x1b[31mred", "hf:x\u202eevil"])
def test_names_with_control_characters_are_refused_naming_the_character(name):
    with pytest.raises(ValueError, match=r"control character .* at position"):
        ModelRef(name=name)
    with pytest.raises(ConfigError, match="control character"):
        suite(["zoo:fmnist-cnn"], "[accuracy]").with_overrides(tasks=["fashion-mnist\n[x](javascript:y)"])


def run_cli(*args: str, store: Path):
    from typer.testing import CliRunner

    from harness.cli import app

    result = CliRunner().invoke(app, [*args, "--store", str(store)], catch_exceptions=False)
    return result


@pytest.mark.slow
def test_a_limited_run_leaves_the_full_board_card_and_compare_as_they_were(tmp_path):
    """The newcomer sequence: the full test set, then one model again on --limit 100. The board, the
    card and compare keep the full evaluation, with n beside every figure; --limit 100 shows the other."""
    from harness.store import Store

    store = tmp_path / "store"
    models = ["--model", "zoo:fmnist-cnn", "--model", "zoo:fmnist-mlp"]
    assert run_cli("run", *models, "--task", "fashion-mnist", "--metric", "accuracy", "-q", store=store).exit_code == 0

    def views() -> tuple[str, str, str]:
        board = run_cli("leaderboard", "--suite", "quick", "--format", "md", store=store).output
        run_cli("card", "zoo:fmnist-cnn", "-o", str(tmp_path / "card.md"), store=store)
        card = (tmp_path / "card.md").read_text()
        paired = run_cli("compare", "zoo:fmnist-cnn", "zoo:fmnist-mlp", "--json", store=store).output
        return board, card, paired

    before = views()
    assert run_cli("run", "--model", "zoo:fmnist-cnn", "--task", "fashion-mnist", "--metric", "accuracy",
                   "--limit", "100", "-q", store=store).exit_code == 0  # fmt: skip
    after = views()
    assert after[0] == before[0] and after[2] == before[2]
    assert after[1].split("## Model Details")[1] == before[1].split("## Model Details")[1]  # the front matter's
    with Store(store) as results:  # the CNN's full-set accuracy, from its stored clean pass
        clean = results.examples(models=["zoo:fmnist-cnn"], kind="clean")
    full = clean.groupby("example")["correct"].first().astype(bool)
    assert len(full) == 10_000 and f"| zoo:fmnist-cnn | {100 * full.mean():.1f} ±" in after[0]
    assert "n=100" not in after[0]  # run list may grow; the figures do not
    assert all(c["n"] == 10_000 for c in json.loads(after[2]))
    limited = run_cli("leaderboard", "--suite", "quick", "--format", "md", "--limit", "100", store=store).output
    assert "n=100" in limited and "zoo:fmnist-mlp" not in limited
    exported = tmp_path / "jobs.csv"
    assert run_cli("export", "--what", "jobs", "-o", str(exported), store=store).exit_code == 0
    import pandas as pd

    jobs = pd.read_csv(exported)
    assert sorted(jobs["examples"]) == [100, 10_000, 10_000] and not jobs["legacy"].any()


OLD_SCHEMA = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, started REAL NOT NULL, finished REAL, suite TEXT, argv TEXT,
    harness_version TEXT, status TEXT NOT NULL DEFAULT 'running', cost TEXT, failures TEXT);
CREATE TABLE jobs (key TEXT PRIMARY KEY, run_id TEXT NOT NULL, model TEXT NOT NULL, task TEXT NOT NULL,
    metric TEXT NOT NULL, params TEXT NOT NULL, model_fingerprint TEXT NOT NULL,
    task_fingerprint TEXT NOT NULL, seconds REAL NOT NULL, finished REAL NOT NULL);
CREATE TABLE records (id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_key TEXT NOT NULL REFERENCES jobs(key) ON DELETE CASCADE,
    model TEXT NOT NULL, task TEXT NOT NULL, metric TEXT NOT NULL, slice TEXT NOT NULL,
    value REAL, ci_low REAL, ci_high REAL, n INTEGER NOT NULL, direction TEXT NOT NULL,
    category TEXT NOT NULL, params TEXT NOT NULL, flags TEXT NOT NULL, run_id TEXT NOT NULL,
    provenance TEXT NOT NULL, UNIQUE (job_key, metric, slice));
CREATE TABLE examples (key TEXT PRIMARY KEY, model TEXT NOT NULL, task TEXT NOT NULL, kind TEXT NOT NULL,
    model_fingerprint TEXT NOT NULL, task_fingerprint TEXT NOT NULL, path TEXT NOT NULL,
    rows INTEGER NOT NULL, run_id TEXT NOT NULL, finished REAL NOT NULL);
CREATE TABLE figures (key TEXT PRIMARY KEY, job_key TEXT NOT NULL, model TEXT NOT NULL, task TEXT NOT NULL,
    name TEXT NOT NULL, path TEXT NOT NULL, run_id TEXT NOT NULL, finished REAL NOT NULL);
"""


def test_a_store_written_by_the_previous_schema_opens_and_its_jobs_show_as_legacy(tmp_path):
    """The schema of the last release (copied here): its records read, its jobs export as legacy, a new
    run adds spec'd jobs beside them, and the board prefers neither by age alone but by examples."""
    import pandas as pd

    from harness.export import export_table
    from harness.selection import selected

    db = sqlite3.connect(tmp_path / "results.sqlite")
    db.executescript(OLD_SCHEMA)
    provenance = json.dumps({"device": "cpu: old", "limit": 100, "model_fingerprint": "f"})
    db.execute("INSERT INTO runs VALUES ('old', 1, 2, 'quick', '[]', '0.1.0', 'complete', NULL, '[]')")
    db.execute("INSERT INTO jobs VALUES ('legacy1', 'old', 'zoo:fmnist-cnn', 'fashion-mnist', 'accuracy', '{}', "
               "'f', 't', 1.0, 2.0)")  # fmt: skip
    db.execute("INSERT INTO records (job_key, model, task, metric, slice, value, ci_low, ci_high, n, direction, "
               "category, params, flags, run_id, provenance) VALUES ('legacy1', 'zoo:fmnist-cnn', 'fashion-mnist', "
               "'accuracy.top1', 'overall', 0.88, 0.81, 0.93, 100, 'higher', 'accuracy', '{}', '[]', 'old', ?)",
               (provenance,))  # fmt: skip
    db.commit()
    db.close()
    with Store(tmp_path) as store:
        (old,) = store.records()
        assert old.value == 0.88 and old.provenance["limit"] == 100 and old.interval == "" and old.job == "legacy1"
        assert store.jobs()[0].spec is None
        runner.run(suite(["zoo:fmnist-cnn"], "[accuracy]"), store)
        shown = [r for r in selected(store) if r.metric == "accuracy.top1" and r.slice == "overall"]
    assert len(shown) == 1 and shown[0].n == 10_000  # the new full evaluation, not the legacy 100
    export_table(tmp_path, "jobs", tmp_path / "jobs.parquet", "parquet")
    jobs = pd.read_parquet(tmp_path / "jobs.parquet").set_index("key")
    assert bool(jobs.loc["legacy1", "legacy"]) and "legacy" in jobs.loc["legacy1", "description"]
    assert not jobs.drop(index="legacy1")["legacy"].any()


def test_selection_prefers_most_examples_then_the_latest_and_obeys_a_choice(tmp_path):
    from harness.selection import Choice, SelectionError, selected

    with Store(tmp_path) as store:
        runner.run(suite(["zoo:fmnist-linear"], "[accuracy]", limit=200), store)
        runner.run(suite(["zoo:fmnist-linear"], "[accuracy]", limit=500), store)
        runner.run(suite(["zoo:fmnist-linear"], "[accuracy]", limit=300), store)

        def top1(choice=None):
            shown = selected(store, choice or Choice())
            return [r.n for r in shown if r.metric == "accuracy.top1" and r.slice == "overall"]

        assert top1() == [500]
        assert top1(Choice(limit=200)) == [200]
        key = next(j.key for j in store.jobs() if j.spec.examples.count == 300)
        assert top1(Choice(specs=(key[:8],))) == [300]
        with pytest.raises(SelectionError, match="no stored job matches --limit 7"):
            selected(store, Choice(limit=7))


def test_export_of_records_to_parquet_works_for_nested_provenance_and_leaves_no_temporary_file(tmp_path):
    """It raised ArrowNotImplementedError (an empty struct: model options {}) and left a 0-byte temp file."""
    import pandas as pd

    from harness.export import ExportError, export_table

    with Store(tmp_path / "s") as store:
        runner.run(suite(["zoo:adult-logreg"], "[accuracy, fairness]", task="adult"), store)
    n = export_table(tmp_path / "s", "records", tmp_path / "out" / "records.parquet", "parquet")
    back = pd.read_parquet(tmp_path / "out" / "records.parquet")
    assert len(back) == n > 50 and json.loads(back["provenance_model_options"].iloc[0]) == {}
    assert (back["job"] != "").all() and set(back["interval"]) >= {"wilson", "exact"}
    (tmp_path / "blocked").write_text("a file where a folder is needed")
    with pytest.raises(ExportError, match="cannot write"):
        export_table(tmp_path / "s", "records", tmp_path / "blocked" / "x.parquet", "parquet")
    (tmp_path / "ro").mkdir()
    target = tmp_path / "ro" / "x.csv"
    target.write_text("kept")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    import pandas as pd_module

    original = pd_module.DataFrame.to_csv
    pd_module.DataFrame.to_csv = fail
    try:
        with pytest.raises(ExportError, match="No space"):
            export_table(tmp_path / "s", "records", target, "csv")
    finally:
        pd_module.DataFrame.to_csv = original
    assert target.read_text() == "kept" and sorted(p.name for p in (tmp_path / "ro").iterdir()) == ["x.csv"]


def test_fairness_verdicts_are_inconclusive_on_small_groups_and_undefined_rates_are_not_failures():
    """A model whose selection rates differ by group exactly as much as noise allows at n = 300 is
    neither passed nor failed; a group without positives has no true-positive rate: no verdict on it."""
    import pandas as pd

    from harness.metrics.fairness import Fairness, FairnessParams
    from tests.helpers import context_for

    rng = np.random.default_rng(0)
    n = 300
    group = np.where(np.arange(n) < 150, "a", "b")
    labels = (rng.random(n) < 0.5).astype(int)
    labels[group == "b"] = 0  # group b has no positive example: its true-positive rate is undefined
    preds = np.where(group == "a", rng.random(n) < 0.5, rng.random(n) < 0.43).astype(int)
    logits = np.stack([1 - preds, preds], 1).astype(np.float32) * 4
    ctx = context_for(logits, labels, attributes=pd.DataFrame({"g": group}))
    params = Fairness.Params(features=("g",), min_count=10)
    assert isinstance(params, FairnessParams)
    records = Fairness().compute(ctx, params)
    verdicts = {r.slice: r for r in records if r.metric == "fairness.verdict"}
    parity = verdicts["feature=g,criterion=demographic_parity"]
    assert parity.params["verdict"] == "inconclusive" and parity.value == 0.5
    low, high = parity.params["ratios"]["b"]["selection_rate"][1:]
    assert low < 0.8 < high
    assert "feature=g,criterion=equal_opportunity" not in verdicts  # undefined for b: no verdict, not a fail
    odds = verdicts["feature=g,criterion=equalized_odds"]  # its false-positive rate is defined
    assert any(f.startswith("undefined-rates=b:true_positive_rate") for f in odds.flags)


def test_worst_shift_and_throughput_say_which_interval_they_carry(tmp_path):
    from harness.leaderboard.render import LEGEND

    with Store(tmp_path) as store:
        result = runner.run(suite(["zoo:adult-logreg"], "[tabular-shift]", task="adult"), store)
    worst = next(r for r in result.records if r.metric == "tabular_shift.worst_accuracy")
    own = next(r for r in result.records if r.metric == "tabular_shift.accuracy" and r.slice == worst.slice)
    assert worst.interval == "bonferroni" and own.interval in ("wilson", "percentile")
    assert worst.ci_low <= own.ci_low and worst.value == own.value  # wider: it accounts for the picking
    assert "n the examples (or repeats) measured" in LEGEND and "range" in LEGEND


def test_markdown_and_csv_cells_cannot_change_their_documents_structure():
    from harness import text

    planted = "m\n# heading [click](javascript:alert(1)) <b>|x</b> `code` *em*"
    cell = text.markdown(planted)
    assert "\n" not in cell and "<" not in cell and "[click](" not in cell and "|" not in cell.replace("\\|", "")
    assert text.csv_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    for start in "=+-@\t\r":
        assert text.csv_cell(start + "x").startswith("'")
    assert text.csv_cell("zoo:fmnist-cnn") == "zoo:fmnist-cnn" and text.csv_cell(-1.5) == -1.5


def test_names_planted_in_a_store_are_inert_in_every_output_format(tmp_path):
    """A store written by another tool (or an older harness) holding hostile names: md, csv, html and the
    card keep their structure."""
    import pandas as pd

    from harness.cards.card import Section, Table, _markdown
    from harness.leaderboard import leaderboard, render
    from harness.leaderboard.html import page
    from harness.records import Record
    from harness.store import JobRow

    hostile = "evil\n# owned [click](javascript:alert(1)) <script>x</script>|"
    formula = '=HYPERLINK("http://x")'
    with Store(tmp_path) as store:
        for key, model in (("k1", hostile), ("k2", formula)):
            r = Record(model, "fashion-mnist", "accuracy.top1", 0.9, 0.89, 0.91, 100, "higher", "accuracy",
                       run_id="r", interval="wilson")  # fmt: skip
            store.save_job(JobRow(key, "r", model, "fashion-mnist", "accuracy", {}, "m", "t"), [r], 1.0)
        board = leaderboard(store)
        md = render.markdown(board, "t")
        csv = render.csv(board)
        html = page(board, store.records(), "t", figures=[], runs=[])
    lines = md.splitlines()
    live_link = re.compile(r"(?<!\\)\]\(")  # "](" not backslash-escaped: a link Markdown would render
    assert not any(line.startswith("# owned") for line in lines) and not live_link.search(md)
    assert "<script>x" not in md and "<script>x" not in html and "&lt;script&gt;x" in html
    table_rows = [line for line in lines if line.startswith("| ") and "evil" in line]
    assert len(table_rows) == 1 and table_rows[0].count(" | ") == lines[lines.index(table_rows[0]) - 2].count(" | ")
    frame = pd.read_csv(pd.io.common.StringIO(csv))
    assert all(not str(v).startswith(("=", "+", "@")) for v in frame["model"])
    card = _markdown(hostile, [Section("Model Details", [Table(["a"], [[hostile]])])])
    assert not any(line.startswith("# owned") for line in card.splitlines()) and not live_link.search(card)


def test_cli_refuses_a_name_with_a_newline_with_exit_2(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "harness", "run", "--model", "zoo:fmnist-cnn\n# x", "--store",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "control character '\\n'" in done.stderr
    assert not (tmp_path / "results.sqlite").exists()


def test_interpretability_and_corruption_defaults_resolve_into_the_spec(tmp_path):
    text_ = textwrap.dedent("""\
        name: t
        groups:
          - models: [zoo:adult-logreg]
            tasks: [adult]
            metrics: [interpretability]
        """)
    with Store(tmp_path) as store:
        (job,) = runner.plan(parse_suite(text_, "t.yaml"), store).jobs
    assert job.spec.metric.params["examples"] == 500 and job.spec.examples.count == 500


def test_throughput_ranges_are_never_tested_as_confidence_intervals(tmp_path):
    """Two models' overlapping min-max ranges of throughput: no ≈ (a spread of repeats is not a CI),
    and the cell says range."""
    from harness.config import Headline
    from harness.leaderboard.render import cells
    from harness.leaderboard.table import build
    from harness.leaderboard.ties import mark
    from harness.records import Record

    records = [Record(m, "fashion-mnist", "efficiency.throughput", v, v - 50, v + 50, 5, "higher", "efficiency",
                      slice="batch=1,precision=fp32", provenance={"device": "cpu: x"}, interval="range")
               for m, v in (("a", 1000.0), ("b", 990.0))]  # fmt: skip
    board = build(records, [Headline(metric="efficiency.throughput", slice="batch=1,precision=fp32", label="tp")])
    with Store(tmp_path) as store:
        mark(board, store)
    assert board.frame["tp tie"].isna().all()
    assert cells(board)[0]["tp"].startswith("1,000 (range 950-1,050)")


def test_a_group_failing_one_rate_fails_the_criterion_whatever_its_other_rate():
    """Equalized odds judges TPR and FPR: a clear TPR failure is a failure even when the FPR, measured on
    few negatives, is inconclusive."""
    import pandas as pd

    from harness.metrics.fairness import Fairness, FairnessParams
    from tests.helpers import context_for

    rng = np.random.default_rng(3)
    group = np.array(["a"] * 2000 + ["b"] * 1000)
    labels = np.ones(3000, dtype=int)
    labels[:1000] = 0  # a: 1,000 negatives, 1,000 positives
    labels[2000:2040] = 0  # b: 40 negatives, 960 positives
    positive = np.where(group == "a", 0.9, 0.5)  # TPR 0.9 against 0.5: the ratio ~0.56, clearly outside
    preds = np.where(labels == 1, rng.random(3000) < positive, rng.random(3000) < 0.1).astype(int)
    logits = np.stack([1 - preds, preds], 1).astype(np.float32) * 4
    ctx = context_for(logits, labels, attributes=pd.DataFrame({"g": group}), resamples=300)
    records = Fairness().compute(ctx, FairnessParams(features=("g",)))
    verdicts = {r.slice: r for r in records if r.metric == "fairness.verdict"}
    odds = verdicts["feature=g,criterion=equalized_odds"]
    ratios = odds.params["ratios"]["b"]
    assert ratios["true_positive_rate"][2] < 0.8 and ratios["false_positive_rate"][1] < 0.8 < ratios[
        "false_positive_rate"][2]  # fmt: skip
    assert odds.params["verdict"] == "fail" and odds.params["failing"] == ["b"]
    assert verdicts["feature=g,criterion=equal_opportunity"].params["verdict"] == "fail"
