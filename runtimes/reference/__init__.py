"""The CoreML reference executor: ML programs evaluated op by op in NumPy (`mil_program`,
`mil_ops`), registered as the `reference` backend (`coreml`), so packages are checked off macOS."""
