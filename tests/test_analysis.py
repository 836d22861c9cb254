"""What a ViT learns (paper 4.5), feature extraction and `keras-vit visualize` (issue 10).

Every number is checked against a direct NumPy computation; the tests are
numbered as the issue lists its items.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import keras_vit
from keras_vit import analysis
from keras_vit.cli import main as cli_main
from keras_vit.layers.token_grid import TokenGrid
from tests.layer_checks import check_config_round_trip, check_save_load, wrap

pytestmark = pytest.mark.portable

ROOT = pathlib.Path(__file__).resolve().parents[1]
DIGITS = ROOT / "weights" / "digits" / "model.keras"


def tiny(**fields):
    """A 2-layer ViT on 12x16 grayscale images: a non-square 3x4 grid of 4x4 patches."""
    config = dict(
        image_size=(12, 16), patch_size=4, num_channels=1, hidden_size=16, num_layers=2,
        num_heads=2, mlp_dim=32, num_classes=3,
    )
    config.update(fields)
    model = keras_vit.ViT(keras_vit.ViTConfig(**config))
    _perturb(model)
    return model


def _perturb(model):
    """Random-init weights, with the zero-initialised ones (class token, head) made non-zero."""
    rng = np.random.default_rng(1)
    for w in model.weights:
        if not np.any(keras.ops.convert_to_numpy(w)):
            w.assign(rng.normal(0, 0.2, w.shape).astype("float32"))


def images_for(model, n=3, seed=0):
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).uniform(0, 255, (n,) + shape).astype("float32")


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def numpy_attention(block, x):
    """The attention weights of `block` on its input tokens x, by hand: LN, U_qkv, softmax."""
    ln = block.layer_norm_1
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + ln.epsilon) * numpy(ln.gamma) + numpy(ln.beta)
    qkv = y @ numpy(block.attention.qkv.kernel) + numpy(block.attention.qkv.bias)
    b, t, _ = x.shape
    heads = block.attention.num_heads
    qkv = qkv.reshape(b, t, 3, heads, -1).transpose(2, 0, 3, 1, 4)  # (3, B, heads, T, hd)
    logits = qkv[0] @ qkv[1].transpose(0, 1, 3, 2) / np.sqrt(qkv.shape[-1])
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)  # (B, heads, T, T)


def block_inputs(model, x):
    """Each block's input tokens, through a sub-model built here (not the library's)."""
    blocks = [model.get_layer(f"transformer_block_{i}") for i in range(model.config.num_layers)]
    sub = keras.Model(model.input, [b.input for b in blocks])
    return blocks, [numpy(t) for t in sub(x)]


# 1. feature_extractor ---------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [{}, {"class_token": False, "pooling": "gap"}, {"pooling": None, "include_top": False}],
    ids=["token", "gap-no-class-token", "all-tokens"],
)
def test_1_feature_extractor_grid_is_the_models_tokens_reshaped(fields):
    model = tiny(**fields)
    x = images_for(model)
    p, (gh, gw) = model.config.num_prefix_tokens, model.config.grid_size
    tokens = keras_vit.feature_extractor(model)(x)
    grid = keras_vit.feature_extractor(model, output="grid")(x)
    assert list(tokens) == list(grid) == ["transformer_block_0", "transformer_block_1"]
    blocks, inputs = block_inputs(model, x)
    for i, block in enumerate(blocks):
        t = numpy(tokens[block.name])
        # the block's own output on its own input
        np.testing.assert_allclose(t, numpy(block(inputs[i], training=False)), atol=1e-5)
        d = t.shape[-1]
        np.testing.assert_array_equal(numpy(grid[block.name]), t[:, p:].reshape(-1, gh, gw, d))
    # the last block's tokens, through the model's encoder norm, are the model's own tokens
    if model.config.pooling is None:
        last = model.get_layer("encoder_norm")(tokens["transformer_block_1"])
        np.testing.assert_allclose(numpy(last), numpy(model(x)), atol=1e-5)


def test_1_feature_extractor_shares_weights_and_picks_layers(tmp_path):
    model = tiny()
    x = images_for(model, n=2)
    features = keras_vit.feature_extractor(model, layers=[-1, "transformer_block_0"], output="grid")
    assert features.get_layer("transformer_block_1") is model.get_layer("transformer_block_1")
    assert sorted(features(x)) == ["transformer_block_0", "transformer_block_1"]
    before = numpy(features(x)["transformer_block_1"])
    kernel = model.get_layer("transformer_block_1").mlp.weights[0]
    kernel.assign(kernel * 2.0)
    assert not np.allclose(numpy(features(x)["transformer_block_1"]), before)
    # a load of the saved extractor gives the same features
    features.save(tmp_path / "features.keras")
    loaded = keras.models.load_model(tmp_path / "features.keras")
    for name, value in features(x).items():
        np.testing.assert_allclose(numpy(loaded(x)[name]), numpy(value), atol=1e-5)
    for bad in (2, -3, "block_0", True):
        with pytest.raises(ValueError, match="`layers`"):
            keras_vit.feature_extractor(model, layers=[bad])
    with pytest.raises(ValueError, match="`output`"):
        keras_vit.feature_extractor(model, output="nchw")


def test_1_feature_extractor_hybrid_grid_is_the_stems_map():
    model = tiny(image_size=(16, 32), patch_size=1, hybrid_layers=(1, 1), hybrid_width=32)
    assert model.config.grid_size == (2, 4)  # stride 8 stem
    x = images_for(model, n=1)
    tokens = numpy(keras_vit.feature_extractor(model, layers=[0])(x)["transformer_block_0"])
    grid = keras_vit.feature_extractor(model, layers=[0], output="grid")(x)
    grid = numpy(grid["transformer_block_0"])
    np.testing.assert_array_equal(grid, tokens[:, 1:].reshape(1, 2, 4, 16))


def test_token_grid_layer_contract(tmp_path):
    layer = TokenGrid((2, 3), num_prefix_tokens=2)
    check_config_round_trip(layer)
    x = np.random.default_rng(0).normal(size=(2, 8, 4)).astype("float32")
    np.testing.assert_array_equal(numpy(layer(x)), x[:, 2:].reshape(2, 2, 3, 4))
    check_save_load(wrap(layer, (8, 4)), x, tmp_path)
    with pytest.raises(ValueError, match="expects 8 tokens"):
        TokenGrid((2, 3), num_prefix_tokens=2)(np.zeros((1, 7, 4), "float32"))


# 2. attention_maps ------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields", [{}, {"class_token": False, "pooling": "gap"}, {"position_embedding": "relative"}],
    ids=["token", "gap-no-class-token", "relative"],
)
def test_2_attention_maps_equal_numpy_attention(fields):
    model = tiny(**fields)
    x = images_for(model)
    maps = analysis.attention_maps(model, x, batch_size=2)  # two batches
    t = model.config.num_prefix_tokens + model.config.num_patches
    assert maps.shape == (2, 3, 2, t, t)
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
    blocks, inputs = block_inputs(model, x)
    for i, block in enumerate(blocks):
        expected = numpy_attention(block, inputs[i])
        if fields.get("position_embedding") == "relative":
            continue  # NumPy has no bias here; checked against the layer below instead
        np.testing.assert_allclose(maps[i], expected, atol=1e-5)
    if fields.get("position_embedding") == "relative":
        for i, block in enumerate(blocks):
            _, w = block(inputs[i], return_attention_scores=True)
            np.testing.assert_allclose(maps[i], numpy(w), atol=1e-6)


def test_2_default_call_keeps_the_fused_kernel(monkeypatch):
    """The default forward pass goes through ops.dot_product_attention (except on
    TensorFlow, which has no fused kernel); only attention_maps takes the explicit path."""
    if keras.backend.backend() == "tensorflow":
        pytest.skip("TensorFlow has no fused attention kernel; its default path is explicit")
    model = tiny()
    x = images_for(model, n=1)
    calls = []
    fused = keras.ops.dot_product_attention
    monkeypatch.setattr(
        keras.ops, "dot_product_attention", lambda *a, **k: calls.append(1) or fused(*a, **k)
    )
    model(x)
    assert len(calls) == model.config.num_layers
    analysis.attention_maps(model, x)
    calls.clear()
    model(x)  # asking for the weights changed nothing in the default path
    assert len(calls) == model.config.num_layers


def test_2_errors_name_the_argument():
    model = tiny()
    with pytest.raises(ValueError, match=r"`images`.*\(B, 12, 16, 1\).*\(2, 16, 12, 1\)"):
        analysis.attention_maps(model, np.zeros((2, 16, 12, 1)))
    cnn = keras.Sequential([keras.Input((12, 16, 1)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="expected a keras_vit.VisionTransformer"):
        analysis.attention_maps(cnn, np.zeros((1, 12, 16, 1)))
    one = analysis.attention_maps(model, np.zeros((12, 16, 1)))  # one image, no batch axis
    assert one.shape[1] == 1


# 3. attention_rollout ---------------------------------------------------------------


def numpy_rollout(maps, fusion, discard, p, class_row):
    """Abnar & Zuidema's rollout of one image's (L, heads, T, T) maps, written out."""
    t = maps.shape[-1]
    r = np.eye(t)
    for layer in maps.astype(np.float64):
        a = {"mean": layer.mean(0), "max": layer.max(0), "min": layer.min(0)}[fusion]
        if discard:
            flat = a.flatten()
            lowest = np.argsort(flat, kind="stable")[: int(t * t * discard)]
            flat[[i for i in lowest if i != 0]] = 0.0
            a = flat.reshape(t, t)
        a = (a + np.eye(t)) / 2
        a = a / a.sum(-1, keepdims=True)
        r = a @ r
    return r[0, p:] if class_row else r[p:, p:].mean(0)


@pytest.mark.parametrize(
    "fields,fusion,discard",
    [({}, "mean", 0.0), ({}, "max", 0.5), ({"class_token": False, "pooling": "gap"}, "min", 0.2),
     ({"pooling": "gap"}, "mean", 0.0)],
    ids=["mean", "max-discard", "gap-min-discard", "gap-with-class-token"],
)
def test_3_rollout_equals_numpy_from_the_maps(fields, fusion, discard):
    model = tiny(**fields)
    x = images_for(model)
    maps = analysis.attention_maps(model, x)
    rollout = analysis.attention_rollout(model, x, head_fusion=fusion, discard_ratio=discard)
    p, (gh, gw) = model.config.num_prefix_tokens, model.config.grid_size
    assert rollout.shape == (3, gh, gw)
    for b in range(3):
        class_row = model.config.pooling == "token"  # GAP models: the mean of the patch rows
        expected = numpy_rollout(maps[:, b], fusion, discard, p, class_row)
        np.testing.assert_allclose(rollout[b], expected.reshape(gh, gw), rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="`head_fusion`"):
        analysis.attention_rollout(model, x, head_fusion="sum")
    with pytest.raises(ValueError, match="`discard_ratio`"):
        analysis.attention_rollout(model, x, discard_ratio=1.0)


# 4. mean_attention_distance ---------------------------------------------------------


def grid_mean_distance(gh, gw, pixels):
    centres = [(i * pixels, j * pixels) for i in range(gh) for j in range(gw)]
    return np.mean([np.hypot(a[0] - b[0], a[1] - b[1]) for a in centres for b in centres])


def set_attention(model, self_bias=None):
    """q = k = 0 in every head, so attention is uniform; with `self_bias`, a relative
    bias that large on the zero offset puts all of a patch's mass on itself."""
    for i in range(model.config.num_layers):
        attention = model.get_layer(f"transformer_block_{i}").attention
        d = attention.qkv.kernel.shape[0]
        kernel = numpy(attention.qkv.kernel)
        bias = numpy(attention.qkv.bias)
        kernel[:, : 2 * d] = 0.0
        bias[: 2 * d] = 0.0
        attention.qkv.kernel.assign(kernel.astype("float32"))
        attention.qkv.bias.assign(bias.astype("float32"))
        if self_bias is not None:
            gh, gw = model.config.grid_size
            table = np.zeros(attention.relative_position_bias_table.shape, "float32")
            table[(gh - 1) * (2 * gw - 1) + gw - 1] = self_bias  # offset (0, 0)
            attention.relative_position_bias_table.assign(table)


