"""ViTConfig, the builder, the variants: parameter counts, head, pooling,
preprocessing, position-embedding ablations, saving, mixed precision, errors."""

import keras
import numpy as np
import pytest

import keras_vit
from tests.layer_checks import check_config_round_trip, check_save_load, check_train_step

pytestmark = pytest.mark.portable  # CI reruns these under KERAS_BACKEND=jax (fused attention)

TINY = dict(
    image_size=28, patch_size=7, num_channels=1, hidden_size=32, num_layers=2,
    num_heads=2, mlp_dim=64, num_classes=5,
)


def np_(x):
    return keras.ops.convert_to_numpy(x)


def tiny(**fields):
    return keras_vit.ViT(keras_vit.ViTConfig(**{**TINY, **fields}))


def images(rng, n=3, size=28, channels=1):
    return rng.uniform(0, 255, size=(n, size, size, channels)).astype("float32")


def randomise(model, rng):
    """Non-trivial weights everywhere (the head is zero at init)."""
    for w in model.weights:
        w.assign(rng.normal(scale=0.2, size=w.shape).astype(w.dtype))


# Parameter counts (timm's, 1000 classes) ----------------------------------

TIMM_COUNTS = {
    "ViTTiny16": 5_717_416,
    "ViTSmall16": 22_050_664,
    "ViTBase16": 86_567_656,
    "ViTBase32": 88_224_232,
}


@pytest.mark.parametrize("factory,count", TIMM_COUNTS.items())
def test_parameter_counts_equal_timm(factory, count):
    model = getattr(keras_vit, factory)()
    assert model.count_params() == count
    assert model.name == factory.lower()


@pytest.fixture
def zero_init(monkeypatch):
    """Whole-size models without the cost of random initialisation."""
    zeros = lambda self, shape, dtype=None: keras.ops.zeros(shape, dtype=dtype or "float32")  # noqa: E731
    monkeypatch.setattr(keras.initializers.VarianceScaling, "__call__", zeros)
    monkeypatch.setattr(keras.initializers.RandomNormal, "__call__", zeros)


def test_large_parameter_counts_equal_timm(zero_init):
    assert keras_vit.ViTLarge16().count_params() == 304_326_632
    assert keras_vit.ViTLarge16(include_top=False).count_params() == 303_301_632
    assert keras_vit.ViTHuge14().count_params() == 632_045_800


@pytest.mark.slow
def test_slow_variant_counts(zero_init):
    assert keras_vit.ViTHuge14(include_top=False).count_params() == 630_764_800
    assert keras_vit.ViTLarge32().count_params() == 306_535_400
    # timm's vit_base_r50_s16_224 (R50+ViT-B/16 at 224).
    assert keras_vit.ViTHybridBase16().count_params() == 98_659_112


def test_variant_table_matches_paper_table_1():
    for name, (layers, width, mlp, heads) in {
        "B/16": (12, 768, 3072, 12), "L/16": (24, 1024, 4096, 16), "H/14": (32, 1280, 5120, 16),
    }.items():
        c = keras_vit.variant_config(name)
        assert (c.num_layers, c.hidden_size, c.mlp_dim, c.num_heads) == (layers, width, mlp, heads)
        assert c.patch_size == int(name.split("/")[1])
    assert keras_vit.variant_config("ViT-B/32").patch_size == 32
    model = keras_vit.ViT("Ti/16", image_size=32, num_classes=10)
    assert model.config.hidden_size == 192 and model.config.grid_size == (2, 2)
    assert "ViT-L/16" in keras_vit.ViTLarge16.__doc__ and "24 layers" in keras_vit.ViTLarge16.__doc__


# The head, pooling, preprocessing -------------------------------------------


def test_fresh_model_logits_are_exactly_zero(rng):
    model = tiny()
    assert np.all(np_(model(images(rng))) == 0)
    head = model.get_layer("head")
    assert np.all(np_(head.kernel) == 0) and np.all(np_(head.bias) == 0)


def test_include_top_false_gives_pooled_features_and_tokens(rng):
    x = images(rng)
    full = tiny(representation_size=16)
    randomise(full, rng)
    features = tiny(include_top=False)
    tokens = tiny(include_top=False, pooling=None)
    for part in (features, tokens):  # same backbone weights, no head
        part.set_weights(full.get_weights()[: len(part.weights)])
    all_tokens = np_(tokens(x))
    assert all_tokens.shape == (3, 17, 32)
    np.testing.assert_allclose(np_(features(x)), all_tokens[:, 0], atol=1e-6)
    pre_logits = full.get_layer("pre_logits")
    head = full.get_layer("head")
    expected = np.tanh(all_tokens[:, 0] @ np_(pre_logits.kernel) + np_(pre_logits.bias))
    expected = expected @ np_(head.kernel) + np_(head.bias)
    np.testing.assert_allclose(np_(full(x)), expected, atol=1e-4)


