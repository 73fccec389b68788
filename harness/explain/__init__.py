"""What explains a model's predictions, and how good those explanations are.

``methods``: captum attribution methods registered by name (``harness list explainers``), each
returning an attribution per input feature; ``baselines``: the reference inputs they start from
(black or blurred image, training mean row); ``scores``: the quantitative scores of explanation
quality (deletion and insertion AUC, faithfulness correlation, sparseness, the model-parameter
randomisation test). The ``interpretability`` metric puts them together.
"""