@pytest.mark.parametrize("fields", [{}, {"class_token": False, "pooling": "gap"}],
                         ids=["token", "gap-no-class-token"])
def test_4_distance_uniform_attention_is_the_grids_mean_pairwise_distance(fields):
    model = tiny(**fields)
    set_attention(model)
    distance = analysis.mean_attention_distance(model, images_for(model))
    assert distance.shape == (2, 2)
    np.testing.assert_allclose(distance, grid_mean_distance(3, 4, 4.0), rtol=1e-5)


def test_4_distance_attention_on_itself_is_zero():
    model = tiny(position_embedding="relative")
    set_attention(model, self_bias=1e4)
    maps = analysis.attention_maps(model, images_for(model, n=1))
    np.testing.assert_allclose(maps[:, 0, :, 1:, 1:].diagonal(axis1=-2, axis2=-1), 1.0, atol=1e-6)
    distance = analysis.mean_attention_distance(model, images_for(model))
    np.testing.assert_allclose(distance, 0.0, atol=1e-6)


def test_4_distance_of_a_hybrid_is_in_input_pixels():
    model = tiny(image_size=(16, 32), patch_size=1, hybrid_layers=(1, 1), hybrid_width=32)
    set_attention(model)
    distance = analysis.mean_attention_distance(model, images_for(model, n=2))
    # a 1x1 patch of the stride-8 stem covers 8 input pixels
    np.testing.assert_allclose(distance, grid_mean_distance(2, 4, 8.0), rtol=1e-5)


