"""Absolute position embeddings over a 2-D grid of patches (paper section 3.1, App. D.4)."""

import keras
import numpy as np
from keras import ops

from keras_vit.utils import check_choice, to_hw

POSITION_EMBEDDINGS = ("learned", "learned_2d", "sincos_2d")


def sincos_2d_embedding(grid_size, width, temperature=10000.0):
    """Fixed 2-D sine-cosine embedding of big_vision's `posemb_sincos_2d`.

    Returns a float32 array (gh * gw, width) in raster order: a quarter of the
    channels each for sin(x), cos(x), sin(y), cos(y).
    """
    gh, gw = grid_size
    if width % 4:
        raise ValueError(
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

    Call arguments:
        tokens: tensor (B, num_prefix_tokens + gh*gw, D).

    Returns:
        `tokens` plus the embedding, same shape.
    """

    def __init__(
        self,
        grid_size,
        kind="learned",
        num_prefix_tokens=1,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.grid_size = to_hw("grid_size", grid_size)
        self.kind = check_choice("kind", kind, POSITION_EMBEDDINGS)
        self.num_prefix_tokens = int(num_prefix_tokens)
        self.initializer_range = float(initializer_range)

    def build(self, input_shape):
        gh, gw = self.grid_size
        width = input_shape[-1]
        expected = self.num_prefix_tokens + gh * gw
        if input_shape[1] is not None and input_shape[1] != expected:
            raise ValueError(
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
                raise ValueError(
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

    def embedding(self):
        """The (1, prefix + gh*gw, D) embedding the layer adds."""
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

    def call(self, tokens):
        return tokens + ops.cast(self.embedding(), tokens.dtype)

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
            }
        )
        return config
