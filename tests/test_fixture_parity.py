"""Converters against the reference code on the cases only the live tests covered.

The fixtures come from tests/fixtures/make_fixtures.py (`parity_fixtures`):
timm and HF transformers models at random init with every parameter
perturbed, and those libraries' own outputs on the same raw pixels
(parity_reference.npz). Converted models must match to 1e-4 of the outputs'
scale. Portable: under JAX the attention runs on the fused kernel, so these
also check that path against the references.
"""

import os
import shutil

import keras
import numpy as np
import pytest

import keras_vit
from keras_vit.evaluation import feature_model

pytestmark = pytest.mark.portable

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
REFERENCE = dict(np.load(os.path.join(FIXTURES, "parity_reference.npz")))
PIXELS_32 = np.load(os.path.join(FIXTURES, "pixels.npy")).astype("float32")
PIXELS_16 = REFERENCE["pixels_16"].astype("float32")
PIXELS_16x24 = REFERENCE["pixels_16x24"].astype("float32")


def fixture(name):
    return os.path.join(FIXTURES, name)


def assert_matches(out, reference):
    out = keras.ops.convert_to_numpy(out)
    assert out.shape == reference.shape
    scale = np.abs(reference).max()
    error = np.abs(out - reference).max()
    assert error <= 1e-4 * scale, f"max error {error:.3g}, {error / scale:.3g} of the scale"


def test_hybrid_with_a_stride_2_stage_matches_timm():
    """R50-style stem with two stages: the second downsamples in its 3x3 conv."""
    model = keras_vit.convert_checkpoint(fixture("timm_hybrid_s2.safetensors"), num_heads=2)
    c = model.config
    assert (c.hybrid_layers, c.hybrid_width, c.grid_size) == ((1, 1), 32, (4, 4))
    assert_matches(model(PIXELS_32), REFERENCE["hybrid_s2"])


def test_timm_no_embed_class_gives_the_class_token_no_position_embedding():
    model = keras_vit.convert_checkpoint(fixture("timm_no_embed_class.safetensors"), num_heads=2)
    assert model.config.class_token and model.config.grid_size == (4, 4)
    assert_matches(model(PIXELS_16), REFERENCE["timm_no_embed_class"])


def test_timm_without_class_token_on_a_non_square_grid():
    model = keras_vit.convert_checkpoint(
        fixture("timm_no_class_token.safetensors"), num_heads=2, image_size=(16, 24))
    c = model.config
    assert (c.class_token, c.pooling, c.grid_size) == (False, "gap", (4, 6))
    assert_matches(model(PIXELS_16x24), REFERENCE["timm_no_class_token"])


@pytest.mark.parametrize("hidden_act", ["gelu_pytorch_tanh", "gelu_new"])
def test_hf_tanh_gelu_and_vitmodel_pooler(hidden_act, tmp_path):
    """HF's tanh GELUs, and ViTModel's pooler (Dense + tanh) as our pre-logits."""
    folder = tmp_path / "hf"
    shutil.copytree(fixture("hf_tanh_pooler"), folder)
    config = (folder / "config.json").read_text()
    (folder / "config.json").write_text(config.replace("gelu_pytorch_tanh", hidden_act))
    model = keras_vit.convert_checkpoint(str(folder), num_classes=3)
    c = model.config
    assert c.gelu_approximate is True and c.representation_size == 16
    assert c.layer_norm_epsilon == 1e-12
    assert_matches(feature_model(model)(PIXELS_16), REFERENCE["hf_tanh_pooler"])
    assert not keras.ops.convert_to_numpy(model(PIXELS_16)).any()  # a new zero head


def test_layer_norm_epsilon_shows_at_small_activations():
    """The residual stream's std is ~1e-3 here: epsilon 1e-5 or 1e-6 instead of
    HF's 1e-12 moves the logits by 66 % or 22 % of their scale (make_fixtures.py)."""
    model = keras_vit.convert_checkpoint(fixture("hf_small_variance"))
    assert model.config.layer_norm_epsilon == 1e-12
    assert_matches(model(PIXELS_16), REFERENCE["hf_small_variance"])