# 5. position_embedding_similarity ----------------------------------------------------


def numpy_cosine(table):
    n = len(table)
    return np.array([[table[a] @ table[b] / np.linalg.norm(table[a]) / np.linalg.norm(table[b])
                      for b in range(n)] for a in range(n)])


@pytest.mark.parametrize(
    "fields",
    [{}, {"class_token": False, "pooling": "gap"}, {"position_embedding": "learned_2d"},
     {"position_embedding": "sincos_2d"}, {"position_embedding_placement": "every_layer"}],
    ids=["learned", "no-class-token", "learned_2d", "sincos_2d", "every_layer"],
)
def test_5_similarity_is_a_numpy_cosine_with_unit_diagonal(fields):
    model = tiny(**fields)
    c = model.config
    (gh, gw), p = c.grid_size, c.num_prefix_tokens
    similarity = analysis.position_embedding_similarity(model)
    assert similarity.shape == (gh, gw, gh, gw)
    if c.position_embedding_placement == "every_layer":
        layer = model.get_layer("position_embedding_0")
    else:
        layer = model.get_layer("patch_encoder").position_embedding_layer
    if c.position_embedding == "learned":
        table = numpy(layer.embeddings)[0, p:]
    elif c.position_embedding == "learned_2d":
        rows, cols = numpy(layer.row_embeddings), numpy(layer.column_embeddings)
        table = np.array([np.concatenate([rows[i], cols[j]]) for i in range(gh) for j in range(gw)])
    else:
        table = numpy(layer.embedding())[0, p:]
    expected = numpy_cosine(table).reshape(gh, gw, gh, gw)
    np.testing.assert_allclose(similarity, expected, atol=1e-6)
    np.testing.assert_allclose(similarity.reshape(gh * gw, -1).diagonal(), 1.0, atol=1e-6)


