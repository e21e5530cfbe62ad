"""Where a SavedModel carries edgekit's contract: a tracked asset file, and the signature edgekit runs."""

CONTRACT_ASSET = "edgekit_contract.json"  # in <version>/assets/, listed in the MetaGraph's asset files
SERVING_SIGNATURE = "serving_default"  # uint8 RGB images of any size, preprocessing in the graph (TF Serving's)
EDGEKIT_SIGNATURE = "edgekit"  # uint8 pixels at the contract's geometry, scaling in the graph: the model's own outputs
IMAGES_INPUT = "images"
