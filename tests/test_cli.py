"""End to end through the real command, as a user runs it (subprocesses, a store in a temp folder)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest

from harness.config import load_suite
from harness.models.zoo import catalog

QUICK_MODELS = sorted({m.name for g in load_suite("quick").groups for m in g.models})


def harness(
    *args: str, store: Path | None = None, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "harness", *args]
    if store is not None:
        cmd += ["--store", str(store)]
    full_env = {**os.environ, "COLUMNS": "160", **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def counts(store: Path) -> tuple[int, int, int]:
    with closing(sqlite3.connect(store / "results.sqlite")) as db:
        jobs = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        records = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        distinct = db.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT model, task, metric, slice, params FROM records)"
        ).fetchone()[0]
    return jobs, records, distinct


@pytest.fixture(scope="module")
def quick_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("quick")
    proc = harness("run", "--suite", "quick", "--limit", "400", "--resamples", "200", "--json", store=store)
    return store, json.loads(proc.stdout)


def test_quick_suite_stores_accuracy_and_calibration_for_every_zoo_model(quick_store):
    store, records = quick_store
    assert set(QUICK_MODELS) == {f"zoo:{n}" for n in catalog()}
    overall = {(r["model"], r["metric"]): r for r in records if r["slice"] == "overall"}
    for model in QUICK_MODELS:
        for metric in (
            "accuracy.top1",
            "accuracy.balanced",
            "accuracy.macro_f1",
            "calibration.ece",
            "calibration.brier",
            "calibration.nll",
        ):
            r = overall[model, metric]
            assert r["ci_low"] <= r["value"] <= r["ci_high"], (model, metric)
            assert r["n"] == (300 if "german" in model else 400)
            assert r["provenance"]["model_fingerprint"] and r["provenance"]["task_fingerprint"]
            assert r["provenance"]["torch"] and r["provenance"]["device"].startswith("cpu")
            assert r["provenance"]["seed"] == 0 and r["provenance"]["limit"] == 400
    jobs, stored, distinct = counts(store)
    assert jobs == 2 * len(QUICK_MODELS) and stored == len(records) == distinct


def test_second_run_is_served_from_the_store(quick_store):
    store, _ = quick_store
    before = counts(store)
    proc = harness("run", "--suite", "quick", "--limit", "400", "--resamples", "200", store=store)
    assert f"{before[0]} from the store, 0 measured" in proc.stderr
    assert "zoo:fmnist-cnn" in proc.stdout and "top1" in proc.stdout
    assert counts(store) == before


def test_no_cache_measures_again_without_duplicates(quick_store):
    store, _ = quick_store
    before = counts(store)
    proc = harness("run", "--suite", "quick", "--limit", "400", "--resamples", "200", "--no-cache",
                   "--model", "zoo:adult-logreg", store=store)  # fmt: skip
    assert "0 from the store, 2 measured" in proc.stderr
    assert counts(store) == before


def test_dry_run_shows_what_is_stored(quick_store):
    store, _ = quick_store
    plan = json.loads(
        harness(
            "run", "--suite", "quick", "--limit", "400", "--resamples", "200", "--dry-run", "--json", store=store
        ).stdout
    )
    assert plan["jobs"] and all(job["stored"] for job in plan["jobs"])
    other = json.loads(harness("run", "--suite", "quick", "--limit", "401", "--dry-run", "--json", store=store).stdout)
    assert not any(job["stored"] for job in other["jobs"])  # another subset is another measurement
    text = harness("run", "--suite", "quick", "--limit", "400", "--resamples", "200", "--dry-run", store=store).stdout
    assert "stored" in text and f"{len(plan['jobs'])} jobs" in text
    # $HARNESS_STORE names the store when --store does not
    via_env = harness(
        "run", "--limit", "400", "--resamples", "200", "--dry-run", "--json", env={"HARNESS_STORE": str(store)}
    )
    assert all(job["stored"] for job in json.loads(via_env.stdout)["jobs"])


def test_export_records_and_examples(quick_store, tmp_path):
    store, records = quick_store
    harness("export", "--what", "records", "-o", str(tmp_path / "r.csv"), store=store)
    frame = pd.read_csv(tmp_path / "r.csv")
    for column in ("model", "task", "metric", "slice", "value", "ci_low", "ci_high", "n", "direction", "category",
                   "params", "flags", "run_id", "provenance_model_fingerprint", "provenance_device"):  # fmt: skip
        assert column in frame.columns
    assert len(frame) == len(records)
    harness("export", "--what", "records", "--model", "zoo:adult-mlp", "-o", str(tmp_path / "r.json"), store=store)
    assert {r["model"] for r in json.loads((tmp_path / "r.json").read_text())} == {"zoo:adult-mlp"}
    harness("export", "--what", "examples", "--suite", "quick", "--task", "adult", "--format", "parquet",
            "-o", str(tmp_path / "e.parquet"), store=store)  # fmt: skip
    examples = pd.read_parquet(tmp_path / "e.parquet")
    assert {"model", "task", "example", "label", "prediction", "confidence", "correct", "attr_sex", "attr_race"} <= set(
        examples.columns
    )
    assert len(examples) == 3 * 400 and set(examples["task"]) == {"adult"}
    # per-example correctness agrees with the stored accuracy
    acc = examples.groupby("model")["correct"].mean()
    top1 = {r["model"]: r["value"] for r in records if r["metric"] == "accuracy.top1" and r["slice"] == "overall"}
    for model, value in acc.items():
        assert value == pytest.approx(top1[model])
    harness("export", "--what", "examples", "--task", "adult", "--format", "json", "-o", str(tmp_path / "e.json"),
            store=store)  # fmt: skip
    text = (tmp_path / "e.json").read_text()
    rows = json.loads(text)
    assert len(rows) == len(examples) and "null" not in text and "\n" not in text  # compact, no empty columns
    assert rows[0]["correct"] == bool(examples["correct"].iloc[0])
    harness("export", "--what", "runs", "-o", str(tmp_path / "runs.csv"), store=store)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert runs["started"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$").all()
    measured = runs[runs["energy_wh"].notna()]
    assert len(measured) >= 1 and (measured["seconds"] > 0).all() and (measured["carbon_g"] > 0).all()
    assert set(measured["energy_method"]) <= {"measured", "estimated"} and set(measured["country"]) == {"USA"}


def test_list_shows_everything_with_descriptions():
    text = harness("list").stdout
    names = [*QUICK_MODELS, "fashion-mnist", "adult", "german-credit", "accuracy", "calibration", "quick"]
    for name in [*names, "adversarial", "tabular-shift", "pgd-linf", "hopskipjump", "robustness"]:
        assert name in text
    assert "Gaussian noise" in harness("list", "models").stdout


BAD_INPUTS = [
    (["run", "--model", "zoo:fmnist-cn"], "Did you mean 'fmnist-cnn'"),
    (["run", "--suite", "quik"], "unknown suite 'quik'. Did you mean 'quick'"),
    (["run", "--task", "adlt"], "Did you mean 'adult'"),
    (["run", "--metric", "acuracy"], "Did you mean 'accuracy'"),
    (["run", "--device", "cuda", "--model", "zoo:adult-mlp"], "no usable CUDA GPU"),
    (["run", "--device", "tpu7"], "unknown device 'tpu7'"),
    (["run", "--model", "zoo:fmnist-cnn", "--task", "adult"], "trained for task 'fashion-mnist'"),
    (["run", "--model", "timm:resnet10t", "--task", "fashion-mnist", "--checkpoint", "CKPT"], "garbage.pth"),
    (["run", "--config", "CONFIG"], "broken.yaml:4: not valid YAML: expected ',' or ']'"),
    (["run", "--limit", "0"], "limit"),
    (["run", "--country", "FRNC"], "alpha-3 code such as USA, FRA or IND. Did you mean FRA (France)"),
    (["export", "-o", "out.xlsx"], "--format"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[" ".join(a[:3]) for a, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_a_message_and_keeps_the_store(quick_store, tmp_path, args, message):
    store, _ = quick_store
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint" * 64)
    config = tmp_path / "broken.yaml"
    config.write_text("name: broken\ngroups:\n  - models: [zoo:fmnist-cnn\n")
    args = [str(garbage) if a == "CKPT" else str(config) if a == "CONFIG" else a for a in args]
    before = counts(store)
    proc = harness(*args, store=store, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert counts(store) == before
    with closing(sqlite3.connect(store / "results.sqlite")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def wait_for_jobs(proc: subprocess.Popen, store: Path, jobs: int, timeout: float = 300) -> None:
    """Until the run ``proc`` has stored ``jobs`` jobs, ended, or ``timeout`` seconds have passed."""
    deadline, done = time.time() + timeout, 0
    while time.time() < deadline and proc.poll() is None and done < jobs:
        if (store / "results.sqlite").exists():
            try:
                with closing(sqlite3.connect(store / "results.sqlite", timeout=1)) as db:
                    done = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
        time.sleep(0.05)


def test_ctrl_c_says_what_happened_and_marks_the_run_interrupted(tmp_path):
    """SIGINT (Ctrl-C) mid-run: exit 130 with a message, the run recorded as ``interrupted`` (not
    ``failed``), the finished jobs kept whole."""
    store = tmp_path / "store"
    args = [sys.executable, "-m", "harness", "run", "--suite", "quick", "--limit", "3000", "--store", str(store)]
    # a pytest-xdist worker ignores SIGINT and a child inherits that: give the run a shell's default
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    wait_for_jobs(proc, store, 2)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted: what finished is stored" in stderr
    assert "Traceback" not in stderr
    with closing(sqlite3.connect(store / "results.sqlite")) as db:
        ((status, failures),) = db.execute("SELECT status, failures FROM runs").fetchall()
    assert status == "interrupted" and json.loads(failures) == []
    jobs, records, distinct = counts(store)
    assert 2 <= jobs < 2 * len(QUICK_MODELS) and records == distinct


def test_version_prints_the_package_version():
    from importlib.metadata import version

    assert harness("--version").stdout.strip() == f"harness {version('harness')}"


def test_sigkill_mid_run_then_resume_leaves_a_complete_store(tmp_path):
    store = tmp_path / "killed"
    args = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--suite",
        "quick",
        "--limit",
        "3000",
        "--quiet",
        "--store",
        str(store),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_jobs(proc, store, 3)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    jobs_after_kill, _, _ = counts(store)
    assert 3 <= jobs_after_kill < 2 * len(QUICK_MODELS)
    resumed = harness("run", "--suite", "quick", "--limit", "3000", store=store)
    assert f"{jobs_after_kill} from the store, {2 * len(QUICK_MODELS) - jobs_after_kill} measured" in resumed.stderr
    jobs, records, distinct = counts(store)
    assert jobs == 2 * len(QUICK_MODELS) and records == distinct  # complete, no duplicates
    with closing(sqlite3.connect(store / "results.sqlite")) as db:
        assert db.execute("SELECT COUNT(*) FROM jobs WHERE key NOT IN (SELECT job_key FROM records)").fetchone()[0] == 0
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # and the resumed store holds what an uninterrupted run would
    clean = tmp_path / "clean"
    harness("run", "--suite", "quick", "--limit", "3000", "--quiet", store=clean)
    assert counts(clean) == (jobs, records, distinct)


def test_listing_and_help_do_not_import_torch():
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom harness.cli import app\n"
        "r = CliRunner().invoke(app, ['list'])\nassert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(app, ['run', '--help'])\nassert r.exit_code == 0, r.output\n"
        "print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


def test_wide_result_tables_continue_below_and_show_flags_once(monkeypatch):
    """A family with more columns than the terminal holds is split into numbered tables, epsilons in
    order (linf before l2), and a model's flags are listed once, in the last table."""
    from rich.console import Console

    from harness import cli
    from harness.records import Record

    def record(slice_: str, value: float, flags: tuple[str, ...] = ()) -> Record:
        return Record(model="zoo:m", task="fashion-mnist", metric="adversarial.robust_accuracy", value=value,
                      ci_low=value - 0.01, ci_high=value + 0.01, n=100, direction="higher", category="robustness",
                      slice=slice_, params={}, flags=flags, run_id="r", provenance={})  # fmt: skip

    slices = ["attack=worst-l2@1", "attack=worst-linf@0.1", "attack=none", "attack=worst-linf@0.01",
              "attack=worst-l2@0.5", "attack=worst-linf@0.03"]  # fmt: skip
    records = [record(s, 0.5, ("zero-gradients",) if "0.1" in s else ()) for s in slices]
    piped = Console(width=80, record=True, force_terminal=False)  # a pipe or a file: one table, whole
    monkeypatch.setattr(cli, "out", piped)
    cli.print_results(records, [("zoo:m", "fashion-mnist")])
    whole = piped.export_text()
    assert "1/2" not in whole and all(h in whole for h in ("clean", "linf 0.01", "l2 1 ")) and "…" not in whole
    console = Console(width=80, record=True, force_terminal=True)  # an 80-column terminal: split
    monkeypatch.setattr(cli, "out", console)
    cli.print_results(records, [("zoo:m", "fashion-mnist")])
    text = console.export_text()
    assert "adversarial 1/2" in text and "adversarial 2/2" in text
    order = [text.index(h) for h in ("clean", "linf 0.01", "linf 0.03", "linf 0.1", "l2 0.5", "l2 1 ")]
    assert order == sorted(order)
    assert text.count("zero-gradients") == 1 and text.count("⚑") >= 2


