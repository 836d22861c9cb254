"""The BiT ResNet stem of the hybrid R50+ViT (paper section 3.1, "Hybrid Architecture").

A ResNet-v1.5 bottleneck network with weight-standardised convolutions and
GroupNorm instead of BatchNorm (BiT). For R50+ViT-B/16 the paper drops stage 4
and gives stage 3 nine blocks ((3, 4, 9)), so the feature map has stride 16;
it is then cut into 1x1 patches. Layout and names follow timm's `ResNetV2`
(preact=False, stem "same").
"""

import keras

from keras_vit.layers.std_conv2d import StdConv2D


def _conv(filters, kernel_size, strides, name, policy):
    return StdConv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        dtype=policy,
        name=name,
    )


def _norm(name, policy):
    return keras.layers.GroupNormalization(groups=32, epsilon=1e-5, dtype=policy, name=name)


def _bottleneck(x, filters, strides, name, policy):
    """conv1x1-GN-ReLU, conv3x3(stride)-GN-ReLU, conv1x1-GN, + shortcut, ReLU."""
    out_channels = filters * 4
    shortcut = x
    if strides != 1 or x.shape[-1] != out_channels:
        shortcut = _conv(out_channels, 1, strides, f"{name}_downsample_conv", policy)(x)
        shortcut = _norm(f"{name}_downsample_norm", policy)(shortcut)
    y = _conv(filters, 1, 1, f"{name}_conv1", policy)(x)
    y = keras.layers.ReLU(dtype=policy)(_norm(f"{name}_norm1", policy)(y))
    y = _conv(filters, 3, strides, f"{name}_conv2", policy)(y)
    y = keras.layers.ReLU(dtype=policy)(_norm(f"{name}_norm2", policy)(y))
    y = _conv(out_channels, 1, 1, f"{name}_conv3", policy)(y)
    y = _norm(f"{name}_norm3", policy)(y)
    y = keras.layers.Add(dtype=policy)([y, shortcut])
    return keras.layers.ReLU(dtype=policy)(y)


def resnet_stem(x, layers=(3, 4, 9), width=64, policy=None):
    """Applies the BiT ResNet stem to images x (B, H, W, C) -> (B, H/s, W/s, C').

    s = 4 * 2^(len(layers) - 1); C' = 4 * width * 2^(len(layers) - 1).
    """
    x = _conv(width, 7, 2, "stem_conv", policy)(x)
    x = keras.layers.ReLU(dtype=policy)(_norm("stem_norm", policy)(x))
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", dtype=policy, name="stem_pool")(x)
    for stage, depth in enumerate(layers):
        filters = width * 2**stage
        for block in range(depth):
            strides = 2 if stage > 0 and block == 0 else 1
            x = _bottleneck(x, filters, strides, f"stages_{stage}_block_{block}", policy)
    return x
