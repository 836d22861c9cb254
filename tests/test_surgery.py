"""Fine-tuning surgery: zero heads and position embeddings at a new resolution."""

import os

import numpy as np
import pytest
import scipy.ndimage

import keras_vit
from tests.live import require

pytestmark = pytest.mark.portable  # CI reruns these under KERAS_BACKEND=jax

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
TINY = dict(image_size=32, patch_size=8, hidden_size=32, num_layers=2, num_heads=2,
            mlp_dim=64, num_classes=7)


def randomised(model, seed=0):
    """Gives every weight (head included) random non-zero values."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(size=v.shape).astype("float32") * 0.3)
    return model


def by_path(model):
    return {v.path: np.asarray(v.numpy()) for v in model.weights}


@pytest.mark.parametrize("representation_size", [None, 16])
def test_replace_head_zero_head_and_identical_backbone(representation_size):
    model = randomised(keras_vit.ViT(**TINY, representation_size=representation_size))
    new = keras_vit.replace_head(model, num_classes=3)
    old_w, new_w = by_path(model), by_path(new)
    assert new.config.num_classes == 3 and new.config.representation_size is None
    np.testing.assert_array_equal(new_w["head/kernel"], np.zeros((32, 3)))
    np.testing.assert_array_equal(new_w["head/bias"], np.zeros(3))
    backbone = [p for p in old_w if p.split("/")[0] not in ("head", "pre_logits")]
    assert sorted(backbone) == sorted(p for p in new_w if not p.startswith("head/"))
    for path in backbone:
        assert np.array_equal(old_w[path], new_w[path]), path
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(new(x)), np.zeros((2, 3)))
    again = keras_vit.replace_head(new, 3)  # idempotent on the backbone
    assert all(np.array_equal(by_path(again)[p], new_w[p]) for p in backbone)


def test_replace_head_keep_pre_logits():
    model = randomised(keras_vit.ViT(**TINY, representation_size=16))
    new = keras_vit.replace_head(model, 4, keep_pre_logits=True)
    assert new.config.representation_size == 16
    np.testing.assert_array_equal(by_path(new)["pre_logits/kernel"], by_path(model)["pre_logits/kernel"])
    assert by_path(new)["head/kernel"].shape == (16, 4) and not by_path(new)["head/kernel"].any()


def test_replace_head_rejects_bad_num_classes():
    with pytest.raises(ValueError, match="num_classes"):
        keras_vit.replace_head(keras_vit.ViT(**TINY), 0)


@pytest.mark.parametrize("old, new", [((4, 4), (6, 6)), ((4, 4), (2, 2)), ((3, 5), (7, 4)),
                                      ((6, 2), (3, 5)), ((5, 5), (5, 5))])
@pytest.mark.parametrize("prefix", [0, 1])
def test_linear_is_scipy_zoom_order_1(old, new, prefix):
    # The original code: zoom=(gs_new/gs_old, gs_new/gs_old, 1), order=1 (vit_jax checkpoint.py).
    rng = np.random.default_rng(0)
    pe = rng.normal(size=(1, prefix + old[0] * old[1], 8)).astype("float32")
    out = keras_vit.resample_position_embeddings(pe, new, prefix, old_grid=old)
    grid = pe[0, prefix:].reshape(old[0], old[1], 8)
    ref = scipy.ndimage.zoom(grid, (new[0] / old[0], new[1] / old[1], 1), order=1)
    assert out.shape == (1, prefix + new[0] * new[1], 8)
    np.testing.assert_array_equal(out[0, prefix:], ref.reshape(-1, 8))
    np.testing.assert_array_equal(out[:, :prefix], pe[:, :prefix])


def test_linear_square_grid_inferred():
    pe = np.random.default_rng(0).normal(size=(1, 1 + 49, 4))
    out = keras_vit.resample_position_embeddings(pe, 10)
    ref = scipy.ndimage.zoom(pe[0, 1:].reshape(7, 7, 4), (10 / 7, 10 / 7, 1), order=1)
    np.testing.assert_allclose(out[0, 1:], ref.reshape(-1, 4), rtol=0, atol=1e-12)


def test_bicubic_matches_timm_fixture():
    """Committed outputs of timm's resample_abs_pos_embed (bicubic, antialias=False)."""
    cases = np.load(os.path.join(FIXTURES, "posemb_bicubic.npz"))
    keys = [k[3:] for k in cases.files if k.startswith("in_")]
    assert len(keys) == 4
    for key in keys:
        old, new = (tuple(int(v) for v in s.split("x")) for s in key.split("_to_"))
        out = keras_vit.resample_position_embeddings(
            cases[f"in_{key}"], new, 1, method="bicubic", old_grid=old
        )
        ref = cases[f"out_{key}"]
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max(), key