def test_several_devices_run_the_suite_once_each(tmp_path):
    """``--device cpu,cpu`` runs twice: efficiency is keyed by the device, so the second run finds it
    stored; a device this machine lacks in the list stops everything before any work."""
    import torch

    suite = tmp_path / "cost.yaml"
    suite.write_text(
        "name: cost\ngroups:\n  - models: [zoo:fmnist-linear]\n    tasks: [fashion-mnist]\n    metrics:\n"
        "      - accuracy\n      - efficiency: {batch_sizes: [8], repeats: 2, latency_queries: 10, energy_seconds: 0}\n"
    )
    proc = harness("run", "--config", str(suite), "--device", "cpu,cpu", store=tmp_path / "store")
    assert proc.stderr.count("on cpu:") == 2
    assert "0 from the store, 2 measured" in proc.stderr
    assert "2 from the store, 0 measured" in proc.stderr
    if not torch.cuda.is_available():
        proc = harness("run", "--config", str(suite), "--device", "cpu,cuda", store=tmp_path / "other", check=False)
        assert proc.returncode == 2 and "no usable CUDA GPU" in proc.stderr
        assert not (tmp_path / "other" / "results.sqlite").exists()


def test_interpretability_suite_runs_end_to_end_and_stores_its_figures(tmp_path):
    from harness.store import Store

    store = tmp_path / "store"
    proc = harness("run", "--suite", "interpretability", "--model", "zoo:fmnist-linear", "--model",
                   "zoo:adult-logreg", "--limit", "40", store=store)  # fmt: skip
    assert "fashion-mnist · interpretability" in proc.stdout and "adult · interpretability" in proc.stdout
    assert "zoo:fmnist-linear · integrated-gradients" in proc.stdout and "sanity" in proc.stdout
    with Store(store) as results:
        figures = {(f["model"], f["name"]) for f in results.figures()}
        records = results.records(metrics=["interpretability"])
    assert figures == {("zoo:fmnist-linear", "attributions"), ("zoo:adult-logreg", "feature-importance")}
    methods = {r.slice.split(",")[0] for r in records if r.metric == "interpretability.randomisation_pass"}
    assert methods == {"method=saliency", "method=integrated-gradients", "method=gradient-shap",
                       "method=input-x-gradient", "method=deeplift", "method=occlusion", "method=feature-ablation",
                       "method=shapley-value-sampling"}  # fmt: skip
    assert harness("list", "explainers").stdout.count("\n") >= 8


