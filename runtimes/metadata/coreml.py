"""Names shared by the CoreML converter and runtime."""

CONTRACT_METADATA_KEY = "edgekit.contract"
INPUT_NAME = "image"
COMPUTE_UNITS = ("ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY")
