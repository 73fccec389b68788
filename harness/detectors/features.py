"""Detectors on penultimate features, fitted on the training split: Mahalanobis distance to the
nearest class mean under one shared covariance (Lee et al. 2018), and the distance to the k-th nearest
training example of the L2-normalised features (Sun et al. 2022)."""

from __future__ import annotations

import numpy as np

from harness.detectors.base import Detector, DetectorError, Outputs
from harness.registry import detectors


def _features(outputs: Outputs, name: str) -> np.ndarray:
    if outputs.features is None:
        raise DetectorError(f"detector {name} reads penultimate features and the pass gave none")
    return outputs.features.astype(np.float64)


@detectors.register("mahalanobis", "Mahalanobis distance to the closest class mean, shared covariance "
                                   "(Lee et al. 2018)")  # fmt: skip
class Mahalanobis(Detector):
    """Score: minus half the smallest squared Mahalanobis distance to a class mean, with the class means
    and the shared (pooled, divided by N) covariance of the training features; a ridge of 1e-6 times
    the mean variance keeps it invertible. (pytorch-ood's covariance is the sum not divided by N: its
    scores are N times these, the same order.)"""

    name = "mahalanobis"
    reads = "features"
    fitted = True
    citation = "Lee et al. A Simple Unified Framework for Detecting Out-of-Distribution Samples and Adversarial Attacks. NeurIPS 2018."  # noqa: E501

    def fit(self, features: np.ndarray, labels: np.ndarray) -> None:
        features = features.astype(np.float64)
        classes = np.unique(labels)
        self.means = np.stack([features[labels == c].mean(0) for c in classes])
        centred = features - self.means[np.searchsorted(classes, labels)]
        cov = centred.T @ centred / len(features)
        cov += np.eye(len(cov)) * 1e-6 * max(float(np.trace(cov)) / len(cov), 1e-12)
        self.precision = np.linalg.inv(cov)

    def score(self, outputs: Outputs) -> np.ndarray:
        z = _features(outputs, self.name)
        distances = np.stack([np.einsum("nd,de,ne->n", z - m, self.precision, z - m) for m in self.means], 1)
        return -0.5 * distances.min(1)


@detectors.register("knn", "distance to the k-th nearest normalised training feature, k = 50 (Sun et al. 2022)")
class KNearest(Detector):
    name = "knn"
    reads = "features"
    fitted = True
    citation = "Sun et al. Out-of-Distribution Detection with Deep Nearest Neighbors. ICML 2022."
    k = 50

    def settings(self) -> dict[str, object]:
        return {"k": self.k}

    def fit(self, features: np.ndarray, labels: np.ndarray) -> None:
        from sklearn.neighbors import NearestNeighbors

        if len(features) < self.k:
            raise DetectorError(f"detector knn: k={self.k} exceeds the {len(features)} training examples")
        self.index = NearestNeighbors(n_neighbors=self.k).fit(normalised(features))

    def score(self, outputs: Outputs) -> np.ndarray:
        distances, _ = self.index.kneighbors(normalised(_features(outputs, self.name)), n_neighbors=self.k)
        return -distances[:, -1]


def normalised(features: np.ndarray) -> np.ndarray:
    features = features.astype(np.float64)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
