"""Making a trained Keras 3 model smaller before export: `pruning` (``edgekit.prune``) and `distillation`
(``edgekit.distill``).

tensorflow-model-optimization supports only Keras 2, so both are edgekit's own.
"""
