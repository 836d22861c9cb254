"""The one primitive every converter is built on: port one tensor into one weight.

A `WeightPorter` holds the source tensors (a flat dict name -> array) and the
target model. `port(key, path, transform)` looks the weight up by its layer
name and variable path, applies the transform, checks the shape and assigns.
`finish()` makes loading strict: a source tensor left unused, or a model
weight left unset, is an error naming them (nanoGPT's "every key used").
The helpers every converter shares sit here too.
"""

import json
import os

import numpy as np

POSITION_EMBEDDING = "patch_encoder/position_embedding/embeddings"

from keras_vit.errors import KerasViTError


class CheckpointError(KerasViTError):
    """A checkpoint that cannot be read or does not fit the model."""


class WeightPorter:
    """Ports source tensors into a Keras model's weights, strictly.

    Args:
        model: the target `keras.Model`; layers are looked up by name.
        tensors: dict, source tensor name -> array.
        source: str, what the tensors came from (for messages).
        new_layers: names of layers the model builds new (a new head): their
            tensors in the checkpoint are dropped, their weights left unset.
            Defaults to ().
        posemb: None, or a function resampling the position-embedding table
            on its way into `patch_encoder/position_embedding/embeddings`
            (the model is built at another image size). Defaults to None.
    """

    def __init__(self, model, tensors, source="checkpoint", new_layers=(), posemb=None):
        self.model = model
        self.tensors = tensors
        self.source = source
        self.new_layers = tuple(new_layers)
        self.posemb = posemb
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
        except ValueError as error:
            raise CheckpointError(
                f"{self.source}: the model has no layer `{layer_name}` (for `{path}`)."
            ) from error
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
        try:
            value = transform(*arrays) if transform else arrays[0]
        except (ValueError, IndexError) as error:  # a reshape/concat of the file's shapes
            if isinstance(error, KerasViTError):
                raise
            shapes = ", ".join(f"`{k}` {tuple(a.shape)}" for k, a in zip(keys, arrays))
            raise CheckpointError(
                f"{self.source}: wrong shape for `{path}`: {shapes} cannot be "
                f"arranged into the model's {tuple(self.variable(path).shape)}."
            ) from error
        self.set(path, value, keys)

    def set(self, path, value, keys=("(computed)",)):
        """Assigns an array to the weight at `path`, checking its shape."""
        variable = self.variable(path)
        value = np.asarray(value)
        if path == POSITION_EMBEDDING and self.posemb is not None:
            value = self.posemb(value)
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


# A config.json is a few kB; 4 MB is generous (a link to /dev/zero must not fill memory).
MAX_JSON_BYTES = 4 * 2**20


def read_json(path, what, max_bytes=MAX_JSON_BYTES):
    """A JSON object read from `path` (at most `max_bytes`, not a link out of its
    folder), or one line naming the file."""
    real = os.path.realpath(path)
    if not inside(real, link_roots(os.path.dirname(os.path.abspath(path)))) or not os.path.isfile(real):
        raise CheckpointError(
            f"{path} ({what}) is not a regular file in its folder (it leads to {real}).")
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise CheckpointError(f"{path} ({what}) is over {max_bytes} bytes; not a config file.")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise CheckpointError(
            f"{path} is not valid JSON ({what}): {str(error)[:200]}") from error
    if not isinstance(value, dict):
        raise CheckpointError(
            f"{path} ({what}) should hold a JSON object; it holds a {type(value).__name__}.")
    return value


def link_roots(folder):
    """Where the files of a checkpoint folder may lead: the folder itself and, for a
    snapshot in huggingface_hub's cache (`models--owner--name/snapshots/<commit>/`),
    that repo's `blobs/`, which holds the files the snapshot's links name."""
    folder = os.path.realpath(folder)
    roots = [folder]
    parent = os.path.dirname(folder)
    if os.path.basename(parent) == "snapshots":
        roots.append(os.path.join(os.path.dirname(parent), "blobs"))
    return roots


def inside(real, roots):
    return any(os.path.commonpath([real, root]) == root for root in roots)


def port_top(porter, config, pre_logits, head, transpose, dist_head=None):
    """Pre-logits and head(s), or marks them dropped when the model builds none
    (no top) or builds them new (`porter.new_layers`)."""
    fix = (lambda w: w.T) if transpose else None
    for keys, layer in ((pre_logits, "pre_logits"), (head, "head"), (dist_head, "head_dist")):
        if keys is None or not porter.has(keys[0]):
            continue
        built = {
            "pre_logits": config.representation_size is not None,
            "head": config.include_top,
            "head_dist": config.include_top and config.distilled_head,
        }[layer]
        if built and layer not in porter.new_layers:
            porter.port(keys[0], f"{layer}/kernel", fix)
            porter.port(keys[1], f"{layer}/bias")
        else:
            porter.drop(keys)


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
