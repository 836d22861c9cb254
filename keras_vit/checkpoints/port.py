"""The one primitive every converter is built on: port one tensor into one weight.

A `WeightPorter` holds the source tensors (a flat dict name -> array) and the
target model. `port(key, path, transform)` looks the weight up by its layer
name and variable path, applies the transform, checks the shape and assigns.
`finish()` makes loading strict: a source tensor left unused, or a model
weight left unset, is an error naming them (nanoGPT's "every key used").
"""

import numpy as np

from keras_vit.errors import KerasViTError


class CheckpointError(KerasViTError):
    """A checkpoint that cannot be read or does not fit the model."""


class WeightPorter:
    """Ports source tensors into a Keras model's weights, strictly.

    Args:
        model: the target `keras.Model`; layers are looked up by name.
        tensors: dict, source tensor name -> array.
        source: str, what the tensors came from (for messages).
    """

    def __init__(self, model, tensors, source="checkpoint"):
        self.model = model
        self.tensors = tensors
        self.source = source
        self.used = set()
        self.assigned = set()

    def get(self, key):
        """The source tensor `key` as a NumPy array, marked as used."""
        if key not in self.tensors:
            raise CheckpointError(
                f"{self.source}: the tensor `{key}` the model needs is missing."
            )
        self.used.add(key)
        return np.asarray(self.tensors[key])

    def drop(self, keys):
        """Marks tensors as deliberately left out (a head the model does not build)."""
        for key in (keys,) if isinstance(keys, str) else keys:
            self.get(key)

    def has(self, key):
        return key in self.tensors

    def variable(self, path):
        """The model variable at `path`, e.g. "transformer_block_0/attention/qkv/kernel"."""
        layer_name = path.split("/")[0]
        try:
            layer = self.model.get_layer(layer_name)
        except ValueError:
            raise CheckpointError(
                f"{self.source}: the model has no layer `{layer_name}` (for `{path}`)."
            ) from None
        for variable in layer.weights:
            if variable.path == path:
                return variable
        raise CheckpointError(
            f"{self.source}: layer `{layer_name}` has no weight `{path}`; it has "
            f"{[v.path for v in layer.weights]}."
        )

    def port(self, keys, path, transform=None):
        """Assigns `transform(*tensors)` (or the one tensor) to the weight at `path`.

        Args:
            keys: a source tensor name, or a tuple of names passed together
                to `transform` (e.g. query, key and value into one qkv).
            path: the Keras variable path.
            transform: None or a function of the arrays returning one array.
        """
        keys = (keys,) if isinstance(keys, str) else tuple(keys)
        arrays = [self.get(k) for k in keys]
        value = transform(*arrays) if transform else arrays[0]
        self.set(path, value, keys)

    def set(self, path, value, keys=("(computed)",)):
        """Assigns an array to the weight at `path`, checking its shape."""
        variable = self.variable(path)
        value = np.asarray(value)
        if tuple(value.shape) != tuple(variable.shape):
            shapes = ", ".join(f"`{k}` {tuple(self.tensors[k].shape)}" for k in keys
                               if k in self.tensors)
            raise CheckpointError(
                f"{self.source}: shape mismatch for `{path}`: the model expects "
                f"{tuple(variable.shape)}, the checkpoint gives "
                f"{tuple(value.shape)} (from {shapes or keys})."
            )
        variable.assign(value.astype(variable.dtype))
        self.assigned.add(path)

    def finish(self, allowed_unset=()):
        """Raises if a source tensor went unused or a model weight unset."""
        unused = sorted(set(self.tensors) - self.used)
        if unused:
            raise CheckpointError(
                f"{self.source}: {len(unused)} tensor(s) not used by the model "
                f"(unsupported architecture or wrong config?): {_listing(unused)}"
            )
        unset = sorted(
            v.path for v in self.model.weights
            if v.path not in self.assigned and v.path.split("/")[0] not in allowed_unset
        )
        if unset:
            raise CheckpointError(
                f"{self.source}: {len(unset)} model weight(s) not set by the "
                f"checkpoint: {_listing(unset)}"
            )


def _listing(names, limit=8):
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def conv_to_dense_kernel(weight):
    """A torch Conv2D weight (D, C, P, P) as the Dense kernel (P*P*C, D)."""
    d = weight.shape[0]
    return weight.transpose(2, 3, 1, 0).reshape(-1, d)


def linear_to_dense_kernel(weight):
    """A torch Linear weight (out, in) as a Keras Dense kernel (in, out)."""
    return weight.T
