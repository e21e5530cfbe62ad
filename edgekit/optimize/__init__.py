"""Making a trained Keras 3 model smaller or integer-ready before export: `pruning` (``edgekit.prune``),
`distillation` (``edgekit.distill``) and quantization-aware training (``edgekit.quantize_aware``: `qat`, on
`qat_graph` and `fake_quant`).

tensorflow-model-optimization supports only Keras 2, so all three are edgekit's own.
"""