def test_leaderboard_of_the_quick_suite_in_every_text_format(quick_store, tmp_path):
    store, records = quick_store
    md = harness("leaderboard", "--suite", "quick", "--format", "md", store=store).stdout
    assert "## fashion-mnist · any (ranked by accuracy)" in md and "| 1 | zoo:fmnist-" in md
    top1 = {r["model"]: r["value"] for r in records if r["metric"] == "accuracy.top1" and r["slice"] == "overall"}
    harness("leaderboard", "--suite", "quick", "--task", "adult", "-f", "json", "-o", str(tmp_path / "b.json"),
            store=store)  # fmt: skip
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [r["model"] for r in rows] == sorted((m for m in top1 if m.startswith("zoo:adult")), key=lambda m: -top1[m])
    assert all(r["figures"]["accuracy"]["value"] == pytest.approx(top1[r["model"]]) for r in rows)
    terminal = harness("leaderboard", "--suite", "quick", "--sort", "ECE", store=store).stdout
    assert "ranked by ECE" in terminal
    bad = harness("leaderboard", "--suite", "quick", "--sort", "speed", store=store, check=False)
    assert bad.returncode == 2 and "cannot sort by 'speed'" in bad.stderr


def test_compare_two_zoo_models_on_the_quick_suite(quick_store):
    store, records = quick_store
    rows = json.loads(harness("compare", "zoo:fmnist-cnn", "zoo:fmnist-mlp", "--json", store=store).stdout)
    top1 = {r["model"]: r["value"] for r in records if r["metric"] == "accuracy.top1" and r["slice"] == "overall"}
    accuracy = next(r for r in rows if r["figure"] == "accuracy.top1")
    assert accuracy["a"] == pytest.approx(top1["zoo:fmnist-cnn"]) and accuracy["b"] == pytest.approx(
        top1["zoo:fmnist-mlp"]
    )
    assert accuracy["test"] == "McNemar exact" and accuracy["verdict"] in (
        "A better",
        "B better",
        "no significant difference",
    )
    shown = harness("compare", "zoo:fmnist-cnn", "zoo:fmnist-mlp", store=store).stdout
    assert "accuracy.top1" in shown and "every figure compared, by family" in shown
    assert f"over {len(rows)} figures" in shown
    piped = harness("compare", "zoo:fmnist-cnn", "zoo:fmnist-mlp", store=store, env={"COLUMNS": "60"}).stdout
    line = next(x for x in piped.splitlines() if "accuracy.top1" in x)  # a file gets every cell whole
    verdict = {"no significant difference": "n.s."}.get(accuracy["verdict"], accuracy["verdict"])
    assert "…" not in line and verdict in line
    assert f"{accuracy['p_holm']:.2g}" in line and f"{100 * accuracy['difference']:+.1f}" in line  # points
    assert f"{100 * accuracy['a']:.1f}" in line  # a proportion in percent, as every other view prints it
    bad = harness("compare", "zoo:fmnist-cnn", "zoo:adult-mlp", store=store, check=False)
    assert bad.returncode == 2 and "never evaluated on the same task" in bad.stderr