@pytest.mark.live
def test_bicubic_matches_timm_live():
    torch = pytest.importorskip("torch")
    layers = require("timm.layers")
    rng = np.random.default_rng(3)
    for old, new in [((14, 14), (24, 24)), ((4, 6), (9, 3)), ((8, 8), (3, 3))]:
        pe = rng.normal(size=(1, 1 + old[0] * old[1], 16)).astype("float32")
        ref = layers.resample_abs_pos_embed(torch.from_numpy(pe), list(new), list(old), 1,
                                            "bicubic", antialias=False).numpy()
        out = keras_vit.resample_position_embeddings(pe, new, 1, "bicubic", old_grid=old)
        assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max()


SIZES = [(14, 24), (24, 14), (7, 12), (5, 9), (9, 5), (16, 16), (3, 1), (1, 4), (8, 26), (13, 4)]


@pytest.mark.parametrize("in_size, out_size", SIZES)
@pytest.mark.parametrize("antialias", [False, True])
def test_interpolation_matrix_bicubic_is_torch(in_size, out_size, antialias):
    """Each row of the matrix is torch's F.interpolate of a unit impulse, up and down."""
    torch = pytest.importorskip("torch")
    eye = torch.eye(in_size, dtype=torch.float64)[None, None]  # (1, 1, in, in)
    ref = torch.nn.functional.interpolate(eye, size=(out_size, in_size), mode="bicubic",
                                          align_corners=False, antialias=antialias)[0, 0]
    A = keras_vit.surgery.interpolation_matrix(in_size, out_size, "bicubic", antialias)
    assert A.shape == (out_size, in_size) and A.dtype == np.float64
    np.testing.assert_allclose(A, ref.numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("in_size, out_size", SIZES)
def test_interpolation_matrix_linear_is_scipy_zoom(in_size, out_size):
    # mode="nearest" only differs from zoom's default where a float rounding puts the
    # last output a hair past the border (8 -> 26), where the default returns 0.
    ref = scipy.ndimage.zoom(np.eye(in_size), (out_size / in_size, 1), order=1, mode="nearest")
    A = keras_vit.surgery.interpolation_matrix(in_size, out_size)
    np.testing.assert_allclose(A, ref, rtol=0, atol=1e-12)


def test_interpolation_matrix_2d_non_square_against_torch():
    torch = pytest.importorskip("torch")
    grid = np.random.default_rng(0).normal(size=(5, 7))
    for size, aa in [((9, 4), True), ((9, 4), False), ((3, 11), True)]:
        ref = torch.nn.functional.interpolate(torch.from_numpy(grid)[None, None], size=size,
                                              mode="bicubic", align_corners=False, antialias=aa)
        A_h = keras_vit.surgery.interpolation_matrix(5, size[0], "bicubic", aa)
        A_w = keras_vit.surgery.interpolation_matrix(7, size[1], "bicubic", aa)
        np.testing.assert_allclose(A_h @ grid @ A_w.T, ref[0, 0].numpy(), rtol=0, atol=1e-6)


def test_interpolation_matrix_aa_differs_from_plain_when_upsampling():
    plain = keras_vit.surgery.interpolation_matrix(14, 24, "bicubic")
    aa = keras_vit.surgery.interpolation_matrix(14, 24, "bicubic", antialias=True)
    assert np.abs(plain - aa).max() > 1e-2
    np.testing.assert_allclose(aa.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(in_size=0, out_size=3), "in_size"),
    (dict(in_size=3, out_size=2.5), "out_size"),
    (dict(in_size=3, out_size=3, method="area"), "method"),
    (dict(in_size=3, out_size=4, antialias=True), "antialias"),
    (dict(in_size=3, out_size=4, method="bicubic", antialias=1), "antialias"),
])
def test_interpolation_matrix_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_vit.surgery.interpolation_matrix(**kwargs)


@pytest.mark.live
@pytest.mark.parametrize("antialias", [True, False])
def test_bicubic_matches_timm_resample_abs_pos_embed_live(antialias):
    """timm's own function (where timm is installed), up and down, square and not."""
    torch = pytest.importorskip("torch")
    layers = require("timm.layers")
    rng = np.random.default_rng(4)
    for old, new in [((14, 14), (24, 24)), ((24, 24), (10, 10)), ((4, 6), (9, 3)), ((16, 16), (16, 20))]:
        pe = rng.normal(size=(1, 1 + old[0] * old[1], 16)).astype("float32")
        ref = layers.resample_abs_pos_embed(torch.from_numpy(pe), list(new), list(old), 1,
                                            "bicubic", antialias=antialias).numpy()
        out = keras_vit.resample_position_embeddings(pe, new, 1, "bicubic", old_grid=old,
                                                     antialias=antialias)
        assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()