def test_gap_pooling_averages_patch_tokens(rng):
    x = images(rng)
    for class_token in (True, False):
        gap = tiny(pooling="gap", class_token=class_token, include_top=False)
        tokens = tiny(pooling=None, class_token=class_token, include_top=False)
        randomise(gap, rng)
        tokens.set_weights(gap.get_weights())
        all_tokens = np_(tokens(x))
        assert all_tokens.shape[1] == 16 + class_token
        np.testing.assert_allclose(
            np_(gap(x)), all_tokens[:, int(class_token):].mean(1), atol=1e-5
        )


def test_preprocessing_maps_pixels_like_the_original(rng):
    x = images(rng, channels=3)
    inside = tiny(num_channels=3)
    randomise(inside, rng)
    outside = tiny(num_channels=3, include_preprocessing=False)
    outside.set_weights(inside.get_weights())
    np.testing.assert_allclose(np_(inside(x)), np_(outside(x / 127.5 - 1)), atol=1e-4)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    imagenet = tiny(num_channels=3, normalization_mean=mean, normalization_std=std)
    imagenet.set_weights(inside.get_weights())
    expected = np_(outside((x / 255.0 - np.array(mean)) / np.array(std)))
    np.testing.assert_allclose(np_(imagenet(x)), expected, atol=1e-4)


def test_non_square_images_and_any_channel_count(rng):
    model = tiny(image_size=(14, 28), num_channels=4)
    assert model.config.grid_size == (2, 4)
    assert np_(model(rng.uniform(size=(2, 14, 28, 4)).astype("float32"))).shape == (2, 5)


# Position-embedding ablation (paper App. D.4) --------------------------------


@pytest.mark.parametrize(
    "kind,placement,layers",
    [
        ("learned", "stem", 1),
        ("learned_2d", "stem", 1),
        ("sincos_2d", "stem", 1),
        ("learned", "every_layer", 2),
        ("learned", "every_layer_shared", 1),
        ("relative", "stem", 0),
        ("none", "stem", 0),
    ],
)
def test_position_embedding_ablation(kind, placement, layers, rng, tmp_path):
    model = tiny(position_embedding=kind, position_embedding_placement=placement)
    embedding_layers = [
        l for l in model._flatten_layers() if isinstance(l, keras_vit.PositionEmbedding)
    ]
    assert len(embedding_layers) == layers
    assert all(l.kind == kind for l in embedding_layers)
    relative = [
        l.attention.relative_grid_size
        for l in model.layers if isinstance(l, keras_vit.TransformerBlock)
    ]
    assert relative == [(4, 4) if kind == "relative" else None] * 2
    randomise(model, rng)
    check_save_load(model, images(rng), tmp_path, atol=1e-5)
    # Without a position embedding the model is blind to patch order.
    x = images(rng, n=1)
    patches = x.reshape(1, 4, 7, 4, 7, 1)
    shuffled = patches[:, ::-1].reshape(1, 28, 28, 1)  # reverse the rows of patches
    same = np.allclose(np_(model(x)), np_(model(shuffled)), atol=1e-4)
    assert same == (kind == "none")


def test_drop_path_grows_linearly_with_depth():
    model = tiny(num_layers=5, drop_path_rate=0.2)
    rates = [model.get_layer(f"transformer_block_{i}").drop_path_rate for i in range(5)]
    np.testing.assert_allclose(rates, np.linspace(0, 0.2, 5))


# Saving, config, training -----------------------------------------------------


def test_model_config_save_load_and_train(rng, tmp_path):
    model = tiny(representation_size=16, dropout_rate=0.1, drop_path_rate=0.1)
    randomise(model, rng)
    clone = check_config_round_trip(model)
    assert clone.config == model.config
    loaded = check_save_load(model, images(rng), tmp_path, atol=1e-5)
    assert isinstance(loaded, keras_vit.VisionTransformer) and loaded.config == model.config
    labels = np.array([0, 1, 2])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    check_train_step(tiny(), images(rng), labels, loss=loss)


