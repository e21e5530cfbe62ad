"""Where the contract lives in an ONNX file: one `metadata_props` entry."""

CONTRACT_METADATA_KEY = "edgekit.contract"
