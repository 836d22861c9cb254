"""Self-supervised pre-training by masked patch prediction (paper section 4.6)."""

import keras
from keras import ops

from keras_vit.errors import ArgumentError
from keras_vit.layers import Patches
from keras_vit.models import names as parts
from keras_vit.pretraining.objectives import (
    DOWNSAMPLED_GRID,
    TARGETS,
    UNCORRUPTED,
    corrupt_patches,
    masked_patch_loss,
    num_color_classes,
    patch_targets,
)
from keras_vit.utils import check_choice


def _check_fraction(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ArgumentError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"number in [0, 1]. Received: {name}={value!r}"
        )
    return float(value)


@keras.saving.register_keras_serializable(package="keras_vit")
class MaskedPatchPrediction(keras.Model):
    """Masked patch prediction around a ViT backbone, trained with `model.fit`.

    The paper's self-supervised objective (section 4.6, App. B.1.2): 50 % of
    the patch embeddings x_p E are corrupted, of which 80 % are replaced by a
    learnable [mask] embedding, 10 % by another random patch's embedding and
    10 % kept; each corrupted patch's output token predicts its target, and
    the loss is taken on corrupted patches only.

    The backbone's own layers (looked up by name: "patches",
    "patch_embedding", "patch_encoder" through "encoder_norm") compute the
    forward pass, so after pre-training `model.backbone` holds the learned
    weights, and `model.backbone.save("backbone.keras")` is what
    `keras_vit.training.finetune` / `keras-vit finetune --weights` take; its
    head is never used here.

    Targets:
    - "mean_color": the 3-bit mean colour of the patch, 8 ** C classes (512
      for RGB, 8 intensities for grayscale); the paper's choice.
    - "downsampled": the patch averaged down to 4x4 in 3-bit colour, 16
      classifications of 8 ** C in parallel (needs P divisible by 4).
    - "pixels": L2 regression of the patch as the network sees it (after the
      model's own normalisation, e.g. x / 127.5 - 1).

    Args:
        backbone: a `keras_vit.VisionTransformer` without a hybrid stem that
            takes pixel values in [0, 255] (`include_preprocessing=True`;
            "pixels" also works without it).
        target: "mean_color", "downsampled" or "pixels". Defaults to
            "mean_color".
        corruption_rate: fraction of patches corrupted. Defaults to 0.5.
        mask_rate: of those, the fraction given the [mask] embedding.
            Defaults to 0.8.
        random_rate: of those, the fraction given another patch's embedding.
            Defaults to 0.1 (the rest, 0.1, is kept).
        seed: int or None, the corruption's random seed. Defaults to None.

    Call arguments:
        images: (B, H, W, C) pixel values in [0, 255].
        training: bool, dropout and stochastic depth on. Corruption is always
            applied (the objective needs it).

    Returns:
        A dict: "predictions" (B, N, 8 ** C), (B, N, 16, 8 ** C) or
        (B, N, P*P*C); "targets" as `patch_targets` gives them; "corruption"
        int32 (B, N): 0 untouched, 1 masked, 2 replaced, 3 kept.

    Example:

    >>> backbone = keras_vit.ViT("Ti/16", image_size=32, patch_size=4, include_top=False)
    >>> model = MaskedPatchPrediction(backbone)
    >>> model.compile(optimizer="adamw")
    >>> model.fit(unlabeled_images, epochs=10)
    >>> model.backbone.save("backbone.keras")
    """

    def __init__(self, backbone, target="mean_color", corruption_rate=0.5, mask_rate=0.8,
                 random_rate=0.1, seed=None, **kwargs):
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        config = getattr(backbone, "config", None)
        if config is None or not isinstance(backbone, keras.Model):
            raise ArgumentError(
                "Received an invalid value for argument `backbone`, expected a "
                f"keras_vit VisionTransformer. Received: backbone={backbone!r}"
            )
        target = check_choice("target", target, TARGETS)
        if config.hybrid_layers is not None:
            raise ArgumentError(
                "Received an invalid value for argument `backbone`: masked patch "
                "prediction needs patches cut from the image, but this backbone has "
                f"a ResNet stem. Received: hybrid_layers={config.hybrid_layers!r}"
            )
        if target != "pixels" and not config.include_preprocessing:
            raise ArgumentError(
                f"Received an invalid value for argument `backbone`: target={target!r} "
                "reads colours from pixel values in [0, 255], so the backbone must "
                "normalise inside. Received: include_preprocessing=False"
            )
        if target == "downsampled" and config.patch_size % DOWNSAMPLED_GRID:
            raise ArgumentError(
                "Received an invalid value for argument `target`: 'downsampled' "
                f"averages each patch to {DOWNSAMPLED_GRID}x{DOWNSAMPLED_GRID}, so the "
                f"patch size must divide by {DOWNSAMPLED_GRID}. "
                f"Received: target='downsampled', patch_size={config.patch_size}"
            )
        corruption_rate = _check_fraction("corruption_rate", corruption_rate)
        mask_rate = _check_fraction("mask_rate", mask_rate)
        random_rate = _check_fraction("random_rate", random_rate)
        if mask_rate + random_rate > 1:
            raise ArgumentError(
                "Received invalid values for arguments `mask_rate` and `random_rate`: "
                "they are shares of the corrupted patches and must sum to at most 1. "
                f"Received: mask_rate={mask_rate}, random_rate={random_rate}"
            )
        super().__init__(**kwargs)
        self.backbone = backbone
        self.target = target
        self.corruption_rate = corruption_rate
        self.mask_rate = mask_rate
        self.random_rate = random_rate
        self.seed = seed

        # The backbone's own graph, cut where the corruption goes in.
        patches = backbone.get_layer(parts.PATCHES)
        # Colour targets read the raw pixels, cut as the backbone cuts them but in
        # float32 whatever the policy (bfloat16 would move means across bins).
        self._target_patches = Patches(config.patch_size, dtype="float32", name="target_patches")
        self._embed = keras.Model(
            backbone.input, [patches.output, backbone.get_layer(parts.PATCH_EMBEDDING).output],
            name="embed",
        )  # images -> (normalised patches (B, N, P*P*C), x_p E (B, N, D))
        self._encode = keras.Model(
            backbone.get_layer(parts.PATCH_ENCODER).input,
            backbone.get_layer(parts.ENCODER_NORM).output,
            name="encode",
        )  # x_p E -> encoder output (B, T, D)
        self._num_patches = config.num_patches
        self._prefix = config.num_prefix_tokens
        width = config.hidden_size
        channels = config.num_channels
        if target == "pixels":
            self._output_shape = (config.patch_size**2 * channels,)
        elif target == "mean_color":
            self._output_shape = (num_color_classes(channels),)
        else:
            self._output_shape = (DOWNSAMPLED_GRID**2, num_color_classes(channels))
        self.mask_token = self.add_weight(
            name="mask_token", shape=(1, 1, width),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        )
        self.mpp_head = keras.layers.Dense(
            _prod(self._output_shape),
            dtype="float32", name="mpp_head",
        )  # float32 predictions under mixed precision
        self.mpp_head.build((None, self._num_patches, width))
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.patch_accuracy = (
            None if target == "pixels" else keras.metrics.Mean(name="patch_accuracy")
        )
        self.built = True

    def call(self, images, training=None):
        normalised, embeddings = self._embed(images, training=training)
        corrupted, kinds = corrupt_patches(
            embeddings, self.mask_token, self.seed_generator, self.corruption_rate,
            self.mask_rate, self.random_rate,
        )  # (B, N, D), (B, N)
        tokens = self._encode(corrupted, training=training)[:, self._prefix:]  # (B, N, D)
        predictions = self.mpp_head(tokens)  # (B, N, prod(output_shape))
        predictions = ops.reshape(predictions, (-1, self._num_patches) + self._output_shape)
        return {
            "predictions": predictions,
            "targets": self.compute_targets(images, normalised),
            "corruption": kinds,
        }

    def compute_targets(self, images, normalised_patches=None):
        """The target of every patch of `images` (pixel values in [0, 255])."""
        c = self.backbone.config
        if self.target == "pixels":
            if normalised_patches is None:
                normalised_patches, _ = self._embed(images, training=False)
            patches = normalised_patches
        else:
            patches = self._target_patches(ops.cast(images, "float32"))  # raw pixels
        return patch_targets(patches, self.target, c.patch_size, c.num_channels)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        corrupted = ops.not_equal(y_pred["corruption"], UNCORRUPTED)
        loss = masked_patch_loss(y_pred["targets"], y_pred["predictions"], corrupted,
                                 self.target)
        for extra in self.losses:  # regularisers, if a user adds any
            loss = loss + ops.cast(ops.sum(extra), loss.dtype)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        results = super().compute_metrics(x, y, y_pred, sample_weight)
        if self.patch_accuracy is not None:
            corrupted = ops.cast(ops.not_equal(y_pred["corruption"], UNCORRUPTED), "float32")
            hits = ops.cast(
                ops.equal(ops.argmax(y_pred["predictions"], axis=-1),
                          ops.cast(y_pred["targets"], "int32")), "float32")
            if self.target == "downsampled":
                hits = ops.mean(hits, axis=-1)  # share of the 16 cells right
            self.patch_accuracy.update_state(hits, sample_weight=corrupted)
            results["patch_accuracy"] = self.patch_accuracy.result()
        return results

    def get_config(self):
        config = super().get_config()
        config.update({
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "target": self.target,
            "corruption_rate": self.corruption_rate,
            "mask_rate": self.mask_rate,
            "random_rate": self.random_rate,
            "seed": self.seed,
        })
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(
            config["backbone"], custom_objects=custom_objects
        )
        return cls(**config)


def _prod(shape):
    total = 1
    for n in shape:
        total *= int(n)
    return total
