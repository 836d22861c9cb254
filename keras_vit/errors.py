"""The library's own error types: what a user typed or gave that cannot be honoured.

Each is a `ValueError` (what it has always been), so `except ValueError` keeps
working; `keras-vit` prints these as one line and exits 1, while any other
exception is a bug and keeps its traceback.

    KerasViTError            the base
    ├── ArgumentError        an argument's value: names it, what was expected, what came
    ├── DataError            a data set or image folder that cannot be read as asked
    │   └── DataNotFound     (also a FileNotFoundError) not downloaded, not there
    └── RunFolderError       an output folder that holds another run, or is a file
"""


class KerasViTError(ValueError):
    """Base of keras_vit's user-facing errors."""


class ArgumentError(KerasViTError):
    """An argument's value cannot be honoured."""


class DataError(KerasViTError):
    """A data set or image folder cannot be used as asked."""


class DataNotFound(DataError, FileNotFoundError):
    """A data set or file that is not there (the message says how to get it)."""


class RunFolderError(KerasViTError):
    """A run's output folder cannot be used without losing what it holds."""
