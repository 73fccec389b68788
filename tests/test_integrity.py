"""Store integrity: every stored figure checked against what made it (digests, file hashes, recomputation
from per-example outcomes), damaged jobs skipped by views and measured again by runs, `harness verify`,
read-only stores, damaged or foreign databases, forged warm plans and what dead processes leave behind.

Each case damages a copy of one small store the way the issue's trials did (a flipped bit, an edited
row, a truncated file, a copied plan) and runs the real command."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from test_cli import harness

from harness import integrity, warm
from harness.store import Store, StoreError

MODELS = ("zoo:fmnist-linear", "zoo:fmnist-mlp")
RUN = ("run", *(f"--model={m}" for m in MODELS), "--task=fashion-mnist", "--metric=accuracy", "--metric=calibration",
       "--limit=300", "--resamples=100")  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("integrity") / "store"
    harness(*RUN, store=store)
    return store


@pytest.fixture
def store(built, tmp_path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(built, copy)
    return copy


def sql(store: Path, statement: str, args: tuple = ()) -> list[tuple]:
    with closing(sqlite3.connect(store / "results.sqlite")) as db:
        rows = db.execute(statement, args).fetchall()
        db.commit()
    return rows


def top1(store: Path, model: str) -> tuple[str, float]:
    return sql(store, "SELECT job_key, value FROM records WHERE model = ? AND metric = 'accuracy.top1' "
                      "AND slice = 'overall'", (model,))[0]  # fmt: skip


def verify(store: Path) -> tuple[int, dict]:
    proc = harness("verify", "--json", store=store, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def board(store: Path) -> subprocess.CompletedProcess:
    proc = harness("leaderboard", "--format", "csv", store=store)
    assert "Traceback" not in proc.stderr
    return proc


def test_a_fresh_store_verifies_intact(store):
    code, report = verify(store)
    assert code == 0 and report["ok"], report
    assert report["checked"]["jobs"] == 4 and report["checked"]["figures recomputed from outcomes"] == 2
    assert report["unverifiable"]["jobs without a digest"] == 0


def test_a_flipped_bit_in_a_stored_value_is_skipped_by_views_and_measured_again(store):
    """One bit of a REAL in results.sqlite's pages: SQLite's own check passes, the digest does not."""
    _, value = top1(store, "zoo:fmnist-linear")
    database = store / "results.sqlite"
    raw = bytearray(database.read_bytes())
    at = raw.find(struct.pack(">d", value))  # SQLite stores a REAL as 8 big-endian bytes
    assert at > 0
    raw[at + 1] ^= 0x10  # the exponent's low bits: a value that still reads as a plausible accuracy
    database.write_bytes(bytes(raw))
    assert sql(store, "PRAGMA integrity_check") == [("ok",)]
    code, report = verify(store)
    assert code == 1 and any(f["kind"] == "damaged job" and "records differ" in f["detail"] for f in report["findings"])
    proc = board(store)
    assert "skipped job" in proc.stderr and "damaged" in proc.stderr
    rows = proc.stdout.splitlines()
    assert any("zoo:fmnist-mlp" in r for r in rows)  # the rest of the board still renders
    again = harness(*RUN, store=store)
    assert "1 measured" in again.stderr
    assert verify(store)[0] == 0
    assert top1(store, "zoo:fmnist-linear")[1] == pytest.approx(value)


def test_an_edited_record_whose_digest_was_forged_too_is_caught_by_recomputation(store):
    job, value = top1(store, "zoo:fmnist-linear")
    sql(store, "UPDATE records SET value = ? WHERE job_key = ? AND metric = 'accuracy.top1' AND slice = 'overall'",
        (value - 0.1, job))  # fmt: skip
    rows = sql(store, f"SELECT {', '.join(integrity.DIGESTED)} FROM records WHERE job_key = ?", (job,))
    sql(store, "UPDATE jobs SET digest = ? WHERE key = ?", (integrity.records_digest(rows), job))
    code, report = verify(store)
    assert code == 1
    found = [f for f in report["findings"] if f["kind"] == "recomputed"]
    assert len(found) == 1 and found[0]["where"] == job and "column correct" in found[0]["detail"]


def test_a_flipped_bit_in_a_per_example_file_is_detected_by_views_and_verify_and_remeasured(store):
    (path,) = sql(store, "SELECT path FROM examples WHERE model = 'zoo:fmnist-mlp' AND kind = 'clean'")[0]
    raw = bytearray((store / path).read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (store / path).write_bytes(bytes(raw))
    code, report = verify(store)
    assert code == 1
    assert any(f["kind"] == "file" and f["where"] == path for f in report["findings"])
    assert any(f["kind"] == "damaged job" and "zoo:fmnist-mlp" in f["detail"] for f in report["findings"])
    compared = harness("compare", *MODELS, store=store, check=False)
    assert "Traceback" not in compared.stderr and path in compared.stderr
    assert "skipped" in board(store).stderr
    again = harness(*RUN, store=store)
    assert "1 measured" in again.stderr  # the accuracy job whose outcomes the file held
    assert verify(store)[0] == 0


def test_a_truncated_parquet_file_is_skipped_with_a_warning_not_a_traceback(store):
    (path,) = sql(store, "SELECT path FROM examples WHERE model = 'zoo:fmnist-linear'")[0]
    raw = (store / path).read_bytes()
    (store / path).write_bytes(raw[: len(raw) // 3])
    proc = board(store)
    assert proc.returncode == 0 and path in proc.stderr and "zoo:fmnist-mlp" in proc.stdout
    exported = harness("export", "--what", "examples", "-o", str(store.parent / "x.csv"), store=store)
    assert path in exported.stderr and "Traceback" not in exported.stderr
    compared = harness("compare", *MODELS, store=store, check=False)
    assert "Traceback" not in compared.stderr


def test_an_edited_spec_no_longer_matches_its_key(store):
    job, _ = top1(store, "zoo:fmnist-linear")
    (spec,) = sql(store, "SELECT spec FROM jobs WHERE key = ?", (job,))[0]
    data = json.loads(spec)
    data["examples"]["count"] = 10000  # claim the whole test set
    sql(store, "UPDATE jobs SET spec = ? WHERE key = ?", (json.dumps(data, sort_keys=True), job))
    code, report = verify(store)
    assert code == 1 and any("spec no longer hashes" in f["detail"] for f in report["findings"])


def test_a_job_row_deleted_by_hand_does_not_block_later_runs(store):
    job, _ = top1(store, "zoo:fmnist-linear")
    sql(store, "DELETE FROM jobs WHERE key = ?", (job,))  # the sqlite3 shell: foreign keys off, records stay
    code, report = verify(store)
    assert code == 1 and any("job row is gone" in f["detail"] for f in report["findings"])
    again = harness(*RUN, store=store)
    assert "1 measured" in again.stderr
    assert verify(store)[0] == 0


def test_forged_copied_or_malformed_warm_plans_are_ignored(store, tmp_path):
    harness(*RUN, store=store)  # a complete run leaves its plan
    (plan,) = [p for p in (store / "plans").glob("*.json")]
    held = json.loads(plan.read_text())
    assert warm.recall(store, plan.stem) is not None
    forged = {**held, "jobs": held["jobs"][:1]}  # some of the jobs, the digest left as it was
    copied = {**held, "key": "0" * 32}  # another command's plan under this name
    for bad in (forged, copied, {**held, "pairs": [[1, 2]]}, {"pairs": 3, "jobs": "x"}, []):
        plan.write_text(json.dumps(bad))
        assert warm.recall(store, plan.stem) is None
        proc = harness(*RUN, store=store)
        assert "planned from the store" not in proc.stderr and "Traceback" not in proc.stderr
        assert "4 from the store" in proc.stderr  # planned as usual, every job found
    plan.write_text(json.dumps(forged))
    code, report = verify(store)
    assert code == 1 and any(f["kind"] == "plan" for f in report["findings"])


@pytest.mark.parametrize("content", [b"", b"not a database at all, just text\n" * 200, "foreign"])
def test_an_empty_or_foreign_database_is_refused_and_left_as_it_was(tmp_path, content):
    store = tmp_path / "store"
    store.mkdir()
    database = store / "results.sqlite"
    if content == "foreign":
        with closing(sqlite3.connect(database)) as db:
            db.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
            db.commit()
    else:
        database.write_bytes(content)
    before = database.read_bytes()
    for args in (RUN, ("leaderboard",), ("export", "-o", str(tmp_path / "x.csv"))):
        proc = harness(*args, store=store, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "results.sqlite" in proc.stderr
    assert database.read_bytes() == before


def test_a_garbled_database_gives_a_message_not_a_traceback(store):
    database = store / "results.sqlite"
    raw = bytearray(database.read_bytes())
    for page in range(2, len(raw) // 4096):  # every page but the schema's: its b-tree headers garbled
        raw[page * 4096 : page * 4096 + 16] = b"\xff" * 16
    database.write_bytes(bytes(raw))
    for args in (("leaderboard",), ("verify",)):
        proc = harness(*args, store=store, check=False)
        assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr, proc.stderr
        assert "results.sqlite" in proc.stderr + proc.stdout


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_dead_processes_are_listed_by_verify_and_cleaned_when_a_store_is_opened(store):
    pid = dead_pid()
    leftover = store / "examples" / f".abc.parquet.tmp{pid}"
    leftover.write_bytes(b"half a file")
    live = store / "examples" / f".def.parquet.tmp{os.getpid()}"  # this process is alive
    live.write_bytes(b"being written")
    process = json.dumps({"pid": pid, "host": socket.gethostname(), "started": 1.0})
    sql(store, "INSERT INTO runs (run_id, started, status, process) VALUES ('r-dead', 1.0, 'running', ?)", (process,))
    code, report = verify(store)
    assert code == 1
    assert {f["where"] for f in report["findings"] if f["kind"] == "leftover"} == {
        f"examples/{leftover.name}",
        "r-dead",
    }
    Store(store).close()
    assert not leftover.exists() and live.exists()
    assert sql(store, "SELECT status FROM runs WHERE run_id = 'r-dead'") == [("killed",)]
    live.unlink()
    assert verify(store)[0] == 0


def test_a_run_records_its_process_and_reads_complete_afterwards(store):
    runs = Store(store, readonly=True).runs()
    assert runs and runs[-1]["status"] == "complete"
    assert runs[-1]["process"]["pid"] > 0 and runs[-1]["process"]["host"]


def readonly_mount_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind /tmp /tmp && mount -o remount,ro,bind /tmp"],
                           capture_output=True)  # fmt: skip
    return probe.returncode == 0


@pytest.mark.skipif(not readonly_mount_works(), reason="needs unshare and mount (root in a mount namespace)")
def test_a_store_on_a_read_only_mount_is_read_by_every_view(store, tmp_path):
    harness(*RUN, store=store)  # complete, with its warm plan
    python = f"{sys.executable} -m harness"
    out = tmp_path / "out"
    out.mkdir()
    script = f"""
