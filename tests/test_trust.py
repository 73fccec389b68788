"""Trust boundaries: no code runs that the user did not mean as code. A ``torch:<module>:<Class>`` name
imports its module (as Python would) and calls nothing that is not an ``nn.Module`` subclass; a dry run
instantiates nothing; ``trust_remote_code`` comes from the command line or an environment variable the
user sets, never from a suite file, and says what it will run. Each case checks a marker file that the
code would write, through the real command."""

from __future__ import annotations

import logging
import os
import sys

import pytest
from byo_fixtures import tiny_text_model
from test_cli import harness

from harness.config import ConfigError, parse_suite
from harness.models.base import ModelLoadError
from harness.models.torch_source import import_class

NET = """
from pathlib import Path
from torch import nn


class Net(nn.Module):
    def __init__(self, marker: str = "built") -> None:
        super().__init__()
        Path(marker).write_text("instantiated")
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

    def forward(self, x):
        return self.body(x)


def helper(marker: str = "called") -> None:
    Path(marker).write_text("called")
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "usernet.py").write_text(NET)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def suite_file(workdir, name: str, model: str) -> str:
    """A one-model suite file measuring accuracy on Fashion-MNIST; ``model`` is its YAML entry."""
    (workdir / f"{name}.yaml").write_text(
        f"name: {name}\ngroups:\n  - models: [{model}]\n    tasks: [fashion-mnist]\n    metrics: [accuracy]\n"
    )
    return f"{name}.yaml"


def run_here(workdir, *args: str):
    env = {"PYTHONPATH": f"{workdir}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return harness(*args, store=workdir / "store", check=False, env=env)


@pytest.mark.parametrize(
    "model, options",
    [
        ("torch:os:system", ["command=touch pwned"]),
        ("torch:subprocess:Popen", ["args=touch pwned", "shell=true"]),
        ("torch:usernet:helper", ["marker=pwned"]),
    ],
)
def test_a_name_that_is_not_an_nn_module_class_is_refused_before_anything_is_called(workdir, model, options):
    args = ["run", "--model", model, "--task", "fashion-mnist", "--limit", "10", "--metric", "accuracy"]
    for option in options:
        args += ["--model-option", option]
    for extra in ([], ["--dry-run"]):
        proc = run_here(workdir, *args, *extra)
        assert proc.returncode == 2, proc.stderr
        assert "torch.nn.Module subclass" in proc.stderr and "Traceback" not in proc.stderr
        assert not (workdir / "pwned").exists()


def test_a_suite_file_naming_os_system_is_refused_on_a_dry_run(workdir):
    evil = suite_file(workdir, "evil", "{name: 'torch:os:system', options: {command: 'touch pwned'}}")
    proc = run_here(workdir, "run", "--config", evil, "--dry-run")
    assert proc.returncode == 2 and "os.system is a builtin_function_or_method" in proc.stderr
    assert not (workdir / "pwned").exists()


def test_a_dry_run_imports_user_code_but_never_instantiates_it(workdir):
    mine = suite_file(workdir, "mine", "'torch:usernet:Net'")
    proc = run_here(workdir, "run", "--config", mine, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "not built" in proc.stdout
    assert not (workdir / "built").exists()
    proc = run_here(workdir, "run", "--config", mine, "--limit", "20")  # the run itself builds it
    assert proc.returncode == 0, proc.stderr
    assert (workdir / "built").exists()


def test_import_class_checks_before_calling(workdir):
    sys.path.insert(0, str(workdir))
    try:
        assert import_class("usernet:Net", "torch:usernet:Net").__name__ == "Net"
        with pytest.raises(ModelLoadError, match=r"a class not derived from torch\.nn\.Module"):
            import_class("collections:OrderedDict", "torch:collections:OrderedDict")
        with pytest.raises(ModelLoadError, match="is a function"):
            import_class("usernet:helper", "torch:usernet:helper")
    finally:
        sys.path.remove(str(workdir))
    assert not (workdir / "called").exists()


def test_trust_remote_code_in_a_suite_file_is_refused():
    text = (
        "name: remote\ngroups:\n  - models:\n      - name: hf:someone/model\n"
        "        options: {trust_remote_code: true}\n    tasks: [fashion-mnist]\n    metrics: [accuracy]\n"
    )
    with pytest.raises(ConfigError, match=r"remote.yaml:4: hf:someone/model sets trust_remote_code in a suite file"):
        parse_suite(text, "remote.yaml")
    with pytest.raises(ConfigError, match="--trust-remote-code on the command line"):
        parse_suite(text.replace("true", "false"), "remote.yaml")  # any value: a suite file does not decide it


def test_a_suite_file_with_trust_remote_code_exits_2(workdir):
    remote = suite_file(workdir, "remote", "{name: 'hf:x', options: {trust_remote_code: true}}")
    proc = run_here(workdir, "run", "--config", remote, "--dry-run")
    assert proc.returncode == 2 and "HARNESS_TRUST_REMOTE_CODE=1" in proc.stderr


def test_trust_remote_code_says_what_it_will_run(tmp_path, caplog):
    from harness.models.hf_source import announce_remote_code, load_config

    folder = tiny_text_model(tmp_path)
    (folder / "modeling_custom.py").write_text("# a repository's own code\n")
    announce_remote_code.cache_clear()
    with caplog.at_level(logging.WARNING, logger="harness"):
        load_config(str(folder), None, True)
        load_config(str(folder), None, True)
    said = [r.getMessage() for r in caplog.records if "--trust-remote-code runs" in r.getMessage()]
    assert len(said) == 1 and "modeling_custom.py (sha256 " in said[0]
    announce_remote_code.cache_clear()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="harness"):
        load_config(str(folder), None, False)
    assert not caplog.records
