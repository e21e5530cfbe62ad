"""What travels inside artifacts: edgekit's contract and the standard metadata other tools read,
per format (TFLite flatbuffer metadata and its generated schema, ONNX metadata_props, CoreML
user metadata), without TensorFlow, onnx or coremltools."""
