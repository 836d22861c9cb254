"""Intermediate features of a ViT for dense tasks (timm's `forward_intermediates`,
HF's `output_hidden_states`)."""

import keras

from keras_vit.errors import ArgumentError
from keras_vit.layers.token_grid import TokenGrid

OUTPUTS = ("tokens", "grid")


def vit_config_and_blocks(model):
    """A keras-vit model's `ViTConfig` and its encoder blocks, looked up by name.

    Raises:
        ValueError: `model` is not a keras-vit Vision Transformer (it has no
            config, or no "transformer_block_{i}" layers).
    """
    config = getattr(model, "config", None)
    if not isinstance(model, keras.Model) or not hasattr(config, "num_prefix_tokens"):
        raise ArgumentError(
            "Received an invalid value for argument `model`, expected a "
            "keras_vit.VisionTransformer (a ViT with attention layers). "
            f"Received: model={type(model).__name__} {getattr(model, 'name', '')!r}"
        )
    names = {layer.name for layer in model.layers}
    missing = [
        f"transformer_block_{i}"
        for i in range(config.num_layers)
        if f"transformer_block_{i}" not in names
    ]
    if missing:
        raise ArgumentError(
            "Received an invalid value for argument `model`: it has no attention "
            f"layer(s) {', '.join(missing)} (a ViT of {config.num_layers} layers "
            f"should). Received: model={model.name!r}"
        )
    return config, [model.get_layer(f"transformer_block_{i}") for i in range(config.num_layers)]


def feature_extractor(model, layers=None, output="tokens"):
    """A model returning the outputs of chosen encoder blocks of `model`.

    The new model shares `model`'s layers and weights (nothing is copied or
    rebuilt) and takes the same input. Each chosen block's output z_l
    (before the final LayerNorm) comes either as tokens (B, T, D), prefix
    tokens included, or as an NHWC feature map (B, gh, gw, D) with the
    `config.num_prefix_tokens` prefix tokens dropped: what a detection or
    segmentation head takes. Works with every pooling, any number of prefix
    tokens and a hybrid stem (whose grid is the stem's feature map).

    Args:
        model: a `keras_vit.VisionTransformer`.
        layers: which blocks: None (every block), or a list of block indices
            (negative counts from the end, as in Python) or block names
            ("transformer_block_3"). Defaults to None.
        output: "tokens" or "grid". Defaults to "tokens".

    Returns:
        A `keras.Model` whose output is a dict {block name: features}.

    Example:

    >>> model = keras_vit.ViT("Ti/16", image_size=64, num_classes=10)
    >>> features = keras_vit.feature_extractor(model, layers=[-1], output="grid")
    >>> features(np.zeros((1, 64, 64, 3)))["transformer_block_11"].shape
    (1, 4, 4, 192)
    """
    config, blocks = vit_config_and_blocks(model)
    if output not in OUTPUTS:
        raise ArgumentError(
            "Received an invalid value for argument `output`, expected one of "
            f"{', '.join(repr(o) for o in OUTPUTS)}. Received: output={output!r}"
        )
    chosen = blocks if layers is None else [_pick(blocks, item) for item in _as_list(layers)]
    outputs = {}
    for block in chosen:
        x = block.output  # (B, T, D)
        if output == "grid":
            x = TokenGrid(
                config.grid_size,
                config.num_prefix_tokens,
                dtype=block.dtype_policy,
                name=f"{block.name}_grid",
            )(x)  # (B, gh, gw, D)
        outputs[block.name] = x
    return keras.Model(model.input, outputs, name=f"{model.name}_features")


def _as_list(layers):
    if isinstance(layers, (int, str)):
        return [layers]
    layers = list(layers)
    if not layers:
        raise ArgumentError(
            "Received an invalid value for argument `layers`, expected None or "
            "at least one block index or name. Received: layers=[]"
        )
    return layers


def _pick(blocks, item):
    names = [b.name for b in blocks]
    if isinstance(item, str) and item in names:
        return blocks[names.index(item)]
    if isinstance(item, int) and not isinstance(item, bool) and -len(blocks) <= item < len(blocks):
        return blocks[item]
    raise ArgumentError(
        "Received an invalid value for argument `layers`, expected block "
        f"indices in [-{len(blocks)}, {len(blocks) - 1}] or names "
        f"transformer_block_0..{len(blocks) - 1}. Received: {item!r}"
    )
