"""Suites: shipped ones validate; broken ones say file, line, field and what is allowed."""

from __future__ import annotations

import pytest

from harness.config import ConfigError, load_suite, parse_suite, suite_names


def test_shipped_suites_validate():
    assert "quick" in suite_names()
    for name in suite_names():
        suite = load_suite(name)
        assert suite.groups and suite.name == name


def test_shorthands_expand_and_params_get_defaults():
    suite = parse_suite(
        "name: s\ngroups:\n  - models: [zoo:fmnist-cnn, {name: 'timm:resnet10t', checkpoint: w.pth}]\n"
        "    tasks: [fashion-mnist]\n    metrics: [accuracy, {calibration: {bins: 10}}, calibration]\n",
        "s.yaml",
    )
    group = suite.groups[0]
    assert [m.name for m in group.models] == ["zoo:fmnist-cnn", "timm:resnet10t"]
    assert group.models[1].checkpoint == "w.pth"
    assert [(m.name, m.params) for m in group.metrics] == [
        ("accuracy", {}), ("calibration", {"bins": 10}), ("calibration", {"bins": 15}),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: s\ngroups:\n  - models: [zoo:fmnist-cnn]\n    tasks: [fashion-mnist\n", r"s\.yaml:\d+: not valid YAML"),
        (
            "name: s\ngroups:\n  - models: [zoo:fmnist-cnn]\n    tasks: [fashion-mnist]\n    metrics: [acuracy]\n",
            r"s\.yaml:5: groups\[0\]\.metrics\[0\]: unknown metric 'acuracy'\. Did you mean 'accuracy'\?",
        ),
        (
            "name: s\ngroups:\n  - models: [zoo:fmnist-cnn]\n    tasks: [fashion-mnist]\n"
            "    metrics: [accuracy]\n    colour: red\n",
            r"s\.yaml:6: groups\[0\]\.colour: unknown field; allowed here: models, tasks, metrics",
        ),
        (
            "name: s\ngroups:\n  - models: [zoo:fmnist-cnn]\n    tasks: [fashion-mnst]\n    metrics: [accuracy]\n",
            r"s\.yaml:4: groups\[0\]\.tasks\[0\]\.name: unknown task 'fashion-mnst'\. Did you mean 'fashion-mnist'",
        ),
        (
            "name: s\ngroups:\n  - models: [zoo:fmnist-cnn]\n    tasks: [fashion-mnist]\n"
            "    metrics:\n      - calibration: {bins: 1}\n",
            r"s\.yaml:6: groups\[0\]\.metrics\[0\]: metric 'calibration': bins: Input should be greater than or "
            r"equal to 2",
        ),
        (
            "name: s\ngroups:\n  - models: [zoo:fmnist-cnn]\n    tasks: [fashion-mnist]\n"
            "    metrics:\n      - calibration: {bin: 10}\n",
            r"metric 'calibration' has no parameter 'bin'; allowed: bins",
        ),
        (
            "name: s\ngroups:\n  - models: [zoo:fmnist-cnx]\n    tasks: [fashion-mnist]\n    metrics: [accuracy]\n",
            r"s\.yaml:3: groups\[0\]\.models\[0\]\.name: unknown zoo model 'fmnist-cnx'\. Did you mean 'fmnist-cnn'",
        ),
        (
            "name: s\nseed: -1\ngroups:\n  - models: [zoo:fmnist-cnn]\n    tasks: [adult]\n    metrics: [accuracy]\n",
            r"s\.yaml:2: seed: Input should be greater than or equal to 0",
        ),
        ("- just\n- a list\n", r"s\.yaml: a suite is a mapping"),
        ("name: s\n", r"s\.yaml:1: groups: required field is missing"),
    ],
)
def test_errors_name_file_line_field_and_allowed(text, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_suite(text, "s.yaml")


def test_unknown_suite_suggests():
    with pytest.raises(ConfigError, match=r"unknown suite 'quik'\. Did you mean 'quick'"):
        load_suite("quik")


def test_missing_suite_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_suite(str(tmp_path / "nope.yaml"))


def test_overrides_replace_lists_and_settings():
    suite = load_suite("quick").with_overrides(models=["zoo:fmnist-cnn"], metrics=["accuracy"], limit=50, seed=3)
    assert all([m.name for m in g.models] == ["zoo:fmnist-cnn"] for g in suite.groups)
    assert all([m.name for m in g.metrics] == ["accuracy"] for g in suite.groups)
    assert (suite.limit, suite.seed, suite.batch_size) == (50, 3, 256)
    with pytest.raises(ConfigError, match="invalid option: --limit: Input should be greater than or equal to 1"):
        load_suite("quick").with_overrides(limit=0)
    with pytest.raises(ConfigError, match="--model zoo:fmnist-cn: unknown zoo model 'fmnist-cn'"):
        load_suite("quick").with_overrides(models=["zoo:fmnist-cn"])
    with pytest.raises(ConfigError, match=r"--task adlt: unknown task 'adlt'\. Did you mean 'adult'"):
        load_suite("quick").with_overrides(tasks=["adlt"])
    with pytest.raises(ConfigError, match="--metric acuracy: unknown metric"):
        load_suite("quick").with_overrides(metrics=["acuracy"])


def test_country_is_a_run_setting_that_keys_only_country_dependent_jobs(tmp_path):
    from harness import runner
    from harness.store import Store

    text = "name: s\ncountry: fra\nlimit: 50\ngroups:\n  - models: [zoo:fmnist-linear]\n    tasks: [fashion-mnist]\n"
    suite = parse_suite(text + "    metrics: [accuracy, efficiency]\n", "s.yaml")
    assert suite.country == "FRA"
    with pytest.raises(ConfigError, match="unknown country 'XX'"):
        suite.with_overrides(country="XX")
    with Store(tmp_path) as store:
        keys = {c: {j.metric: j.key for j in runner.plan(suite.with_overrides(country=c), store).jobs}
                for c in ("FRA", "DEU")}  # fmt: skip
    assert keys["FRA"]["accuracy"] == keys["DEU"]["accuracy"]
    assert keys["FRA"]["efficiency"] != keys["DEU"]["efficiency"]