def test_fit_learns_a_separable_task(rng):
    x = np.zeros((64, 28, 28, 1), "float32")
    y = rng.integers(0, 2, 64)
    x[y == 1, :14] = 255.0  # class 1: bright top half
    x += rng.uniform(0, 30, x.shape).astype("float32")
    model = tiny(num_classes=2)
    model.compile(
        optimizer=keras.optimizers.AdamW(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    assert history.history["accuracy"][-1] == 1.0


def test_hybrid_stem(rng, tmp_path):
    model = tiny(
        image_size=32, patch_size=1, num_channels=3, hybrid_layers=(1, 1), hybrid_width=32
    )
    assert model.config.stem_stride == 8 and model.config.grid_size == (4, 4)
    assert model.get_layer("stem_conv").__class__ is keras_vit.StdConv2D
    assert model.get_layer("patch_embedding").kernel.shape == (256, 32)  # 4 * 2 * 32 channels
    randomise(model, rng)
    check_save_load(model, images(rng, size=32, channels=3), tmp_path, atol=1e-4)
    with pytest.raises(ValueError, match="height 36 is not divisible by the patch size 8"):
        keras_vit.ViTConfig(**{**TINY, "image_size": 36, "patch_size": 1, "hybrid_layers": (1, 1)})


def test_factory_accepts_overrides_and_dtype():
    model = keras_vit.ViTTiny16(num_classes=7, image_size=32, num_layers=1, dtype="mixed_bfloat16")
    assert model.config.num_classes == 7 and model.config.num_layers == 1
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("patch_embedding").dtype_policy.name == "mixed_bfloat16"
    assert keras_vit.VisionTransformer.from_config(model.get_config()).dtype_policy.name == "mixed_bfloat16"


# Mixed precision ----------------------------------------------------------------


@pytest.mark.parametrize("policy,atol", [
    ("mixed_bfloat16", 0.15),
    pytest.param("mixed_float16", 0.02, marks=pytest.mark.skipif(
        keras.backend.backend() == "jax"  # XLA:CPU has no F16_F16_F32 dot_general
        and all(d.lower().startswith("cpu") for d in keras.distribution.list_devices()),
        reason="JAX on a CPU cannot train float16 with float32 accumulation")),
])
def test_mixed_precision_keeps_layernorm_softmax_and_logits_float32(policy, atol, rng):
    x = images(rng)
    reference = tiny()
    randomise(reference, rng)
    mixed = keras_vit.ViT(reference.config, dtype=policy)
    mixed.set_weights(reference.get_weights())
    block = mixed.get_layer("transformer_block_0")
    assert block.attention.qkv.compute_dtype == policy.split("_")[1]
    assert block.layer_norm_1.variable_dtype == "float32"
    logits = mixed(x)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    np.testing.assert_allclose(np_(logits), np_(reference(x)), atol=atol * np.abs(np_(reference(x))).max())
    _, weights = block.attention(
        keras.ops.cast(rng.normal(size=(1, 17, 32)) * 50, policy.split("_")[1]),
        return_attention_scores=True,
    )
    assert np.all(np.isfinite(np_(weights).astype("float32")))
    labels = np.array([0, 1, 2])
    mixed.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert np.isfinite(mixed.train_on_batch(x, labels))


# Errors name the argument, the expectation and the value -----------------------


@pytest.mark.parametrize(
    "fields,message",
    [
        (dict(image_size=30), r"height 30 is not divisible by the patch size 7.*28 and 35"),
        (dict(image_size=(28, 30)), r"width 30 is not divisible"),
        (dict(hidden_size=33, num_heads=2), r"`hidden_size`.*multiple of `num_heads`=2.*hidden_size=33"),
        (dict(pooling="max"), r"`pooling`.*'token', 'gap', 'map', None.*pooling='max'"),
        (dict(position_embedding="rope"), r"`position_embedding`.*'learned'.*'relative'.*'none'"),
        (dict(position_embedding_placement="head"), r"`position_embedding_placement`.*'every_layer'"),
        (dict(num_heads=0), r"`num_heads`, expected a positive integer. Received: num_heads=0"),
        (dict(dropout_rate=1.5), r"`dropout_rate`.*\[0, 1\)"),
        (dict(pooling="token", class_token=False), r"pooling='gap'"),
        (dict(pooling=None), r"include_top=False"),
        (dict(normalization_mean=(0.1, 0.2)), r"`normalization_mean`.*num_channels=1"),
        (dict(normalization_std="abc"), r"`normalization_std`.*numbers. Received: .*'abc'"),
        (dict(normalization_mean=None), r"`normalization_mean`.*Received: normalization_mean=None"),
        (dict(normalization_std=(0.5, "x", 0.5), num_channels=3), r"`normalization_std`"),
        (dict(hybrid_layers=3), r"`hybrid_layers`.*block counts.*hybrid_layers=3"),
    ],
)
def test_bad_configuration_errors(fields, message):
    with pytest.raises(keras_vit.errors.KerasViTError, match=message):
        keras_vit.ViTConfig(**{**TINY, **fields})


def test_unknown_names_are_listed():
    with pytest.raises(ValueError, match=r"unknown variant 'X/16'.*B/16"):
        keras_vit.ViT("X/16")
    with pytest.raises(ValueError, match=r"Unknown ViTConfig field.*'num_layer'.*num_layers"):
        keras_vit.ViT("Ti/16", num_layer=3)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's default")
def test_auto_jit_compile_turns_xla_on_for_tensorflow_on_a_cpu():
    """Keras' "auto" leaves XLA off on a CPU; the model's "auto" measures faster with it."""
    import tensorflow as tf

    model = tiny()
    assert model.jit_compile is True  # predict() without compile()
    model.compile(optimizer="sgd", loss="mse")
    assert model.jit_compile is True
    model.compile(optimizer="sgd", loss="mse", jit_compile=False)
    assert model.jit_compile is False
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        distributed = tiny()
        distributed.compile(optimizer="sgd", loss="mse")
    assert distributed.jit_compile is False  # as Keras: no XLA under tf.distribute
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    plain.compile(optimizer="sgd", loss="mse")
    assert plain.jit_compile is False  # Keras' own choice, untouched for other models
