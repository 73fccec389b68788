"""Text end to end below the command line: perturbations at their stated rates, seeded per example,
and token attributions through captum's LayerIntegratedGradients on the embedding layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from byo_fixtures import WORDS, sentences, text_dataset, tiny_text_model
from captum.attr import LayerIntegratedGradients

from harness.attacks.text import NEIGHBOURS, RATES, TEXT_CORRUPTIONS, perturb
from harness.models import load_model
from harness.models.text import token_ids_model
from harness.registry import explainers
from harness.tasks import get_task

TEXT = "The quick brown fox jumps over the lazy dog, again and again. " * 40


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_case_flips_letters_at_the_stated_rate(severity):
    out = perturb([TEXT], [0], "case", severity, seed=0)[0]
    assert out.lower() == TEXT.lower() and len(out) == len(TEXT)
    flipped = sum(a != b for a, b in zip(out, TEXT, strict=True)) / sum(c.isalpha() for c in TEXT)
    n = sum(c.isalpha() for c in TEXT)
    assert abs(flipped - RATES[severity]) < 4 * np.sqrt(RATES[severity] * (1 - RATES[severity]) / n)


def test_whitespace_and_punctuation_change_only_what_they_name():
    spaced = perturb([TEXT], [0], "whitespace", 5, seed=0)[0]
    assert spaced.replace(" ", "") == TEXT.replace(" ", "") and spaced != TEXT
    punct = perturb([TEXT], [0], "punctuation", 5, seed=0)[0]
    strip = str.maketrans("", "", ".,!?;:'\"-")
    assert punct.translate(strip) == TEXT.translate(strip) and punct != TEXT


def levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def test_typos_are_local_edits_at_about_the_rate():
    text = TEXT[:600]
    letters = sum(c.isalpha() for c in text)
    out = perturb([text], [0], "typo", 5, seed=0)[0]
    # a typo costs 1 edit (delete, repeat, keyboard neighbour) or 2 (a swap): 1.25 on average
    expected = 1.25 * RATES[5] * letters
    assert 0.6 * expected < levenshtein(text, out) < 1.4 * expected
    assert all(set(v) <= set("qwertyuiopasdfghjklzxcvbnm") for v in NEIGHBOURS.values())


def test_perturbations_are_seeded_per_example():
    texts, _, _ = sentences(20)
    ids = list(range(100, 120))
    for name in TEXT_CORRUPTIONS:
        full = perturb(texts, ids, name, 5, seed=3)
        assert full == perturb(texts, ids, name, 5, seed=3)
        assert perturb(texts[5:9], ids[5:9], name, 5, seed=3) == full[5:9]  # a subset sees the same edits
        assert full != perturb(texts, ids, name, 5, seed=4)
        assert sum(a != b for a, b in zip(full, texts, strict=True)) >= 10


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    task = get_task(f"hf:{text_dataset(root)}")
    return task, load_model(f"hf:{tiny_text_model(root)}", task)


def test_layer_integrated_gradients_matches_captum_and_finds_the_sentiment_word(bert):
    task, model = bert
    ids_model = token_ids_model(model.module)
    rows = task.load().inputs[:16]
    ids = ids_model.text.tokenize(rows)["input_ids"]
    special = torch.isin(ids, torch.tensor(sorted(ids_model.text.special_ids)))
    baselines = torch.where(special, ids, torch.zeros_like(ids))
    target = ids_model(ids).argmax(1)
    explain = explainers.get("layer-integrated-gradients").build(ids_model, _settings())
    ours = explain(ids, target=target, baselines=baselines)
    direct = LayerIntegratedGradients(ids_model, ids_model.embeddings).attribute(
        ids, baselines=baselines, target=target, n_steps=32
    )
    assert torch.allclose(ours, direct.sum(-1), atol=1e-5)
    vocab = ids_model.text.tokenizer.get_vocab()
    sentiment = {vocab[w] for group in WORDS.values() for w in group}
    top = ids.gather(1, ours.argmax(1, keepdim=True))[:, 0]
    assert np.mean([int(t) in sentiment for t in top]) >= 0.75  # the word that decides the label


def _settings():
    from harness.explain.methods import Settings

    return Settings(ig_steps=32)
