"""Membership inference. Checked: the TPR at a fixed FPR equals scikit-learn's ROC curve on the same
scores; the attacks' scores equal direct formulas; a deliberately overfit model (trained here on 200
Adult rows for many epochs) leaks clearly; members scored against members (two halves of the same
non-members) give an AUC of about 0.5 within its interval; too few non-members for a TPR at 0.1% FPR
give a flagged NaN, not a number."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from harness.leaderboard.compare import compare
from harness.metrics.membership import MIN_FALSE_POSITIVES, Membership, MembershipParams, membership_figures
from harness.privacy import get_attack
from harness.tasks import get_task


def test_tpr_at_fpr_and_auc_equal_scikit_learns():
    rng = np.random.default_rng(0)
    members, others = rng.normal(0.4, 1, 4000), rng.normal(0, 1, 3000)
    found = membership_figures(members, others, resamples=50)
    truth, scores = np.r_[np.ones(4000), np.zeros(3000)], np.r_[members, others]
    fpr, tpr, _ = roc_curve(truth, scores, drop_intermediate=False)
    assert found["auc"].value == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)
    assert found["tpr@0.01"].value == pytest.approx(tpr[fpr <= 0.01].max(), abs=1e-12)
    assert found["tpr@0.0"].value == pytest.approx(tpr[fpr <= 0].max(), abs=1e-12)
    assert MIN_FALSE_POSITIVES > 3000 * 0.001 and np.isnan(found["tpr@0.001"].value)  # 3 false positives: too few


def test_the_attacks_scores_follow_their_formulas():
    rng = np.random.default_rng(1)
    logits, labels = rng.normal(0, 2, (50, 4)), rng.integers(0, 4, 50)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    rows = np.arange(50)
    assert np.allclose(get_attack("loss").score(logits, labels), np.log(p[rows, labels]))
    assert np.allclose(get_attack("confidence").score(logits, labels), p.max(1))
    assert np.allclose(get_attack("entropy").score(logits, labels), (p * np.log(p)).sum(1))
    mentr = [-(1 - p[i, y]) * np.log(p[i, y]) - sum(p[i, k] * np.log(1 - p[i, k]) for k in range(4) if k != y)
             for i, y in enumerate(labels)]  # fmt: skip
    assert np.allclose(get_attack("modified-entropy").score(logits, labels), -np.asarray(mentr))


def test_an_overfit_model_leaks_and_non_members_against_non_members_do_not():
    """An MLP trained here on 300 Fashion-MNIST images for 300 full-batch steps memorises them. (An Adult
    MLP overfit on 200 rows does not leak to the loss attack: it is even more confident on rows it never
    saw, whose standardised features lie further out.)"""
    from harness.models.zoo import build_module

    task = get_task("fashion-mnist")
    train, test = task.load("train-sample"), task.load()
    module = build_module("fmnist-mlp", task)
    torch.manual_seed(0)
    optimiser = torch.optim.Adam(module.parameters(), lr=0.001)
    x, y = train.data[:300], train.labels[:300]
    for _ in range(300):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(module(x), y).backward()
        optimiser.step()
    module.eval()
    loss = get_attack("loss")
    with torch.no_grad():
        inside = loss.score(module(x).double().numpy(), y.numpy())
        outside = loss.score(module(test.data[:300]).double().numpy(), test.labels[:300].numpy())
        halves = loss.score(module(test.data[300:900]).double().numpy(), test.labels[300:900].numpy())
    leaked = membership_figures(inside, outside)["auc"]
    assert leaked.ci_low > 0.6, leaked
    same = membership_figures(halves[:300], halves[300:])["auc"]
    assert same.ci_low <= 0.5 <= same.ci_high, same


def test_the_metric_needs_a_training_split():
    with pytest.raises(ValueError, match="training split"):
        Membership().check(get_task("sklearn-digits"), MembershipParams())
    Membership().check(get_task("adult"), MembershipParams())


def test_the_metric_runs_and_splits_by_group(tmp_path, monkeypatch):
    from test_cli import harness

    from harness.store import Store

    store = tmp_path / "store"
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    harness("run", "--model", "zoo:adult-mlp", "--model", "zoo:adult-mlp-fair", "--task", "adult", "--metric",
            "membership", "--resamples", "200", "--quiet", store=store)  # fmt: skip
    with Store(store) as results:
        every = results.records()
        records = [r for r in every if r.model == "zoo:adult-mlp"]
        scores = results.examples(kind="membership", models=["zoo:adult-mlp"])
        paired = {c.slice: c for c in compare(results, "zoo:adult-mlp", "zoo:adult-mlp-fair")}
    fair = {r.slice: r.value for r in every if r.model == "zoo:adult-mlp-fair" and r.metric == "membership.auc"}
    attacks = {"loss", "confidence", "entropy", "modified-entropy", "lira-offline"}
    assert set(paired) == {f"attack={a}" for a in attacks}
    for where, c in paired.items():  # the paired difference is the difference of the two records
        mine = next(r.value for r in records if r.metric == "membership.auc" and r.slice == where)
        assert c.metric == "membership.auc" and c.difference.value == pytest.approx(mine - fair[where], abs=1e-12)
    auc = {r.parts["attack"]: r for r in records if r.metric == "membership.auc" and set(r.parts) == {"attack"}}
    assert set(auc) == attacks
    assert all(0.3 < r.value < 0.8 and r.ci_low <= r.value <= r.ci_high for r in auc.values())
    tpr = {r.parts["attack"]: r.value for r in records if r.metric == "membership.tpr" and r.parts["fpr"] == "0.01"}
    assert tpr["lira-offline"] >= tpr["loss"]  # the zoo: reference models make the attack at least as strong
    groups = {r.parts["group"] for r in records if r.metric == "membership.auc" and r.parts.get("feature") == "sex"}
    assert groups == {"Female", "Male"}
    assert len(scores) == 15000 and scores["member"].sum() == 5000  # 10,000 non-members: TPR at 0.1% FPR
    tpr = {r.parts["attack"]: r for r in records if r.metric == "membership.tpr" and r.parts["fpr"] == "0.001"}
    assert all(np.isfinite(r.value) and not r.flags for r in tpr.values())
    assert auc["loss"].params["non_members"] == 10000 and auc["loss"].params["non_members_from"] == [
        "test",
        "validation",
    ]
    members = scores[scores["member"]]
    direct = roc_auc_score(scores["member"], scores["loss"])
    assert auc["loss"].value == pytest.approx(direct, abs=1e-12) and len(members) == 5000


def test_a_glob_headline_shows_the_strongest_attack_or_the_best_detector():
    from harness.config import Headline
    from harness.leaderboard.render import cells
    from harness.leaderboard.table import build
    from harness.records import Record

    def record(metric, where, value, direction, category):
        return Record("m", "t", metric, value, value - 0.01, value + 0.01, 100, direction, category, where)

    records = [record("membership.auc", "attack=loss", 0.61, "lower", "privacy"),
               record("membership.auc", "attack=entropy", 0.55, "lower", "privacy"),
               record("membership.auc", "attack=loss,class=Coat", 0.70, "lower", "privacy"),  # not the headline's keys
               record("ood.auroc", "detector=msp,set=s", 0.80, "higher", "ood"),
               record("ood.auroc", "detector=knn,set=s", 0.95, "higher", "ood"),
               record("ood.auroc", "detector=odin,set=s", float("nan"), "higher", "ood")]  # fmt: skip
    board = build(records, [Headline(metric="membership.auc", slice="attack=*", label="leak", pick="worst"),
                            Headline(metric="ood.auroc", slice="detector=*,set=s", label="ood")])  # fmt: skip
    row = board.frame.iloc[0]
    assert row["leak"] == 0.61 and row["ood"] == 0.95  # the attacker's best, the defender's best
    shown = cells(board)[0]
    assert "(loss)" in shown["leak"] and "(knn)" in shown["ood"]


def test_lira_offline_follows_its_formula():
    """Independently: a loop over records of phi = log p_y - log(1 - p_y), the reference models' mean
    and the pooled standard deviation about the per-record means (Carlini et al. 2022, global variance)."""
    from harness.privacy.attacks import scaled_confidence

    rng = np.random.default_rng(2)
    logits, labels = rng.normal(0, 2, (40, 3)), rng.integers(0, 3, 40)
    reference = rng.normal(0, 2, (4, 40, 3))

    def phi(z, y):
        p = np.exp(z) / np.exp(z).sum()
        return np.log(p[y]) - np.log(1 - p[y])

    target = np.array([phi(logits[i], labels[i]) for i in range(40)])
    out = np.array([[phi(reference[k, i], labels[i]) for i in range(40)] for k in range(4)])
    deviations = [(out[k, i] - out[:, i].mean()) ** 2 for k in range(4) for i in range(40)]
    sigma = np.sqrt(sum(deviations) / (4 * 40 - 40))
    assert np.allclose(scaled_confidence(logits, labels), target)
    assert np.allclose(get_attack("lira-offline").score(logits, labels, reference), (target - out.mean(0)) / sigma)
    big = np.array([[40.0, 0.0, 0.0]])  # p_y rounds to 1 in float64: phi stays finite (= 40 - log 2)
    assert scaled_confidence(big, np.array([0]))[0] == pytest.approx(40 - np.log(2))
    with pytest.raises(ValueError, match="at least 2 reference models"):
        get_attack("lira-offline").score(logits, labels, reference[:1])


def test_reference_models_train_once_on_records_that_are_not_attacked(tmp_path, monkeypatch):
    """The reference models train on halves of the records outside the attacked ones (the training split's
    non-members of the attack and the test split's records not drawn as non-members), once: the second
    job reads them from the cache. A model outside the zoo gets the reason instead of a figure."""
    from harness.context import EvalContext
    from harness.models import load_model
    from harness.models.zoo import train as zoo_train
    from harness.privacy.references import recipe_for

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    task = get_task("adult")
    model = load_model("zoo:adult-logreg", task)
    seen = []
    real_fit = zoo_train.fit
    monkeypatch.setattr(zoo_train, "fit", lambda name, split, **kw: seen.append(split) or real_fit(name, split, **kw))
    ctx = EvalContext(model, task, task.load(), torch.device("cpu"), 1024, 0, 100, "t", {})
    params = MembershipParams(attacks=("loss", "lira-offline"), examples=400, non_members=600, reference_models=2)
    first = Membership().compute(ctx, params)
    assert len(seen) == 2 and len(list((tmp_path / "cache" / "reference-models").glob("*.safetensors"))) == 2
    scores = ctx.outputs["membership"]
    members = set(scores.loc[scores["member"], "example"])
    others = set(scores.loc[~scores["member"], "example"])
    assert len(members) == 400 and len(others) == 600
    held_out = len(task.load("validation"))  # Adult's held-out rows join the non-members' pool
    assert any(i >= len(task.load()) for i in others)  # some drawn from it (ids offset by the test split's size)
    for half in seen:
        part = half.attributes
        assert len(half) == (len(task.load("train")) - 400 + len(task.load()) + held_out - 600) // 2
        assert not members & set(part.loc[part["split"] == "train", "index"])
        assert not others & set(part.loc[part["split"].isin(["test", "validation"]), "index"])
    lira = next(r for r in first if r.slice == "attack=lira-offline" and r.metric == "membership.auc")
    assert lira.params["reference_models"] == 2 and lira.params["reference_recipe"] == "zoo:adult-logreg"
    monkeypatch.setattr(zoo_train, "fit", lambda *a, **k: pytest.fail("a reference model was trained again"))
    again = Membership().compute(ctx, params)
    assert [r.slice for r in again] == [r.slice for r in first]
    assert np.allclose([r.value for r in again], [r.value for r in first], equal_nan=True, rtol=0, atol=0)

    named, why = recipe_for(type("M", (), {"name": "torch:mynets:Net"})(), task, None)
    assert named is None and "reference_recipe" in why
    named, why = recipe_for(model, task, "fmnist-cnn")
    assert named is None and "trains on 'fashion-mnist'" in why


def test_the_cards_leakage_sentence_names_the_attack_and_its_reference_models():
    from harness.cards.card import Facts, _leakage
    from harness.records import Record

    def rec(attack, metric, value, params, **parts):
        where = ",".join(f"{k}={v}" for k, v in {"attack": attack, **parts}.items())
        return Record(model="zoo:m", task="adult", metric=metric, slice=where, value=value, ci_low=value - 0.004,
                      ci_high=value + 0.004, n=10000, direction="lower", category="privacy", params=params,
                      flags=(), run_id="r", provenance={})  # fmt: skip

    lira = {"reference_models": 4}
    facts = Facts([rec("lira-offline", "membership.tpr", 0.032, lira, fpr="0.01"),
                   rec("loss", "membership.tpr", 0.011, {}, fpr="0.01"),
                   rec("lira-offline", "membership.auc", 0.55, lira)])  # fmt: skip
    (sentence,) = _leakage(facts)
    assert sentence.startswith("Membership inference: an attacker with 4 reference models (lira-offline, black-box)")
    assert "3.2 [2.8, 3.6]% of training records at 1% false positives" in sentence
    facts = Facts([rec("loss", "membership.tpr", 0.011, {}, fpr="0.01")])
    assert "the strongest threshold attack (loss, black-box, no reference models)" in _leakage(facts)[0]
