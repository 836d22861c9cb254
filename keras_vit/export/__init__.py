"""Export to SavedModel, ONNX and TFLite (Keras' exporters), verified with each runtime.

Imports neither tensorflow nor onnx until an export runs.
"""

from keras_vit.export.exporter import (
    FORMATS,
    TOLERANCES,
    ExportVerificationError,
    default_output,
    export_model,
    missing_requirements,
    sample_images,
    verify_export,
)