def test_model_card_of_the_mitigated_adult_model_round_trips_through_huggingface_hub(quick_store, tmp_path):
    import shutil

    from huggingface_hub import ModelCard

    store = tmp_path / "store"
    shutil.copytree(quick_store[0], store)
    run = harness("run", "--suite", "fairness", "--model", "zoo:adult-mlp-fair", "--limit", "400", "--resamples",
                  "200", "--json", store=store)  # fmt: skip
    records = json.loads(run.stdout)
    info = tmp_path / "info.yaml"
    info.write_text("intended_use: ranking income-survey rows for <research> only\n")
    path = tmp_path / "card" / "MODEL_CARD.md"
    harness("card", "zoo:adult-mlp-fair", "--task", "adult", "--info", str(info), "-o", str(path), store=store)
    text = path.read_text()
    for section in ("Model Details", "Intended Use", "Factors", "Metrics", "Evaluation Data", "Training Data",
                    "Quantitative Analyses", "Ethical Considerations", "Caveats and Recommendations"):  # fmt: skip
        assert f"## {section}" in text
    assert "ranking income-survey rows for &lt;research&gt; only" in text
    assert "Out-of-scope uses: any decision about a real person" in text  # the zoo states it; --info added the use
    assert "Weakest sex group:" in text and "accuracy gap between sex groups" in text
    assert "(rates-by-sex.png)" not in text and "MODEL_CARD_figures/rates-by-sex.png" in text
    assert (path.parent / "MODEL_CARD_figures" / "rates-by-sex.png").read_bytes()[:4] == b"\x89PNG"
    loaded = ModelCard.load(path)  # Hugging Face's own parser
    accuracy = next(r for r in records if r["metric"] == "accuracy.top1" and r["slice"] == "overall")
    result = next(e for e in loaded.data.eval_results if e.metric_type == "accuracy.top1")
    assert result.metric_value == pytest.approx(accuracy["value"], abs=1e-6) and result.dataset_name == "adult"
    assert loaded.data.co2_eq_emissions["emissions"] > 0 and "codecarbon" in loaded.data.co2_eq_emissions["source"]
    html = tmp_path / "card.html"  # the format from the file's name: no --format needed
    harness("card", "zoo:adult-mlp-fair", "--task", "adult", "--info", str(info), "-o", str(html), store=store)
    page = html.read_text()
    assert page.startswith("<!doctype html>")
    assert page.index("age=&lt;25") < page.index("age=25-44") < page.index("age=45-64")  # groups in natural order
    assert "&lt;research&gt;" in page and "<research>" not in page
    assert 'src="data:image/png;base64,' in page and "_figures/" not in page  # one self-contained file
    assert not (tmp_path / "card_figures").exists()
    board = tmp_path / "board.html"
    harness("leaderboard", "-o", str(board), store=store)
    assert board.read_text().startswith("<!doctype html>")
    missing = harness("card", "zoo:german-logreg", "--task", "adult", store=store, check=False)
    assert missing.returncode == 2 and "no records of zoo:german-logreg on adult" in missing.stderr


