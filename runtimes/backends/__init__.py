"""One module per runtime backend behind the `runtimes.backends.base.Runtime` protocol: LiteRT (with its
delegates), ONNX Runtime and CoreML, plus the CoreML reference executor (`runtimes.reference`).

Each is declared here by name, file suffix and class; its module (and its runtime package) is imported
only when a model of its kind is first opened. A host-only backend is declared the same way by its
package (`edgekit.backends`).
"""

from runtimes.backends.base import register_backend

register_backend("tflite", suffixes=(".tflite",), target="runtimes.backends.tflite:TFLiteRuntime")
register_backend("onnxruntime", suffixes=(".onnx",), target="runtimes.backends.onnxruntime:OnnxRuntime")
register_backend("coreml", suffixes=(".mlpackage", ".mlmodel"), target="runtimes.backends.coreml:CoreMLRuntime")
register_backend(
    "reference",
    suffixes=(".mlpackage",),
    target="runtimes.reference.coreml:CoreMLReferenceRuntime",
    reference=True,
)
