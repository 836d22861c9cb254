"""The fine-tuning kit: layer-wise learning-rate decay, weight-decay exclusions,
EMA, rematerialisation and LoRA, on what Keras 3 provides.

- Layer-wise learning-rate decay (BEiT, MAE's fine-tuning; facebookresearch/mae
  #80): block i of L (0-based) learns at rate x decay^(L - i), the embeddings at
  rate x decay^(L + 1), the final norm and head at the full rate. Keras has no
  per-variable rate, so `with_layer_decay` returns the same optimizer as a
  registered subclass (`LayerDecaySGD`, `LayerDecayAdamW`, ...) whose
  `update_step` scales the rate it is given by the variable's multiplier.
- No weight decay on biases, norms, position embeddings and tokens: Keras'
  `optimizer.exclude_from_weight_decay`.
- EMA of the weights: Keras optimizers' `use_ema` (fit swaps the averages in at
  its end, so they are what is evaluated and saved).
- Rematerialisation: `keras.RematScope` around building the model (each
  transformer block is recomputed as a whole in the backward pass).
- LoRA: Keras' `Dense.enable_lora` on the attention (qkv, output) and MLP
  (dense_1, dense_2) projections, everything else frozen but the head;
  `merge_lora` folds the low-rank update into plain kernels for saving.
"""

import contextlib
import re

import keras

from keras_vit import compat
from keras_vit.errors import ArgumentError
from keras_vit.models import names as parts
from keras_vit.models.vit import VisionTransformer
from keras_vit.utils import check_positive_int

# The projections LoRA adapts, by their layer paths inside a TransformerBlock.
LORA_TARGETS = ("attention/qkv", "attention/output", "mlp/dense_1", "mlp/dense_2")
# Layers after the last block: they learn at the full rate under layer decay.
_HEAD_LAYERS = (parts.ENCODER_NORM, parts.POOLING, parts.PRE_LOGITS, parts.HEAD)


def layer_id(path, num_layers):
    """0 for the embeddings, i + 1 for block i, L + 1 for the norm and head."""
    match = re.search(r"(?:^|/)(?:transformer_block|position_embedding)_(\d+)/", path)
    if match:
        return int(match.group(1)) + 1
    first = path.split("/")[1 if path.startswith("vit/") else 0]
    return num_layers + 1 if first in _HEAD_LAYERS else 0


def layer_decay_multipliers(model, decay):
    """{variable path: learning-rate multiplier} of layer-wise decay.

    Args:
        model: a `VisionTransformer`.
        decay: float in (0, 1], e.g. 0.75.

    Returns:
        A dict over `model.trainable_variables`: decay^(L + 1 - layer_id).
    """
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay <= 1:
        raise ArgumentError(
            "Received an invalid value for argument `layer_decay`, expected a float in "
            f"(0, 1]. Received: layer_decay={decay!r}"
        )
    num_layers = _config(model).num_layers
    return {
        v.path: float(decay) ** (num_layers + 1 - layer_id(v.path, num_layers))
        for v in model.trainable_variables
    }


