"""One module per runtime backend behind the `runtimes.base.Runtime` protocol: LiteRT (with its
delegates), ONNX Runtime and CoreML. Importing a module registers its backend; none imports its
runtime package until a model is opened."""
