"""The library's own error types: what a user typed or gave that cannot be honoured.

Each is a `ValueError` (what it has always been), so `except ValueError` keeps
working; `keras-vit` prints these as one line and exits 1, while any other
exception is a bug and keeps its traceback (a plain `ValueError` included: keras_vit
raises one only for an invariant of its own that a bug broke).

    KerasViTError            the base
    ├── ArgumentError        an argument's value: names it, what was expected, what came
    ├── DataError            a data set, image, model file or folder that cannot be read as asked
    │   └── DataNotFound     (also a FileNotFoundError) not downloaded, not there
    ├── RunFolderError       an output folder or file that holds another run or a user's
    │                        file, or is a file where a folder must be
    ├── CheckpointError      (keras_vit.checkpoints) a checkpoint that cannot be converted
    ├── TrainingDiverged     (keras_vit.training) the loss became NaN; the last good state kept
    ├── ExportVerificationError  (keras_vit.export) the artefact differs from the model
    └── CommandError         (keras_vit.cli) a failure a command found itself
"""


class KerasViTError(ValueError):
    """Base of keras_vit's user-facing errors."""


class ArgumentError(KerasViTError):
    """An argument's value cannot be honoured."""


class DataError(KerasViTError):
    """A data set, image, model file or folder cannot be used as asked."""


class DataNotFound(DataError, FileNotFoundError):
    """A data set or file that is not there (the message says how to get it)."""


class RunFolderError(KerasViTError):
    """An output folder or file cannot be used without losing what it holds."""
