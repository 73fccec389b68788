"""Model cards (Mitchell et al., 2019) written from the store: ``harness card MODEL``.

Facts the store cannot know (intended use, out-of-scope uses, training data of an external model)
come from the model's ``info`` or a YAML the user passes (``--info``); the card says "not provided"
rather than inventing them. Findings are written from the records: the weakest group and its gap,
failing audit criteria, the epsilon at which robust accuracy halves, the worst corruption,
unreliable-evaluation flags and estimated-energy labels. The front matter is Hugging Face's
``model-index`` built with ``huggingface_hub`` (``ModelCardData``, ``EvalResult``)."""

from __future__ import annotations

from harness.cards.card import CardError, write_card

__all__ = ["CardError", "write_card"]
