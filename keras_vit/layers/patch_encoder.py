"""Prepend the class token and add the position embedding (paper eq. 1)."""

import keras
from keras import ops

from keras_vit.errors import ArgumentError
from keras_vit.layers.position_embedding import POSITION_EMBEDDINGS, PositionEmbedding
from keras_vit.utils import check_choice, to_hw


@keras.saving.register_keras_serializable(package="keras_vit")
class PatchEncoder(keras.layers.Layer):
    """Turns patch embeddings x_p E into the encoder input z_0.

    z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos (paper eq. 1). The class
    token is learnable and starts at zeros (as in the original code and timm);
    the position embedding is a `PositionEmbedding` sub-layer.

    Args:
        grid_size: int or (gh, gw), the patch grid.
        class_token: bool, prepend a learnable class token. Defaults to True.
        position_embedding: "learned", "learned_2d", "sincos_2d" or "none"
            ("none" here also covers embeddings injected elsewhere: relative
            biases, or per-layer embeddings). Defaults to "learned".
        initializer_range: stddev of the position embedding's normal
            initialiser. Defaults to 0.02.
        distillation_token: bool, a second learnable token after the class
            token (DeiT). Defaults to False.
        num_register_tokens: int, learnable register tokens after those
            (timm `reg_tokens`). Defaults to 0.
        dynamic: bool, take patch embeddings laid out on their grid, (B, gh,
            gw, D) with any gh and gw, and resample the position embedding
            (made for `grid_size`) to that grid in the graph. Defaults to
            False.
        resample_method: "linear" or "bicubic", the resize for `dynamic`
            (see `PositionEmbedding`). Defaults to "linear".
        resample_antialias: bool, torch's antialiased bicubic. Defaults to
            False.

    Call arguments:
        patch_embeddings: tensor (B, gh*gw, D), or (B, gh, gw, D) when
            `dynamic`.

    Returns:
        Tensor (B, prefix + gh*gw, D), prefix = [class], [distillation],
        registers in that order (timm's and HF's).

    Example:

    >>> encoder = PatchEncoder(grid_size=(2, 3))
    >>> encoder(keras.ops.ones((4, 6, 32))).shape
    (4, 7, 32)
    """

    def __init__(
        self,
        grid_size,
        class_token=True,
        position_embedding="learned",
        initializer_range=0.02,
        distillation_token=False,
        num_register_tokens=0,
        dynamic=False,
        resample_method="linear",
        resample_antialias=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.grid_size = to_hw("grid_size", grid_size)
        self.class_token = bool(class_token)
        self.position_embedding = check_choice(
            "position_embedding", position_embedding, POSITION_EMBEDDINGS + ("none",)
        )
        self.initializer_range = float(initializer_range)
        self.distillation_token = bool(distillation_token)
        self.num_register_tokens = int(num_register_tokens)
        if self.num_register_tokens < 0:
            raise ArgumentError(
                "Received an invalid value for argument `num_register_tokens`, expected "
                f"an int >= 0. Received: num_register_tokens={num_register_tokens!r}"
            )
        self.num_prefix_tokens = (
            int(self.class_token) + int(self.distillation_token) + self.num_register_tokens
        )
        self.dynamic = dynamic
        self.resample_method = resample_method
        self.resample_antialias = resample_antialias
        self.position_embedding_layer = None
        if self.position_embedding != "none":
            self.position_embedding_layer = PositionEmbedding(
                self.grid_size,
                kind=self.position_embedding,
                num_prefix_tokens=self.num_prefix_tokens,
                initializer_range=self.initializer_range,
                dynamic=dynamic,
                resample_method=resample_method,
                resample_antialias=resample_antialias,
                dtype=self.dtype_policy,
                name="position_embedding",
            )

    def build(self, input_shape):
        gh, gw = self.grid_size
        if self.dynamic and len(input_shape) != 4:
            raise ArgumentError(
                "`PatchEncoder` with dynamic=True expects patch embeddings on "
                f"their grid, (batch, gh, gw, D). Received: input_shape={tuple(input_shape)}"
            )
        if not self.dynamic and input_shape[1] is not None and input_shape[1] != gh * gw:
            raise ArgumentError(
                f"`PatchEncoder` for a {gh}x{gw} grid expects {gh * gw} patches. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        width = input_shape[-1]
        if self.class_token:
            self.cls = self.add_weight(
                name="class_token", shape=(1, 1, width), initializer="zeros"
            )
        if self.distillation_token:
            self.dist = self.add_weight(
                name="distillation_token", shape=(1, 1, width), initializer="zeros"
            )
        if self.num_register_tokens:
            self.registers = self.add_weight(
                name="register_tokens", shape=(1, self.num_register_tokens, width),
                initializer="zeros",
            )
        if self.position_embedding_layer is not None:
            self.position_embedding_layer.build(
                (input_shape[0], self.num_prefix_tokens + gh * gw, width)
            )

    def call(self, patch_embeddings):
        x = patch_embeddings
        grid = None
        if self.dynamic:
            shape = ops.shape(x)
            grid = (shape[1], shape[2])  # (gh, gw), symbolic when traced so
            x = ops.reshape(x, (shape[0], -1, x.shape[-1]))  # (B, gh*gw, D)
        prefix = [self.cls] if self.class_token else []
        prefix += [self.dist] if self.distillation_token else []
        prefix += [self.registers] if self.num_register_tokens else []
        if prefix:
            batch, width = ops.shape(x)[0], ops.shape(x)[-1]
            prefix = [ops.broadcast_to(ops.cast(t, x.dtype), (batch, t.shape[1], width))
                      for t in prefix]
            x = ops.concatenate(prefix + [x], axis=1)  # (B, prefix + N, D)
        if self.position_embedding_layer is not None:
            x = self.position_embedding_layer(x, grid_size=grid)
        return x

    def compute_output_shape(self, input_shape):
        if self.dynamic:
            batch, gh, gw, width = input_shape
            n = None if gh is None or gw is None else gh * gw
        else:
            batch, n, width = input_shape
        n = None if n is None else n + self.num_prefix_tokens
        return (batch, n, width)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "grid_size": self.grid_size,
                "class_token": self.class_token,
                "position_embedding": self.position_embedding,
                "initializer_range": self.initializer_range,
                "distillation_token": self.distillation_token,
                "num_register_tokens": self.num_register_tokens,
                "dynamic": self.dynamic,
                "resample_method": self.resample_method,
                "resample_antialias": self.resample_antialias,
            }
        )
        return config