class _LayerDecay:
    """Scales each variable's learning rate by `multipliers[variable.path]` (default 1)."""

    def __init__(self, *args, multipliers=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.multipliers = dict(multipliers or {})

    def build(self, variables):
        super().build(variables)
        # By index, not path: on TensorFlow update_step receives tf.Variables.
        self._rate_multipliers = [self.multipliers.get(v.path, 1.0) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        scale = self._rate_multipliers[compat.optimizer_variable_index(self, variable)]
        if scale != 1.0:
            learning_rate = keras.ops.multiply(learning_rate, scale)
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return dict(super().get_config(), multipliers=self.multipliers)


def _layer_decay_class(base):
    name = f"LayerDecay{base.__name__}"
    cls = type(name, (_LayerDecay, base), {"__doc__": f"`{base.__name__}` with layer-wise "
                                           "learning-rate decay (`with_layer_decay`)."})
    cls.__module__ = __name__
    return keras.saving.register_keras_serializable(package="keras_vit", name=name)(cls)


LAYER_DECAY_OPTIMIZERS = {
    base: _layer_decay_class(base)
    for base in (keras.optimizers.SGD, keras.optimizers.AdamW, keras.optimizers.Adam)
}
LayerDecaySGD = LAYER_DECAY_OPTIMIZERS[keras.optimizers.SGD]
LayerDecayAdamW = LAYER_DECAY_OPTIMIZERS[keras.optimizers.AdamW]
LayerDecayAdam = LAYER_DECAY_OPTIMIZERS[keras.optimizers.Adam]


def rebuild_optimizer(optimizer, model, layer_decay=None, ema=None):
    """The same optimizer (same config, not yet built) with the kit's options.

    Args:
        optimizer: an SGD, Adam or AdamW (built or not).
        model: the model it will train (layer decay reads its variables).
        layer_decay: None, or the decay per block (e.g. 0.75).
        ema: None/False, True (momentum 0.9999), or the EMA momentum.

    Returns:
        A fresh optimizer; weight-decay exclusions are carried over and, when
        it decays weights, extended to biases, norms, position embeddings and
        tokens (`exclude_from_weight_decay`).
    """
    config = optimizer.get_config()
    cls = type(optimizer)
    if ema:
        config.update(use_ema=True, ema_momentum=0.9999 if ema is True else float(ema))
    if layer_decay is not None:
        # isinstance: on torch, keras.optimizers.SGD(...) is a torch subclass of it.
        base = next((b for b in LAYER_DECAY_OPTIMIZERS if isinstance(optimizer, b)), None)
        if base is None:
            raise ArgumentError(
                "Received an invalid value for argument `layer_decay`: it is implemented "
                "for SGD, Adam and AdamW. Received: an optimizer of type "
                f"{type(optimizer).__name__}"
            )
        cls = LAYER_DECAY_OPTIMIZERS[base]
        config["multipliers"] = layer_decay_multipliers(model, layer_decay)
    fresh = cls.from_config(config)
    exclude_from_weight_decay(fresh, model)
    return fresh


def no_weight_decay_variables(model):
    """The variables weight decay must skip: all but Dense/conv kernels (biases,
    LayerNorm gamma/beta, position embeddings, the class token, LoRA's A and B)."""
    return [v for v in model.trainable_variables if v.name != "kernel"]


def exclude_from_weight_decay(optimizer, model):
    """Keras' `exclude_from_weight_decay` for biases, norms, position embeddings and
    tokens; a no-op for an optimizer without weight decay. Call before its build."""
    if getattr(optimizer, "weight_decay", None):
        skip = no_weight_decay_variables(model)
        if skip:
            optimizer.exclude_from_weight_decay(var_list=skip)
    return optimizer


def remat_scope(remat=False):
    """`keras.RematScope(mode="full")` when `remat` is true: build the model inside it
    and each transformer block is recomputed in the backward pass (less memory, about
    a third more compute), on TensorFlow, JAX and torch (see `TransformerBlock`).
    `remat` may also name another Keras mode: "larger_than" (the blocks whose output
    is larger than Keras' threshold); "activations" recomputes nothing in this model
    (its blocks are rematerialised whole or not at all)."""
    if not remat:
        return contextlib.nullcontext()
    return keras.RematScope(mode="full" if remat is True else remat)


def check_remat(model):
    """Refuses, before training, a model built under `remat_scope` whose blocks drop
    at random (the recomputed forward pass would draw new masks; the blocks refuse it
    at their first training step, this says so first and in one line)."""
    fields = ("dropout_rate", "attention_dropout_rate", "drop_path_rate")
    config = getattr(model, "config", None)
    if config is None or not any(getattr(config, f) for f in fields):
        return model
    blocks = [layer for layer in model.layers if parts.is_block_name(layer.name)]
    if any(_rematerialised(b) for b in blocks):
        raise ArgumentError(
            "Received an invalid value for argument `remat`: rematerialisation needs a "
            "model without dropout or stochastic depth (the recomputed forward pass would "
            "draw new random masks), expected " + ", ".join(f"{f}=0" for f in fields)
            + " (`keras-vit finetune --set drop_path_rate=0`, or no --remat). Received: "
            + ", ".join(f"{f}={getattr(config, f)}" for f in fields)
        )
    return model


def _rematerialised(block):
    """Whether the RematScope a block was built under recomputes it (see
    `TransformerBlock.rematerialized_call`); "larger_than" counts as yes."""
    mode = compat.remat_mode(block)
    if mode is None or mode.mode in (None, "activations"):
        return False
    if mode.mode == "list_of_layers":
        return block.name in mode.layer_names
    return True


def enable_lora(model, rank, lora_alpha=None):
    """LoRA on the attention and MLP projections; everything else frozen but the head.

    Keras' `Dense.enable_lora` adds A (in, r) and B (r, out, zeros) to each of
    qkv, output, dense_1 and dense_2 of every block and freezes its kernel;
    here their biases and every other weight are frozen too, except the head
    (a new task's classifier must learn). Returns the model (changed in place).

    Example:

    >>> model = enable_lora(model, rank=4)
    >>> trainable = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    """
    rank = check_positive_int("rank", rank)
    targets = _lora_layers(model)
    if not targets:
        raise ArgumentError(
            "Received an invalid value for argument `model`: it has no transformer "
            f"blocks with {', '.join(LORA_TARGETS)} projections to adapt."
        )
    for layer in targets:
        layer.enable_lora(rank, lora_alpha=lora_alpha)
    keep = {id(v) for layer in targets for v in (layer.lora_kernel_a, layer.lora_kernel_b)}
    keep |= {id(v) for v in model.get_layer(parts.HEAD).weights} if _has_head(model) else set()
    for variable in model.weights:
        if id(variable) not in keep:
            variable.trainable = False
    return model


def merge_lora(model):
    """A plain model (no LoRA weights) whose kernels are W + (alpha / r) A B.

    Keras' own `.keras` save of a LoRA layer also merges; this returns the
    merged model itself, to export, quantize or fine-tune further.
    """
    merged = VisionTransformer(_config(model), dtype=model.dtype_policy, name=model.name)
    values = {v.path: v for v in model.weights}
    for layer in compat.all_layers(model):
        if isinstance(layer, keras.layers.Dense) and layer.lora_enabled:
            values[compat.lora_base_kernel(layer).path] = layer.kernel  # W + (alpha / r) A B
    for variable in merged.weights:
        variable.assign(values[variable.path])
    return merged


def trainable_fraction(model):
    """Trainable parameters / all parameters (LoRA's "under 5 %")."""
    count = lambda vs: sum(int(keras.ops.size(v)) for v in vs)  # noqa: E731
    return count(model.trainable_variables) / max(count(model.weights), 1)


def _has_head(model):
    return any(layer.name == parts.HEAD for layer in model.layers)


def _lora_layers(model):
    pattern = re.compile(r"%s/(?:%s)$" % (parts.BLOCK_PATTERN, "|".join(LORA_TARGETS)))
    return [layer for layer in compat.all_layers(model)
            if isinstance(layer, keras.layers.Dense) and pattern.search(layer.path)]


def _config(model):
    config = getattr(model, "config", None)
    if config is None:
        raise ArgumentError(
            "Received an invalid value for argument `model`, expected a keras_vit "
            f"VisionTransformer. Received: a {type(model).__name__}"
        )
    return config