def test_committed_leaderboards_match_a_fresh_run_of_the_fast_suites(tmp_path):
    """``--check`` re-runs quick and fairness and compares with leaderboards/; a changed figure in one
    file is reported for that file only, with exit status 1."""
    import shutil

    folder = tmp_path / "leaderboards"
    shutil.copytree(Path(__file__).parent.parent / "leaderboards", folder)
    quick = folder / "quick.md"
    lines = quick.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("| 1 | "))
    lines[row] = lines[row].replace("| 1 | ", "| 1 | zoo:tampered-", 1)
    quick.write_text("\n".join(lines) + "\n")
    proc = harness("leaderboard", "--check", "--dir", str(folder), check=False)
    assert proc.returncode == 1, proc.stderr
    assert "quick.md" in proc.stderr and "zoo:tampered-" in proc.stderr
    assert "fairness" not in proc.stderr and "quick.json" not in proc.stderr


def test_a_table_too_wide_for_the_terminal_wraps_its_cells_instead_of_cutting_them(monkeypatch):
    from rich.console import Console
    from rich.table import Table

    from harness import cli

    screen = Console(force_terminal=True, width=40, record=True)
    monkeypatch.setattr(cli, "out", screen)
    table = Table("figure", "A - B (95% CI)", "verdict")
    for column in table.columns:
        column.no_wrap = True
    table.add_row("robust_accuracy attack=worst-Linf@0.05", "+0.078 [+0.071, +0.085]", "A better")
    cli.print_whole(table)
    shown = screen.export_text()
    assert "…" not in shown and max(len(line) for line in shown.splitlines()) <= 40
    assert "0.085]" in shown and "better" in shown