def test_5_similarity_without_an_absolute_embedding_says_so():
    for kind in ("relative", "none"):
        with pytest.raises(ValueError, match=f"no absolute position embedding.*{kind}"):
            analysis.position_embedding_similarity(tiny(position_embedding=kind))


# 6. embedding_filters --------------------------------------------------------------


def test_6_filters_are_numpy_svd_of_the_centred_kernels():
    model = tiny(num_channels=3, hidden_size=32)
    filters = analysis.embedding_filters(model, n=5)
    assert filters.shape == (5, 4, 4, 3)
    # the Conv2D kernel (P, P, C, D) the Dense kernel equals, one filter per output
    conv = numpy(model.get_layer("patch_embedding").kernel).reshape(4, 4, 3, 32)
    flat = conv.transpose(3, 0, 1, 2).reshape(32, -1)
    _, _, vt = np.linalg.svd(flat - flat.mean(0), full_matrices=False)
    got = filters.reshape(5, -1)
    signs = np.sign(np.sum(got * vt[:5], axis=1))
    np.testing.assert_allclose(got, vt[:5] * signs[:, None], atol=1e-8)
    assert np.all(got[np.arange(5), np.abs(got).argmax(1)] > 0)  # deterministic signs
    with pytest.raises(ValueError, match=r"`n`, expected at most 32"):
        analysis.embedding_filters(model, n=33)


