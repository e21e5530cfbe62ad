"""Where edgekit's data lives in an ONNX file: `metadata_props` entries."""

CONTRACT_METADATA_KEY = "edgekit.contract"
# {"scale": s, "zero_point": z} when the graph takes its input already quantized (uint8/int8):
# real = (q - z) * s, the QuantizeLinear that edgekit moved out of the graph into the runtime.
INPUT_QUANTIZATION_KEY = "edgekit.input_quantization"
