"""Host-only backends: a SavedModel on TensorFlow, opened by `edgekit.load` and the export's check.

Declared here like the device backends (`runtimes.backends`): by name, suffix or folder marker, and
the class to import on first use. Nothing is imported until a SavedModel folder is opened.
"""

from runtimes.backends.base import register_backend

register_backend(
    "tensorflow", suffixes=(), target="edgekit.backends.savedmodel:SavedModelRuntime", markers=("saved_model.pb",)
)