# 7. plots and `keras-vit visualize` -------------------------------------------------


def test_7_plots_return_figures_and_save_pngs(tmp_path):
    from matplotlib.figure import Figure

    model = tiny()
    x = images_for(model, n=1)
    maps = analysis.attention_maps(model, x)
    made = {
        "rollout": analysis.plot_attention_rollout(x[0], analysis.attention_rollout(model, x)[0]),
        "maps": analysis.plot_attention_maps(x[0], maps[:, 0], (3, 4), 1),
        "distance": analysis.plot_mean_attention_distance(
            analysis.mean_attention_distance(model, x), uniform=6.0),
        "similarity": analysis.plot_position_embedding_similarity(
            analysis.position_embedding_similarity(model)),
        "filters": analysis.plot_embedding_filters(analysis.embedding_filters(model, n=7)),
    }
    for name, fig in made.items():
        assert isinstance(fig, Figure)
        fig.savefig(tmp_path / f"{name}.png")
        with Image.open(tmp_path / f"{name}.png") as image:
            assert image.format == "PNG" and min(image.size) > 100


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("visualize")
    model = tiny()
    model.save(folder / "model.keras")
    for i, array in enumerate(images_for(model, n=2)):
        Image.fromarray(array[..., 0].astype("uint8")).save(folder / f"digit{i}.png")
    (folder / "notes.txt").write_text("not an image")
    cnn = keras.Sequential([keras.Input((12, 16, 1)), keras.layers.Conv2D(2, 3)])
    cnn.save(folder / "cnn.keras")
    return folder


