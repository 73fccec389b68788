"""Membership attacks on a model's outputs for one record and its label. Each gives a score, **higher
meaning more likely a member** of the training data; the membership metric sweeps the threshold.

Threshold attacks (Yeom et al. 2018; Salem et al. 2019; Song and Mittal 2021): the attacker queries
the model for a record's probability vector and knows its label, nothing more. LiRA offline (Carlini
et al. 2022) also trains reference models by the target's recipe on data from the same distribution
that hold none of the records attacked (``harness.privacy.references``), and asks how much higher the
target's confidence in a record is than those models' ("out") confidence in it."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from harness.registry import privacy_attacks


class PrivacyAttack:
    name: ClassVar[str]
    citation: ClassVar[str] = ""
    references: ClassVar[bool] = False  # whether it needs reference models' logits on the same records

    def score(self, logits: np.ndarray, labels: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        """Scores of records given the target's ``logits`` [n, k], their ``labels`` [n] and, for attacks
        with ``references``, the reference models' logits on the same records [K, n, k]."""
        raise NotImplementedError


def _log_probs(logits: np.ndarray) -> np.ndarray:
    from scipy.special import log_softmax  # here: listing the attacks need not import scipy

    return log_softmax(logits.astype(np.float64), axis=1)


@privacy_attacks.register("loss", "minus the cross-entropy loss at the true label (Yeom et al. 2018)")
class Loss(PrivacyAttack):
    name = "loss"
    citation = "Yeom et al. Privacy Risk in Machine Learning: Analyzing the Connection to Overfitting. CSF 2018."

    def score(self, logits: np.ndarray, labels: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        return _log_probs(logits)[np.arange(len(labels)), labels]


@privacy_attacks.register("confidence", "the largest softmax probability (Salem et al. 2019)")
class Confidence(PrivacyAttack):
    name = "confidence"
    citation = "Salem et al. ML-Leaks: Model and Data Independent Membership Inference Attacks. NDSS 2019."

    def score(self, logits: np.ndarray, labels: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        return np.exp(_log_probs(logits).max(1))


@privacy_attacks.register("entropy", "minus the entropy of the softmax (Salem et al. 2019)")
class Entropy(PrivacyAttack):
    name = "entropy"
    citation = Confidence.citation

    def score(self, logits: np.ndarray, labels: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        log_p = _log_probs(logits)
        return (np.exp(log_p) * log_p).sum(1)


@privacy_attacks.register("modified-entropy", "minus the label-aware modified entropy (Song and Mittal 2021)")
class ModifiedEntropy(PrivacyAttack):
    """Mentr = -(1 - p_y) log p_y - sum_{k != y} p_k log(1 - p_k); the score is -Mentr."""

    name = "modified-entropy"
    citation = (
        "Song and Mittal. Systematic Evaluation of Privacy Risks of Machine Learning Models. USENIX Security 2021."
    )

    def score(self, logits: np.ndarray, labels: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        log_p = _log_probs(logits)
        p = np.exp(log_p)
        rows = np.arange(len(labels))
        log_not = np.log1p(-np.clip(p, 0, 1 - 1e-12))
        true = -(1 - p[rows, labels]) * log_p[rows, labels]
        others = -(p * log_not).sum(1) + p[rows, labels] * log_not[rows, labels]
        return -(true + others)


def scaled_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """LiRA's statistic: log(p_y / (1 - p_y)), computed from the logits as z_y - logsumexp_{k != y} z_k
    (stable where p_y rounds to 1)."""
    from scipy.special import logsumexp

    z = logits.astype(np.float64)
    rows = np.arange(len(labels))
    others = z.copy()
    others[rows, labels] = -np.inf
    return z[rows, labels] - logsumexp(others, axis=1)


@privacy_attacks.register("lira-offline", "LiRA offline: the target's scaled confidence against K reference "
                                          "models that never saw the record (Carlini et al. 2022)")  # fmt: skip
class LiraOffline(PrivacyAttack):
    """Carlini et al.'s offline likelihood-ratio attack with a global variance (their choice for few
    reference models): the score is (phi - mu_out) / sigma_out, where phi is the target's scaled
    confidence in the record's label, mu_out the mean over the K reference models of theirs, and
    sigma_out the standard deviation of the reference models' scaled confidences about their
    per-record means, pooled over every record. Its one-sided Gaussian p-value is a monotone function
    of this score, so AUC and TPR at any FPR are the paper's."""

    name = "lira-offline"
    references = True
    citation = "Carlini et al. Membership Inference Attacks From First Principles. IEEE S&P 2022."

    def score(self, logits: np.ndarray, labels: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        if reference is None or len(reference) < 2:
            raise ValueError("lira-offline needs the logits of at least 2 reference models")
        phi = scaled_confidence(logits, labels)
        out = np.stack([scaled_confidence(r, labels) for r in reference])  # [K, n]
        mu = out.mean(0)
        sigma = float(np.sqrt(((out - mu) ** 2).sum() / (out.size - out.shape[1])))
        return (phi - mu) / max(sigma, 1e-12)


def get_attack(name: str) -> PrivacyAttack:
    return privacy_attacks.get(name)()
