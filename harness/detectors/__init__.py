"""Out-of-distribution detectors by name (``harness list detectors``; plugins in the entry-point group
``harness.detectors``).

A detector turns what a model computes on an input into one score, **higher meaning more
in-distribution** (OpenOOD's convention; pytorch-ood's outlier scores are the negatives). Post-hoc
detectors read the logits (``msp``, ``max-logit``, ``energy``); feature detectors read the penultimate
features and are fitted on the task's training split (``mahalanobis``, ``knn``); input detectors run
the model again on a perturbed input (``odin``)."""

from harness.detectors.base import Detector, DetectorError, Outputs, get_detector

__all__ = ["Detector", "DetectorError", "Outputs", "get_detector"]