def test_7_visualize_in_a_fresh_process_writes_the_figures_and_their_numbers(saved, tmp_path):
    out = tmp_path / "figures"
    images = [str(saved / "digit0.png"), str(saved / "digit1.png")]
    run = subprocess.run(
        [sys.executable, "-m", "keras_vit", "visualize", *images,
         "--model", str(saved / "model.keras"), "--output-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert run.returncode == 0, run.stderr
    assert "mean attention distance: first block" in run.stdout
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["attention_00.png", "attention_01.png", "embedding_filters.png",
                    "mean_attention_distance.png", "position_embedding_similarity.png",
                    "rollout_00.png", "rollout_01.png"]
    index = (out / "index.html").read_text()
    assert all(f'src="{name}"' in index for name in pngs)
    summary = json.loads((out / "analysis.json").read_text())
    model = keras.models.load_model(saved / "model.keras")
    x = np.stack([np.asarray(Image.open(p), "float32")[..., None] for p in images])
    np.testing.assert_allclose(summary["mean_attention_distance_pixels"],
                               analysis.mean_attention_distance(model, x), atol=1e-4)
    assert summary["images"] == ["digit0.png", "digit1.png"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


@pytest.mark.parametrize(
    "image,model_file,message",
    [
        ("notes.txt", "model.keras", "not an image: .*notes.txt"),
        ("digit0.png", "missing.keras", "model file not found: .*missing.keras"),
        ("digit0.png", "cnn.keras", "expected a keras_vit.VisionTransformer"),
    ],
    ids=["non-image", "missing-model", "no-attention"],
)
def test_7_visualize_errors_are_one_line_and_write_nothing(
    saved, tmp_path, capsys, image, model_file, message
):
    out = tmp_path / "figures"
    args = ["visualize", str(saved / image), "--model", str(saved / model_file),
            "--output-dir", str(out)]
    assert cli_main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("keras-vit visualize: error:"), err
    assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == []


def test_7_visualize_keeps_what_a_user_saved(saved, tmp_path, capsys):
    out = tmp_path / "figures"
    out.mkdir()
    (out / "index.html").write_text("mine")
    args = ["visualize", str(saved / "digit0.png"), "--model", str(saved / "model.keras"),
            "--output-dir", str(out)]
    assert cli_main(args) == 1
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["index.html"]
    assert (out / "index.html").read_text() == "mine"
    assert cli_main(args + ["--overwrite"]) == 0
    assert "rollout_00.png" in (out / "index.html").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures"]


# What the paper reports, on the shipped digits model ---------------------------------


@pytest.fixture(scope="module")
def digits():
    if not DIGITS.is_file():
        pytest.skip(f"the shipped digits model {DIGITS} is missing")
    from keras_vit.data import load_digits_arrays

    model = keras_vit.evaluation.load_model(DIGITS)
    x, _ = load_digits_arrays("test")
    x = numpy(keras.ops.image.resize(x, model.config.image_hw, interpolation="bilinear"))
    return model, x


def test_digits_last_block_attends_farther_than_the_first(digits):
    model, x = digits
    distance = analysis.mean_attention_distance(model, x)  # (4, 4), the 360 test digits
    first, last = distance[0].mean(), distance[-1].mean()
    assert last > first, (first, last)


def test_digits_neighbouring_position_embeddings_are_more_similar(digits):
    model, _ = digits
    s = analysis.similarity_by_distance(analysis.position_embedding_similarity(model))
    assert s["neighbours"] > s["distant"] + 0.2, s


def test_patch_distances_on_a_non_square_grid_by_hand():
    # A 2x3 grid of 4-pixel patches, centres listed row by row.
    centres = [(4.0 * r, 4.0 * c) for r in range(2) for c in range(3)]
    expected = [[np.hypot(a[0] - b[0], a[1] - b[1]) for b in centres] for a in centres]
    np.testing.assert_allclose(analysis.patch_distances((2, 3), 4), expected, atol=1e-12)


def test_similarity_by_distance_on_a_hand_made_non_square_map():
    from keras_vit.analysis.visualize import similarity_by_distance

    gh, gw = 2, 3
    cells = [(r, c) for r in range(gh) for c in range(gw)]
    rng = np.random.default_rng(4)
    s = rng.uniform(-1, 1, (gh * gw, gh * gw))
    np.fill_diagonal(s, 1.0)  # a unit diagonal, as from position_embedding_similarity
    dist = lambda a, b: np.hypot(a[0] - b[0], a[1] - b[1])  # noqa: E731
    far = max(dist(a, b) for a in cells for b in cells) / 2  # sqrt(5) / 2
    near = [s[i, j] for i, a in enumerate(cells) for j, b in enumerate(cells)
            if abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1]  # left/right/up/down, not itself
    distant = [s[i, j] for i, a in enumerate(cells) for j, b in enumerate(cells)
               if dist(a, b) >= far]
    result = similarity_by_distance(s.reshape(gh, gw, gh, gw))
    assert result == {"neighbours": round(float(np.mean(near)), 4),
                      "distant": round(float(np.mean(distant)), 4),
                      "distant_min_patches": round(far, 4)}
