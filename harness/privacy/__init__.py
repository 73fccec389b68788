"""Membership inference: attacks that score how likely a record was in a model's training data
(``harness list privacy-attacks``; plugins in the entry-point group ``harness.privacy_attacks``)."""

from harness.privacy.attacks import PrivacyAttack, get_attack

__all__ = ["PrivacyAttack", "get_attack"]
