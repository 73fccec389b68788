"""Threshold attacks on a model's outputs for one record and its label, no reference models (Yeom et
al. 2018; Salem et al. 2019; Song and Mittal 2021). Each gives a score, **higher meaning more likely a
member** of the training data; the membership metric sweeps the threshold.

Threat model: the attacker queries the model for a record's full probability vector and knows the
record's label; it knows nothing of the training set beyond that (no shadow or reference models)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import log_softmax

from harness.registry import privacy_attacks


class PrivacyAttack:
    name: ClassVar[str]
    citation: ClassVar[str] = ""

    def score(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _log_probs(logits: np.ndarray) -> np.ndarray:
    return log_softmax(logits.astype(np.float64), axis=1)


@privacy_attacks.register("loss", "minus the cross-entropy loss at the true label (Yeom et al. 2018)")
class Loss(PrivacyAttack):
    name = "loss"
    citation = "Yeom et al. Privacy Risk in Machine Learning: Analyzing the Connection to Overfitting. CSF 2018."

    def score(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return _log_probs(logits)[np.arange(len(labels)), labels]


@privacy_attacks.register("confidence", "the largest softmax probability (Salem et al. 2019)")
class Confidence(PrivacyAttack):
    name = "confidence"
    citation = "Salem et al. ML-Leaks: Model and Data Independent Membership Inference Attacks. NDSS 2019."

    def score(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.exp(_log_probs(logits).max(1))


@privacy_attacks.register("entropy", "minus the entropy of the softmax (Salem et al. 2019)")
class Entropy(PrivacyAttack):
    name = "entropy"
    citation = Confidence.citation

    def score(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        log_p = _log_probs(logits)
        return (np.exp(log_p) * log_p).sum(1)


@privacy_attacks.register("modified-entropy", "minus the label-aware modified entropy (Song and Mittal 2021)")
class ModifiedEntropy(PrivacyAttack):
    """Mentr = -(1 - p_y) log p_y - sum_{k != y} p_k log(1 - p_k); the score is -Mentr."""

    name = "modified-entropy"
    citation = (
        "Song and Mittal. Systematic Evaluation of Privacy Risks of Machine Learning Models. USENIX Security 2021."
    )

    def score(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        log_p = _log_probs(logits)
        p = np.exp(log_p)
        rows = np.arange(len(labels))
        log_not = np.log1p(-np.clip(p, 0, 1 - 1e-12))
        true = -(1 - p[rows, labels]) * log_p[rows, labels]
        others = -(p * log_not).sum(1) + p[rows, labels] * log_not[rows, labels]
        return -(true + others)


def get_attack(name: str) -> PrivacyAttack:
    return privacy_attacks.get(name)()
