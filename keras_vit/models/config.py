"""`ViTConfig`: every choice of the architecture, with its reason, in one place."""

import dataclasses
import numbers
from typing import Optional, Tuple, Union

from keras_vit.errors import ArgumentError
from keras_vit.utils import (
    check_choice,
    check_divisible_image_size,
    check_positive_int,
    check_rate,
    to_hw,
)

POOLINGS = ("token", "gap", "map", None)
POSITION_EMBEDDINGS = ("learned", "learned_2d", "sincos_2d", "relative", "none")
PLACEMENTS = ("stem", "every_layer", "every_layer_shared")
RESAMPLE_METHODS = ("linear", "bicubic")

# `ViTConfig.background`: the polarity of the images a model was trained on.
BACKGROUNDS = (None, "dark", "light")


@dataclasses.dataclass(frozen=True)
class ViTConfig:
    """The architecture of a Vision Transformer; defaults are ViT-B/16 at 224.

    Field names are public API (the CLI's `--set FIELD=VALUE`, checkpoint
    converters and saved models use them).
    """

    image_size: Union[int, Tuple[int, int]] = 224  # int, or (height, width)
    patch_size: int = 16  # P; each side of the image must divide by it
    num_channels: int = 3  # C; 1 for grayscale (digits)
    hidden_size: int = 768  # D, the width of every token
    num_layers: int = 12  # L, encoder blocks
    num_heads: int = 12  # must divide hidden_size
    mlp_dim: int = 3072  # MLP hidden width, 4 D in Table 1
    num_classes: int = 1000  # K, the head's outputs
    dropout_rate: float = 0.0  # after embeddings, attention output, MLP Denses
    attention_dropout_rate: float = 0.0  # on the attention weights
    drop_path_rate: float = 0.0  # stochastic depth of the last block; linear in depth
    layer_norm_epsilon: float = 1e-6  # original and timm; HF uses 1e-12
    gelu_approximate: bool = False  # True: flax's tanh GELU of the original code
    pooling: Optional[str] = "token"  # or "gap" (mean of patch tokens), "map" (MAPHead), None
    representation_size: Optional[int] = None  # pre-logits Dense + tanh (i21k)
    class_token: bool = True  # prepend a learnable [class] token
    position_embedding: str = "learned"  # or "learned_2d", "sincos_2d", "relative", "none"
    position_embedding_placement: str = "stem"  # or "every_layer", "every_layer_shared"
    include_top: bool = True  # False: pooled (pre-logits) features, or all tokens if pooling=None
    include_preprocessing: bool = True  # take [0, 255] pixels and normalise inside
    normalization_mean: Tuple[float, ...] = (0.5,)  # in [0, 1] units, per channel or one
    normalization_std: Tuple[float, ...] = (0.5,)  # 0.5 and 0.5 give x / 127.5 - 1
    hybrid_layers: Optional[Tuple[int, ...]] = None  # BiT ResNet stage depths, (3, 4, 9)
    hybrid_width: int = 64  # BiT ResNet stem width
    # How the position embeddings are resampled for a new image size: the way
    # the weights' source does it (surgery.interpolation_matrix). "linear" is
    # the original code's scipy zoom; timm runs "bicubic" with antialias=True,
    # HF "bicubic" with antialias=False. Converters record the source's choice.
    resample_method: str = "linear"  # or "bicubic"
    resample_antialias: bool = False  # torch's antialiased kernel ("bicubic" only)
    # Checkpoint families beyond the paper's (each as timm / HF build it).
    distillation_token: bool = False  # DeiT: a second learnable token after [class]
    distilled_head: bool = False  # DeiT: a second head on it; logits = mean of both
    num_register_tokens: int = 0  # timm `reg_tokens` (Darcet et al. 2023), after them
    fc_norm: bool = False  # final LayerNorm after pooling, not before (timm avg pool)
    layer_scale_init_value: Optional[float] = None  # DeiT III / CaiT layer scale gamma
    qkv_bias: bool = True  # False: no bias on the q, k, v projections (timm qkv_bias=False)
    # LayerNorm on each head's queries and keys before their product (timm
    # qk_norm=True; ViT-22B's fix for diverging attention logits at scale).
    qk_norm: bool = False
    # CLIP image towers (OpenAI, open_clip; timm norm_pre, HF pre_layrnorm): a
    # LayerNorm on the embedded tokens before the first block. The patch
    # embedding then has no bias, as in CLIP and timm's pre_norm models.
    pre_norm: bool = False
    quick_gelu: bool = False  # OpenAI CLIP's x * sigmoid(1.702 x) instead of GELU
    head_bias: bool = True  # False: CLIP's projection (HF visual_projection) has no bias
    # Input (None, None, C): the grid is read from each image and the position
    # embeddings (made for image_size's grid) are resampled to it in the graph
    # with resample_method / resample_antialias.
    dynamic_image_size: bool = False
    # The head's class names, in order (what HF keeps as id2label): recorded by
    # the converters for a classifier whose source names them (or ImageNet's),
    # printed by `keras-vit predict`; None: unnamed. A new head has none.
    class_names: Optional[Tuple[str, ...]] = dataclasses.field(default=None, repr=False)
    # The training images' background: "dark" (light strokes on black, as the
    # digits and MNIST) or "light"; recorded by train and finetune, read by
    # predict and visualize to invert an image of the other polarity. None: unknown.
    background: Optional[str] = dataclasses.field(default=None, repr=False)

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("image_size", _int_or_pair("image_size", self.image_size))
        for name in ("patch_size", "num_channels", "hidden_size", "num_layers",
                     "num_heads", "mlp_dim", "num_classes", "hybrid_width"):
            set_(name, check_positive_int(name, getattr(self, name)))
        for name in ("dropout_rate", "attention_dropout_rate", "drop_path_rate"):
            set_(name, check_rate(name, getattr(self, name)))
        if not isinstance(self.layer_norm_epsilon, numbers.Real) or self.layer_norm_epsilon <= 0:
            raise ArgumentError(
                "Received an invalid value for argument `layer_norm_epsilon`, "
                f"expected a positive float. Received: "
                f"layer_norm_epsilon={self.layer_norm_epsilon!r}"
            )
        set_("layer_norm_epsilon", float(self.layer_norm_epsilon))
        for name in ("gelu_approximate", "class_token", "include_top", "include_preprocessing",
                     "resample_antialias", "distillation_token", "distilled_head", "fc_norm", "qkv_bias",
                     "qk_norm", "pre_norm", "quick_gelu", "head_bias", "dynamic_image_size"):
            if not isinstance(getattr(self, name), bool):
                raise ArgumentError(
                    f"Received an invalid value for argument `{name}`, expected "
                    f"True or False. Received: {name}={getattr(self, name)!r}"
                )
        check_choice("pooling", self.pooling, POOLINGS)
        check_choice("background", self.background, BACKGROUNDS)
        if self.class_names is not None:
            names = self.class_names
            if (isinstance(names, str) or not isinstance(names, (list, tuple))
                    or not all(isinstance(n, str) for n in names)
                    or len(names) != self.num_classes):
                raise ArgumentError(
                    "Received an invalid value for argument `class_names`, expected None "
                    f"or {self.num_classes} strings (num_classes). Received: "
                    f"{type(names).__name__} of {len(names) if hasattr(names, '__len__') else '?'}"
                )
            set_("class_names", tuple(names))
        if self.quick_gelu and self.gelu_approximate:
            raise ArgumentError(
                "Received an invalid value for argument `quick_gelu`: QuickGELU replaces "
                "GELU, so it has no tanh form. Received: quick_gelu=True, "
                "gelu_approximate=True"
            )
        if (isinstance(self.num_register_tokens, bool)
                or not isinstance(self.num_register_tokens, numbers.Integral)
                or self.num_register_tokens < 0):
            raise ArgumentError(
                "Received an invalid value for argument `num_register_tokens`, expected "
                f"an int >= 0. Received: num_register_tokens={self.num_register_tokens!r}"
            )
        set_("num_register_tokens", int(self.num_register_tokens))
        if self.layer_scale_init_value is not None and (
                not isinstance(self.layer_scale_init_value, numbers.Real)
                or isinstance(self.layer_scale_init_value, bool)
                or self.layer_scale_init_value <= 0):
            raise ArgumentError(
                "Received an invalid value for argument `layer_scale_init_value`, expected "
                "None or a positive float. Received: "
                f"layer_scale_init_value={self.layer_scale_init_value!r}"
            )
        if self.distillation_token and not self.class_token:
            raise ArgumentError(
                "Received an invalid value for argument `distillation_token`: DeiT's "
                "distillation token follows a class token, but class_token=False. "
                "Received: distillation_token=True, class_token=False"
            )
        if self.distilled_head and not (self.distillation_token and self.pooling == "token"):
            raise ArgumentError(
                "Received an invalid value for argument `distilled_head`: the second "
                "head reads the distillation token, so it needs distillation_token=True "
                f"and pooling='token'. Received: distilled_head=True, distillation_token="
                f"{self.distillation_token}, pooling={self.pooling!r}"
            )
        check_choice("resample_method", self.resample_method, RESAMPLE_METHODS)
        if self.resample_antialias and self.resample_method != "bicubic":
            raise ArgumentError(
                "Received an invalid value for argument `resample_antialias`: only "
                "the 'bicubic' resample has an antialiased form. Received: "
                f"resample_method={self.resample_method!r}, resample_antialias=True"
            )
        check_choice("position_embedding", self.position_embedding, POSITION_EMBEDDINGS)
        check_choice(
            "position_embedding_placement", self.position_embedding_placement, PLACEMENTS
        )
        if self.representation_size is not None:
            check_positive_int("representation_size", self.representation_size)
        if self.hidden_size % self.num_heads:
            raise ArgumentError(
                "Received an invalid value for argument `hidden_size`, expected "
                f"a multiple of `num_heads`={self.num_heads}. Received: "
                f"hidden_size={self.hidden_size}, num_heads={self.num_heads}"
            )
        if self.pooling == "token" and not self.class_token:
            raise ArgumentError(
                "Received an invalid value for argument `pooling`: 'token' pools "
                "the class token, but class_token=False. Use pooling='gap'. "
                "Received: pooling='token', class_token=False"
            )
        if self.pooling is None and self.include_top:
            raise ArgumentError(
                "Received an invalid value for argument `pooling`: None (all "
                "tokens) needs include_top=False. Received: pooling=None, "
                "include_top=True"
            )
        for name in ("normalization_mean", "normalization_std"):
            value = getattr(self, name)
            value = (value,) if isinstance(value, (numbers.Real, str)) else value
            if (not isinstance(value, (tuple, list)) or len(value) not in (1, self.num_channels)
                    or not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                               for v in value)):
                raise ArgumentError(
                    f"Received an invalid value for argument `{name}`, expected "
                    f"1 or num_channels={self.num_channels} numbers. "
                    f"Received: {name}={getattr(self, name)!r}"
                )
            set_(name, tuple(float(v) for v in value))
        if any(s <= 0 for s in self.normalization_std):
            raise ArgumentError(
                "Received an invalid value for argument `normalization_std`, "
                f"expected positive values. Received: "
                f"normalization_std={self.normalization_std!r}"
            )
        if self.hybrid_layers is not None:
            if not isinstance(self.hybrid_layers, (tuple, list)):
                raise ArgumentError(
                    "Received an invalid value for argument `hybrid_layers`, expected None "
                    "or a list of block counts per ResNet stage, e.g. (3, 4, 9). "
                    f"Received: hybrid_layers={self.hybrid_layers!r}"
                )
            set_("hybrid_layers", tuple(
                check_positive_int("hybrid_layers", d) for d in self.hybrid_layers
            ))
        check_divisible_image_size(self.image_hw, self.patch_size * self.stem_stride)
        if self.dynamic_image_size:
            _check_dynamic(self)

    # Derived quantities.
    @property
    def image_hw(self):
        """(height, width) of the input images."""
        return to_hw("image_size", self.image_size)

    @property
    def stem_stride(self):
        """How much the hybrid ResNet stem downsamples (1 without one)."""
        return stem_stride(self.hybrid_layers)

    @property
    def grid_size(self):
        """(gh, gw), the patch grid."""
        step = self.patch_size * self.stem_stride
        return (self.image_hw[0] // step, self.image_hw[1] // step)

    @property
    def num_patches(self):
        return self.grid_size[0] * self.grid_size[1]

    @property
    def num_prefix_tokens(self):
        """Tokens before the patches: [class], [distillation], registers."""
        return int(self.class_token) + int(self.distillation_token) + self.num_register_tokens

    # Conversions.
    def replace(self, **changes):
        """A copy with some fields changed (and checked)."""
        check_field_names(changes)
        if changes.get("num_classes", self.num_classes) != self.num_classes:
            changes.setdefault("class_names", None)  # another head: its names go with it
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """Plain JSON-able dict (tuples become lists)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, values):
        check_field_names(values)
        values = dict(values)
        for name in ("image_size", "normalization_mean", "normalization_std", "hybrid_layers",
                     "class_names"):
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        return cls(**values)


def _int_or_pair(name, value):
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, tuple):
        return to_hw(name, value)
    return check_positive_int(name, value)


def _check_dynamic(config):
    """Refuses, by name, what `dynamic_image_size` cannot resample yet."""
    refused = []
    if config.position_embedding == "relative":
        refused.append("position_embedding='relative' (its bias table is sized by the grid)")
    if config.position_embedding_placement != "stem" and config.position_embedding != "none":
        refused.append(
            f"position_embedding_placement={config.position_embedding_placement!r} "
            "(per-layer embeddings do not see the grid)"
        )
    if config.hybrid_layers is not None:
        refused.append("hybrid_layers (the ResNet stem's size check is not dynamic)")
    if refused:
        raise ArgumentError(
            "Received an invalid value for argument `dynamic_image_size`: True is "
            "not supported with " + "; ".join(refused) + ". Received: dynamic_image_size=True"
        )


def stem_stride(hybrid_layers):
    """How much a hybrid ResNet stem of `hybrid_layers` stages downsamples: 4 (the root's
    stride-2 conv and max pool), then 2 per stage after the first; 1 without a stem."""
    if not hybrid_layers:
        return 1
    return 4 * 2 ** (len(hybrid_layers) - 1)


def field_names():
    return [f.name for f in dataclasses.fields(ViTConfig)]


def check_field_names(values, argument=None):
    """Refuses names in `values` that are not ViTConfig fields, in one line naming them
    and the known ones (and `argument`, the parameter they came in, where given)."""
    unknown = sorted(set(values) - set(field_names()))
    if not unknown:
        return
    if argument is not None:
        raise ArgumentError(
            f"Received an invalid value for argument `{argument}`: unknown ViTConfig "
            f"field(s) {', '.join(unknown)}. Known: {', '.join(field_names())}")
    raise ArgumentError(
        f"Unknown ViTConfig field(s) {unknown}. Expected any of: {', '.join(field_names())}")
