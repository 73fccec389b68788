"""Detectors that read only the logits: maximum softmax probability, maximum logit, energy."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax

from harness.detectors.base import Detector, Outputs
from harness.registry import detectors


@detectors.register("msp", "maximum softmax probability (Hendrycks and Gimpel 2017)")
class MaxSoftmax(Detector):
    name = "msp"
    citation = (
        "Hendrycks and Gimpel. A Baseline for Detecting Misclassified and Out-of-Distribution Examples. ICLR 2017."
    )

    def score(self, outputs: Outputs) -> np.ndarray:
        return softmax(outputs.logits.astype(np.float64), axis=1).max(1)


@detectors.register("max-logit", "the largest logit (Hendrycks et al. 2022)")
class MaxLogit(Detector):
    name = "max-logit"
    citation = "Hendrycks et al. Scaling Out-of-Distribution Detection for Real-World Settings. ICML 2022."

    def score(self, outputs: Outputs) -> np.ndarray:
        return outputs.logits.astype(np.float64).max(1)


@detectors.register("energy", "negative free energy, T log sum exp(logits / T), T = 1 (Liu et al. 2020)")
class Energy(Detector):
    name = "energy"
    citation = "Liu et al. Energy-based Out-of-distribution Detection. NeurIPS 2020."
    temperature = 1.0

    def score(self, outputs: Outputs) -> np.ndarray:
        return self.temperature * logsumexp(outputs.logits.astype(np.float64) / self.temperature, axis=1)
