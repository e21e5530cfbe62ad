"""`edgekit.bench`: each artifact's size and latency measured in a fresh process (`worker`), side by side
(`runner`). The repository's `bench/` scripts are the project's own benchmarks, not this API."""