@pytest.mark.parametrize("kwargs, match", [
    (dict(new_grid=(3, 3), antialias=True), "antialias"),
    (dict(new_grid=(3, 3), method="nearest"), "method"),
    (dict(new_grid=(3, 3), old_grid=(2, 3)), "old_grid"),
    (dict(new_grid=0), "new_grid"),
    (dict(new_grid=(3, 3), num_prefix_tokens=-1), "num_prefix_tokens"),
])
def test_resample_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_vit.resample_position_embeddings(np.zeros((1, 17, 4)), **kwargs)


def test_resample_non_square_needs_old_grid():
    with pytest.raises(ValueError, match="old_grid"):
        keras_vit.resample_position_embeddings(np.zeros((1, 1 + 12, 4)), (4, 4))


def test_resize_follows_the_recorded_method_unless_told():
    model = randomised(keras_vit.ViT(**TINY, resample_method="bicubic", resample_antialias=True))
    key = "patch_encoder/position_embedding/embeddings"
    pe = by_path(model)[key]
    recorded = by_path(keras_vit.resize_position_embeddings(model, 48))[key]
    np.testing.assert_array_equal(recorded, keras_vit.resample_position_embeddings(
        pe, 6, 1, "bicubic", antialias=True))
    linear = by_path(keras_vit.resize_position_embeddings(model, 48, method="linear"))[key]
    np.testing.assert_array_equal(linear, keras_vit.resample_position_embeddings(pe, 6, 1, "linear"))
    plain = by_path(keras_vit.resize_position_embeddings(model, 48, antialias=False))[key]
    np.testing.assert_array_equal(plain, keras_vit.resample_position_embeddings(pe, 6, 1, "bicubic"))
    assert np.abs(recorded - plain).max() > 1e-3
    with pytest.raises(ValueError, match="resample_antialias"):
        keras_vit.ViT(**TINY, resample_antialias=True)  # linear has no antialiased form


@pytest.mark.parametrize("method", ["linear", "bicubic"])
def test_resize_position_embeddings_model(method):
    model = randomised(keras_vit.ViT(**TINY))
    new = keras_vit.resize_position_embeddings(model, (48, 24), method=method)
    assert new.config.image_size == (48, 24) and new.config.grid_size == (6, 3)
    old_w, new_w = by_path(model), by_path(new)
    key = "patch_encoder/position_embedding/embeddings"
    expected = keras_vit.resample_position_embeddings(old_w[key], (6, 3), 1, method, old_grid=(4, 4))
    np.testing.assert_array_equal(new_w[key], expected)
    for path in old_w:
        if path != key:
            assert np.array_equal(old_w[path], new_w[path]), path
    x = np.random.default_rng(1).uniform(0, 255, (2, 48, 24, 3)).astype("float32")
    assert np.isfinite(np.asarray(new(x))).all()


def test_resize_to_same_size_keeps_the_function():
    model = randomised(keras_vit.ViT(**TINY))
    same = keras_vit.resize_position_embeddings(model, 32)
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(same(x)))


def test_resize_learned_2d_tables():
    model = randomised(keras_vit.ViT(**TINY, position_embedding="learned_2d"))
    new = keras_vit.resize_position_embeddings(model, (16, 48))
    w, nw = by_path(model), by_path(new)
    rows = "patch_encoder/position_embedding/row_embeddings"
    cols = "patch_encoder/position_embedding/column_embeddings"
    np.testing.assert_array_equal(nw[rows], scipy.ndimage.zoom(w[rows], (2 / 4, 1), order=1))
    np.testing.assert_array_equal(nw[cols], scipy.ndimage.zoom(w[cols], (6 / 4, 1), order=1))


def test_resize_rejects_relative_and_bad_size():
    with pytest.raises(ValueError, match="relative"):
        keras_vit.resize_position_embeddings(keras_vit.ViT(**TINY, position_embedding="relative"), 48)
    with pytest.raises(ValueError, match="divisible"):
        keras_vit.resize_position_embeddings(keras_vit.ViT(**TINY), 36)


def test_surgery_keeps_the_dtype_policy():
    model = keras_vit.ViT(**TINY, dtype="mixed_bfloat16")
    new = keras_vit.resize_position_embeddings(keras_vit.replace_head(model, 3), 48)
    assert new.get_layer("transformer_block_0").dtype_policy.name == "mixed_bfloat16"
    assert new.name == model.name
