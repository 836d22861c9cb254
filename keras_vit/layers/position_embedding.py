"""Absolute position embeddings over a 2-D grid of patches (paper section 3.1, App. D.4)."""

import keras
import numpy as np
from keras import ops

from keras_vit.errors import ArgumentError
from keras_vit.layers.resample import RESAMPLE_METHODS, resample_grid, sincos_2d_ops
from keras_vit.utils import check_choice, to_hw

POSITION_EMBEDDINGS = ("learned", "learned_2d", "sincos_2d")


def sincos_2d_embedding(grid_size, width, temperature=10000.0):
    """Fixed 2-D sine-cosine embedding of big_vision's `posemb_sincos_2d`.

    Returns a float32 array (gh * gw, width) in raster order: a quarter of the
    channels each for sin(x), cos(x), sin(y), cos(y).
    """
    gh, gw = grid_size
    if width % 4:
        raise ArgumentError(
            "The 'sincos_2d' position embedding needs a width divisible by 4. "
            f"Received: hidden_size={width}"
        )
    y, x = np.mgrid[:gh, :gw]
    omega = np.arange(width // 4) / max(width // 4 - 1, 1)
    omega = 1.0 / temperature**omega
    y = np.einsum("m,d->md", y.flatten(), omega)
    x = np.einsum("m,d->md", x.flatten(), omega)
    pe = np.concatenate([np.sin(x), np.cos(x), np.sin(y), np.cos(y)], axis=1)
    return pe.astype("float32")


@keras.saving.register_keras_serializable(package="keras_vit")
class PositionEmbedding(keras.layers.Layer):
    """Adds an absolute position embedding to a token sequence.

    The three absolute variants of the paper's ablation (App. D.4):

    - "learned": one learnable vector per token, (1, prefix + gh*gw, D),
      normal(stddev 0.02); the paper's default "1-D" embedding.
    - "learned_2d": the paper's "2-D" embedding; an X table (gw, D/2) and a
      Y table (gh, D/2), concatenated per patch; prefix tokens get their own
      learnable vectors.
    - "sincos_2d": fixed 2-D sine-cosine features (no weights); prefix tokens
      get zeros.

    Args:
        grid_size: int or (gh, gw), the patch grid.
        kind: one of "learned", "learned_2d", "sincos_2d". Defaults to
            "learned".
        num_prefix_tokens: tokens before the patches (the class token).
            Defaults to 1.
        initializer_range: stddev of the normal initialiser. Defaults to 0.02.
        dynamic: bool, accept any grid at call time (`grid_size` call
            argument): the stored embedding (made for `grid_size`) is
            resampled in the graph, the prefix tokens' vectors kept, the
            "learned_2d" tables each in 1-D, "sincos_2d" recomputed. Defaults
            to False.
        resample_method: "linear" (scipy zoom order 1, the original code's) or
            "bicubic" (torch's), for `dynamic`. Defaults to "linear".
        resample_antialias: bool, torch's antialiased bicubic (timm's).
            Defaults to False.

    Call arguments:
        tokens: tensor (B, num_prefix_tokens + gh*gw, D).
        grid_size: (gh, gw) of `tokens` (ints or scalar tensors), only with
            `dynamic`; None means the stored grid.

    Returns:
        `tokens` plus the embedding, same shape.
    """

    def __init__(
        self,
        grid_size,
        kind="learned",
        num_prefix_tokens=1,
        initializer_range=0.02,
        dynamic=False,
        resample_method="linear",
        resample_antialias=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.grid_size = to_hw("grid_size", grid_size)
        self.kind = check_choice("kind", kind, POSITION_EMBEDDINGS)
        self.num_prefix_tokens = int(num_prefix_tokens)
        self.initializer_range = float(initializer_range)
        self.dynamic = _check_bool("dynamic", dynamic)
        self.resample_method = check_choice("resample_method", resample_method, RESAMPLE_METHODS)
        self.resample_antialias = _check_bool("resample_antialias", resample_antialias)
        if self.resample_antialias and self.resample_method != "bicubic":
            raise ArgumentError(
                "Received an invalid value for argument `resample_antialias`: only "
                "the 'bicubic' resample has an antialiased form. Received: "
                f"resample_method={self.resample_method!r}, resample_antialias=True"
            )

    def build(self, input_shape):
        gh, gw = self.grid_size
        width = input_shape[-1]
        expected = self.num_prefix_tokens + gh * gw
        if not self.dynamic and input_shape[1] is not None and input_shape[1] != expected:
            raise ArgumentError(
                f"`PositionEmbedding` for a {gh}x{gw} grid with "
                f"{self.num_prefix_tokens} prefix token(s) expects {expected} "
                f"tokens. Received: input_shape={tuple(input_shape)}"
            )
        init = keras.initializers.RandomNormal(stddev=self.initializer_range)
        if self.kind == "learned":
            self.embeddings = self.add_weight(
                name="embeddings", shape=(1, expected, width), initializer=init
            )
        elif self.kind == "learned_2d":
            if width % 2:
                raise ArgumentError(
                    "The 'learned_2d' position embedding needs an even width. "
                    f"Received: hidden_size={width}"
                )
            self.row_embeddings = self.add_weight(
                name="row_embeddings", shape=(gh, width // 2), initializer=init
            )
            self.column_embeddings = self.add_weight(
                name="column_embeddings", shape=(gw, width // 2), initializer=init
            )
            if self.num_prefix_tokens:
                self.prefix_embeddings = self.add_weight(
                    name="prefix_embeddings",
                    shape=(self.num_prefix_tokens, width),
                    initializer=init,
                )
        else:
            table = sincos_2d_embedding(self.grid_size, width)
            prefix = np.zeros((self.num_prefix_tokens, width), "float32")
            self._sincos = np.concatenate([prefix, table])[None]

    def embedding(self, grid_size=None):
        """The (1, prefix + gh*gw, D) embedding the layer adds.

        With `grid_size` (a `dynamic` layer), the embedding for that grid.
        """
        if grid_size is not None:
            return self._resampled(grid_size)
        if self.kind == "learned":
            return self.embeddings
        if self.kind == "sincos_2d":
            return ops.convert_to_tensor(self._sincos, dtype=self.variable_dtype)
        gh, gw = self.grid_size
        half = self.row_embeddings.shape[-1]
        rows = ops.broadcast_to(self.row_embeddings[:, None, :], (gh, gw, half))
        cols = ops.broadcast_to(self.column_embeddings[None, :, :], (gh, gw, half))
        grid = ops.reshape(ops.concatenate([cols, rows], axis=-1), (gh * gw, 2 * half))
        if self.num_prefix_tokens:
            grid = ops.concatenate([self.prefix_embeddings, grid], axis=0)
        return grid[None]

    def _resampled(self, grid_size):
        """The embedding resampled in the graph to a (possibly symbolic) grid."""
        gh, gw = self.grid_size
        method, antialias = self.resample_method, self.resample_antialias
        if self.kind == "sincos_2d":
            width = self._sincos.shape[-1]
            grid = sincos_2d_ops(grid_size, width, self.variable_dtype)  # (nh*nw, D)
            prefix = ops.zeros((self.num_prefix_tokens, width), self.variable_dtype)
        elif self.kind == "learned":
            table = self.embeddings[0]  # (prefix + gh*gw, D)
            prefix = table[: self.num_prefix_tokens]
            grid = ops.reshape(table[self.num_prefix_tokens :], (gh, gw, -1))
            grid = resample_grid(grid, grid_size, method, antialias)  # (nh, nw, D)
            grid = ops.reshape(grid, (-1, table.shape[-1]))  # (nh*nw, D)
        else:  # learned_2d: the row table over heights, the column table over widths
            rows = resample_grid(self.row_embeddings[:, None], (grid_size[0], 1), method,
                                 antialias)[:, 0]  # (nh, D/2)
            cols = resample_grid(self.column_embeddings[:, None], (grid_size[1], 1), method,
                                 antialias)[:, 0]  # (nw, D/2)
            half = rows.shape[-1]
            rows = rows[:, None, :] + ops.zeros_like(cols)[None, :, :]  # (nh, nw, D/2)
            cols = ops.zeros_like(rows) + cols[None, :, :]
            grid = ops.reshape(ops.concatenate([cols, rows], axis=-1), (-1, 2 * half))
            if not self.num_prefix_tokens:
                return grid[None]
            prefix = self.prefix_embeddings
        return ops.concatenate([prefix, grid], axis=0)[None]  # (1, prefix + nh*nw, D)

    def call(self, tokens, grid_size=None):
        if grid_size is not None and not self.dynamic:
            raise ArgumentError(
                "`PositionEmbedding` takes a `grid_size` call argument only when "
                f"built with dynamic=True. Received: grid_size={grid_size!r}"
            )
        return tokens + ops.cast(self.embedding(grid_size), tokens.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "grid_size": self.grid_size,
                "kind": self.kind,
                "num_prefix_tokens": self.num_prefix_tokens,
                "initializer_range": self.initializer_range,
                "dynamic": self.dynamic,
                "resample_method": self.resample_method,
                "resample_antialias": self.resample_antialias,
            }
        )
        return config


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise ArgumentError(
            f"Received an invalid value for argument `{name}`, expected True or "
            f"False. Received: {name}={value!r}"
        )
    return value