set -u
mount --bind {store} {store} && mount -o remount,ro,bind {store} || exit 99
touch {store}/probe 2>/dev/null && exit 98
{python} leaderboard --store {store} --format csv > {out}/board.csv || echo "leaderboard failed $?"
{python} compare {" ".join(MODELS)} --store {store} --json > {out}/compare.json || echo "compare failed $?"
{python} card zoo:fmnist-mlp --store {store} -o {out}/card.md || echo "card failed $?"
{python} export --store {store} -o {out}/records.csv || echo "export failed $?"
{python} verify --store {store} || echo "verify failed $?"
{python} {" ".join(RUN)} --store {store} 2> {out}/warm.txt || echo "warm run failed $?"
{python} {" ".join(RUN)} --store {store} --seed 5 2> {out}/write.txt; echo "writing run exited $?"
"""
    proc = subprocess.run(["unshare", "-m", "bash", "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "failed" not in proc.stdout, proc.stdout + proc.stderr
    assert "writing run exited 2" in proc.stdout
    assert "zoo:fmnist-mlp" in (out / "board.csv").read_text()
    assert json.loads((out / "compare.json").read_text())
    assert (out / "card.md").is_file() and (out / "records.csv").is_file()
    assert "planned from the store" in (out / "warm.txt").read_text()
    written = (out / "write.txt").read_text()
    assert "cannot be written" in written and "pass --store" in written
    assert not (store / "probe").exists()


def test_a_readonly_store_object_never_writes(store):
    before = sql(store, "SELECT COUNT(*) FROM runs")
    with Store(store, readonly=True) as held:
        assert held.records() and held.jobs()
        with pytest.raises(StoreError, match="read-only"):
            held.start_run("x", None, [], "0")
    assert sql(store, "SELECT COUNT(*) FROM runs") == before
