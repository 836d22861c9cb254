"""Checkpoint families and the loading pipeline, against logits timm / HF computed.

The fixtures (tests/fixtures/families/, made by make_family_fixtures.py in the
reference environment) are tiny models at random init with every parameter
perturbed; each comes with the logits its own framework gives, at its native
size and, where the source can, at 48x48, 32x40 and 24x24 (down) through the source's own
resize (timm creating the model at that img_size from the state dict; HF's
interpolate_pos_encoding=True).
"""

import ast
import json
import os
import shutil

import keras
import numpy as np
import pytest

import keras_vit
from keras_vit.checkpoints import CheckpointError, registry
from layer_checks import check_config_round_trip, check_save_load, wrap

FAMILIES = os.path.join(os.path.dirname(__file__), "fixtures", "families")
REF = dict(np.load(os.path.join(FAMILIES, "logits.npz")))
NPZ = os.path.join(os.path.dirname(__file__), "fixtures", "original_tiny.npz")


def path(name):
    return os.path.join(FAMILIES, name)


def assert_matches(model, key):
    """max |logit difference| <= 1e-4 of the reference logits' scale."""
    ref = REF[key]
    hw = key.rsplit("_", 1)[-1]
    out = keras.ops.convert_to_numpy(model(REF[f"pixels_{hw}"].astype("float32")))
    assert out.shape == ref.shape, (out.shape, ref.shape)
    error = np.abs(out - ref).max() / np.abs(ref).max()
    assert error <= 1e-4, f"{key}: {error:.2e} of the logits' scale"


# Defect 2: each source's own resize, recorded in the model.

@pytest.mark.parametrize("hw", [(48, 48), (32, 40), (24, 24)])
def test_timm_resize_is_timm_creating_the_model_at_that_size(hw):
    model = keras_vit.convert_checkpoint(path("timm_resize.safetensors"), num_heads=2,
                                         image_size=hw)
    assert_matches(model, f"timm_resize_{hw[0]}x{hw[1]}")
    native = keras_vit.convert_checkpoint(path("timm_resize.safetensors"), num_heads=2)
    assert_matches(native, "timm_resize_32x32")
    assert (native.config.resample_method, native.config.resample_antialias) == ("bicubic", True)
    assert_matches(keras_vit.resize_position_embeddings(native, hw), f"timm_resize_{hw[0]}x{hw[1]}")


def test_timm_resize_plain_bicubic_is_off():
    """The plain kernel (HF's) misses timm's logits: the antialiased one is needed."""
    native = keras_vit.convert_checkpoint(path("timm_resize.safetensors"), num_heads=2)
    plain = keras_vit.resize_position_embeddings(native, 48, method="bicubic", antialias=False)
    with pytest.raises(AssertionError, match="scale"):
        assert_matches(plain, "timm_resize_48x48")


@pytest.mark.parametrize("hw", [(48, 48), (32, 40), (24, 24)])
def test_hf_resize_is_interpolate_pos_encoding(hw):
    model = keras_vit.convert_checkpoint(path("hf_resize"), image_size=hw)
    assert (model.config.resample_method, model.config.resample_antialias) == ("bicubic", False)
    assert_matches(model, f"hf_resize_{hw[0]}x{hw[1]}")
    assert_matches(keras_vit.convert_checkpoint(path("hf_resize")), "hf_resize_32x32")


def test_resample_method_survives_save_and_load(tmp_path):
    model = keras_vit.convert_checkpoint(path("timm_resize.safetensors"), num_heads=2)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.config.resample_antialias is True
    assert_matches(keras_vit.resize_position_embeddings(loaded, (32, 40)), "timm_resize_32x40")


# Defects 1 and 3: what config.json says is read.

def test_timm_hub_folder_reads_model_args():
    # 32x40, global_pool="avg" + fc_norm, gelu_tanh, no variant: all from config.json.
    model = keras_vit.convert_checkpoint(path("timm_hub_avg"))
    c = model.config
    assert c.image_hw == (32, 40) and c.pooling == "gap" and c.fc_norm and c.gelu_approximate
    assert c.num_heads == 2
    assert_matches(model, "timm_hub_avg_32x40")


@pytest.mark.parametrize("change, match", [
    (dict(model_args={"qk_norm": True}), "qk_norm=True disagrees.*q_norm.*missing"),
    (dict(model_args={"pre_norm": True}), "pre_norm=True disagrees.*norm_pre.*missing"),
    (dict(model_args={"global_pool": "avgmax"}), "global_pool='avgmax'"),
    (dict(model_args={"global_pool": "map"}), "attn_pool.latent"),  # said, but no tensors
    (dict(model_args={"act_layer": "swiglu"}), "act_layer='swiglu'"),
    (dict(model_args={"block_fn": "ParallelBlock"}), "block_fn"),
    (dict(model_args={"depth": 3}), "depth=3"),
])
def test_timm_hub_folder_refuses_by_name(tmp_path, change, match):
    folder = tmp_path / "hub"
    shutil.copytree(path("timm_hub_avg"), folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_args"].update(change["model_args"])
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=match):
        keras_vit.convert_checkpoint(str(folder))


def test_hf_non_square_folder_uses_config_image_size():
    model = keras_vit.convert_checkpoint(path("hf_nonsquare"))
    assert model.config.image_hw == (32, 40)
    assert_matches(model, "hf_nonsquare_32x40")


# Defect 4 and the new families.

def test_timm_deit_distilled_averages_both_heads():
    model = keras_vit.convert_checkpoint(path("timm_deit_distilled.safetensors"), num_heads=2)
    c = model.config
    assert c.distillation_token and c.distilled_head and c.num_prefix_tokens == 2
    assert_matches(model, "timm_deit_distilled_32x32")


@pytest.mark.parametrize("name", ["timm_reg", "timm_deit3"])
def test_timm_registers_layer_scale_no_qkv_bias(name):
    model = keras_vit.convert_checkpoint(path(f"{name}.safetensors"), num_heads=2)
    if name == "timm_reg":
        assert model.config.num_register_tokens == 2 and model.config.num_prefix_tokens == 3
    else:
        assert model.config.layer_scale_init_value is not None
    # timm qkv_bias=False: no bias variable at all (a zero one would train away from 0).
    no_bias = name == "timm_deit3"
    assert model.config.qkv_bias is not no_bias
    assert any(w.path.endswith("attention/qkv/bias") for w in model.weights) is not no_bias
    assert_matches(model, f"{name}_32x32")
    resized = keras_vit.convert_checkpoint(path(f"{name}.safetensors"), num_heads=2,
                                           image_size=(32, 40))
    assert_matches(resized, f"{name}_32x40")


def test_hf_without_qkv_bias_has_none():
    model = keras_vit.convert_checkpoint(path("hf_no_qkv_bias"))
    assert not model.config.qkv_bias
    assert not any(w.path.endswith("attention/qkv/bias") for w in model.weights)
    assert_matches(model, "hf_no_qkv_bias_32x32")


@pytest.mark.parametrize("name", ["hf_deit", "hf_deit_teacher"])
def test_hf_deit_folders(name):
    model = keras_vit.convert_checkpoint(path(name))
    assert model.config.distillation_token
    assert model.config.distilled_head == (name == "hf_deit_teacher")
    assert_matches(model, f"{name}_32x32")


# qk_norm, DeiT III and CLIP image towers.

HALF = dict(normalization_mean=(0.5,), normalization_std=(0.5,))  # the references' inputs


def test_timm_qk_norm():
    model = keras_vit.convert_checkpoint(path("timm_qk_norm.safetensors"), num_heads=2)
    assert model.config.qk_norm
    norm = model.get_layer("transformer_block_1").attention.key_norm
    assert tuple(norm.gamma.shape) == (12,)  # over each head's 24 / 2 channels
    assert_matches(model, "timm_qk_norm_32x32")


def test_timm_deit3_hub_folder():
    """deit3_*: layer scale and no_embed_class come from the builder, not model_args."""
    model = keras_vit.convert_checkpoint(path("timm_hub_deit3"), **HALF)
    assert model.config.layer_scale_init_value is not None
    assert not model.config.distillation_token
    assert_matches(model, "timm_hub_deit3_32x32")


def test_timm_clip_state_dict_needs_quick_gelu_said():
    """A bare state dict records no activation: QuickGELU is the user's to say."""
    with pytest.warns(UserWarning, match="does not record quick_gelu; using quick_gelu=True"):
        model = keras_vit.convert_checkpoint(path("timm_clip.safetensors"), num_heads=2,
                                             quick_gelu=True)
    c = model.config
    assert c.pre_norm and c.quick_gelu and c.layer_norm_epsilon == 1e-5
    assert [w.path for w in model.get_layer("patch_embedding").weights] == [
        "patch_embedding/kernel"]  # CLIP's patch embedding has no bias
    assert_matches(model, "timm_clip_32x32")
    exact = keras_vit.convert_checkpoint(path("timm_clip.safetensors"), num_heads=2)
    with pytest.raises(AssertionError, match="scale"):
        assert_matches(exact, "timm_clip_32x32")


def test_timm_clip_hub_folder():
    """vit_*_clip_quickgelu_*: QuickGELU and eps 1e-5 from the architecture's name."""
    model = keras_vit.convert_checkpoint(path("timm_hub_clip"), **HALF)
    c = model.config
    assert c.pre_norm and c.quick_gelu and c.layer_norm_epsilon == 1e-5
    assert_matches(model, "timm_hub_clip_32x32")
    cfg = json.load(open(path("timm_hub_clip/config.json")))["pretrained_cfg"]
    c = keras_vit.convert_checkpoint(path("timm_hub_clip")).config  # OpenAI's mean / std
    assert (c.normalization_mean, c.normalization_std) == (tuple(cfg["mean"]), tuple(cfg["std"]))


@pytest.mark.parametrize("name", ["hf_clip", "hf_clip_projection"])
def test_hf_clip_vision_folders(name):
    """pooler_output (post_layernorm on the class token) and image_embeds (its bias-free
    projection)."""
    model = keras_vit.convert_checkpoint(path(name))
    c = model.config
    assert c.pre_norm and c.quick_gelu and c.layer_norm_epsilon == 1e-5
    assert c.include_top == (name == "hf_clip_projection")
    if c.include_top:
        assert c.num_classes == 12 and not c.head_bias
        assert [w.path for w in model.get_layer("head").weights] == ["head/kernel"]
    assert_matches(model, f"{name}_32x32")


def test_hf_clip_model_folder_gives_image_features():
    """A whole CLIPModel folder (tests/fixtures/make_clip_model_fixture.py): the image
    tower with visual_projection as the head returns transformers' get_image_features
    from [0, 255] pixels (OpenAI's mean/std from preprocessor_config.json); the text
    tower and logit_scale are dropped, and a new head drops the projection too."""
    import keras

    model = keras_vit.convert_checkpoint(path("hf_clip_model"))
    c = model.config
    assert (c.pre_norm, c.quick_gelu, c.head_bias, c.num_classes) == (True, True, False, 12)
    assert c.normalization_std == pytest.approx((0.26862954, 0.26130258, 0.27577711))
    ref = np.load(path("hf_clip_model_reference.npz"))
    got = keras.ops.convert_to_numpy(model(ref["pixels"]))
    want = ref["image_embeds"]
    assert got.shape == want.shape == (2, 12)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    tuned = keras_vit.checkpoints.load(path("hf_clip_model"), num_classes=3, new_head=True)
    assert tuned.config.num_classes == 3


def test_clip_new_head_has_a_bias():
    tuned = keras_vit.checkpoints.load(path("hf_clip_projection"), num_classes=3, new_head=True)
    assert tuned.config.head_bias
    assert keras_vit.replace_head(keras_vit.convert_checkpoint(path("hf_clip_projection")),
                                  3).config.head_bias


def test_clip_options_round_trip(tmp_path):
    model = keras_vit.convert_checkpoint(path("timm_qk_norm.safetensors"), num_heads=2)
    check_save_load(model, REF["pixels_32x32"].astype("float32"), tmp_path)
    model = keras_vit.convert_checkpoint(path("hf_clip_projection"))
    check_save_load(model, REF["pixels_32x32"].astype("float32"), tmp_path)
    block = keras_vit.TransformerBlock(num_heads=2, mlp_dim=16, qk_norm=True, quick_gelu=True)
    check_config_round_trip(block)
    check_save_load(wrap(block, (5, 8)), np.ones((2, 5, 8), "float32"), tmp_path)
    with pytest.raises(keras_vit.errors.ArgumentError, match="quick_gelu"):
        keras_vit.ViTConfig(quick_gelu=True, gelu_approximate=True)


def test_quick_gelu_is_openais():
    x = np.linspace(-4, 4, 17, dtype="float32")[None, None]
    mlp = keras_vit.layers.mlp.MLP(17, quick_gelu=True)
    mlp.build((1, 1, 17))
    mlp.dense_1.kernel.assign(np.eye(17))
    mlp.dense_1.bias.assign(np.zeros(17))
    mlp.dense_2.kernel.assign(np.eye(17))
    mlp.dense_2.bias.assign(np.zeros(17))
    np.testing.assert_allclose(np.asarray(mlp(x)), x / (1 + np.exp(-1.702 * x)), atol=1e-6)


def test_timm_map_head():
    model = keras_vit.convert_checkpoint(path("timm_map.safetensors"), num_heads=2)
    assert model.config.pooling == "map" and not model.config.class_token
    assert_matches(model, "timm_map_32x32")


def test_big_vision_map_head():
    model = keras_vit.convert_checkpoint(path("bigvision_map.npz"))
    assert model.config.pooling == "map" and not model.config.class_token
    assert_matches(model, "bigvision_map_32x32")


def test_map_head_layer_round_trip(tmp_path):
    from keras_vit.layers.map_head import MAPHead

    head = MAPHead(num_heads=2, mlp_dim=16)
    check_config_round_trip(head)
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    check_save_load(wrap(head, (5, 8)), x, tmp_path)
    out = np.asarray(head(x))
    # The probe's attention is a convex mix of the value rows: with equal tokens it is that row.
    same = np.repeat(x[:, :1], 5, axis=1)
    single = np.asarray(head(x[:, :1]))
    np.testing.assert_allclose(np.asarray(head(same)), single, atol=1e-5)
    assert out.shape == (2, 8) and not np.allclose(out, single, atol=1e-3)


def test_hf_vitmodel_pooler_output_as_features():
    model = keras_vit.convert_checkpoint(path("hf_vitmodel"))
    assert not model.config.include_top and model.config.representation_size == 24
    assert_matches(model, "hf_vitmodel_32x32")


def test_new_families_round_trip(tmp_path):
    model = keras_vit.convert_checkpoint(path("timm_deit_distilled.safetensors"), num_heads=2)
    x = REF["pixels_32x32"].astype("float32")
    check_save_load(model, x, tmp_path)
    encoder = keras_vit.PatchEncoder((2, 2), distillation_token=True, num_register_tokens=3)
    check_config_round_trip(encoder)
    assert tuple(encoder(np.ones((2, 4, 8), "float32")).shape) == (2, 9, 8)
    block = keras_vit.TransformerBlock(num_heads=2, mlp_dim=16, layer_scale_init_value=0.1)
    check_config_round_trip(block)
    check_save_load(wrap(block, (5, 8)), np.ones((2, 5, 8), "float32"), tmp_path)


def test_replace_head_and_resize_a_distilled_model():
    model = keras_vit.convert_checkpoint(path("timm_deit_distilled.safetensors"), num_heads=2)
    new = keras_vit.resize_position_embeddings(keras_vit.replace_head(model, 3), (32, 40))
    w = {v.path: v.numpy() for v in new.weights}
    assert w["head_dist/kernel"].shape == (24, 3) and not w["head_dist/kernel"].any()
    assert w["patch_encoder/position_embedding/embeddings"].shape == (1, 2 + 20, 24)
    old = {v.path: v.numpy() for v in model.weights}["patch_encoder/position_embedding/embeddings"]
    np.testing.assert_array_equal(w["patch_encoder/position_embedding/embeddings"][:, :2], old[:, :2])
    x = REF["pixels_32x40"].astype("float32")
    np.testing.assert_array_equal(np.asarray(new(x)), np.zeros((2, 3)))


def test_layer_scale_scales_each_branch():
    """gamma = 0 leaves the block the identity; gamma scales the residual branches."""
    block = keras_vit.TransformerBlock(num_heads=2, mlp_dim=16, layer_scale_init_value=1e-3)
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    block(x)
    block.layer_scale_1.assign(np.zeros(8))
    block.layer_scale_2.assign(np.zeros(8))
    np.testing.assert_array_equal(np.asarray(block(x)), x)


def test_factory_and_finetune_new_head_and_size_read_once(monkeypatch):
    from keras_vit.checkpoints import convert

    reads = []
    real = convert.read
    monkeypatch.setattr(convert, "read", lambda *a, **k: reads.append(a) or real(*a, **k))
    model = convert.load(path("timm_resize.safetensors"), num_heads=2, num_classes=3,
                         image_size=(32, 40), new_head=True)
    assert len(reads) == 1
    w = {v.path: v.numpy() for v in model.weights}
    assert w["head/kernel"].shape == (24, 3) and not w["head/kernel"].any()
    from keras_vit.training import load_for_finetuning

    tuned = load_for_finetuning(path("hf_resize"), 4, image_size=48)
    assert tuned.config.num_classes == 4 and tuned.config.image_hw == (48, 48)
    assert len(reads) == 2


def test_orig_in21k_head_is_refused_and_replaced(monkeypatch):
    entry = registry.Checkpoint("B/16", "orig_in21k", "https://example.invalid/t.npz", 32, 5)
    monkeypatch.setitem(registry.CHECKPOINTS, "T/8:orig_in21k",
                        entry.__class__(**{**entry.__dict__, "variant": "T/8"}))
    from keras_vit.models import variants

    monkeypatch.setitem(variants.VARIANTS, "T", dict(num_layers=2, hidden_size=24, mlp_dim=48,
                                                     num_heads=2))
    monkeypatch.setattr(keras.utils, "get_file", lambda **kwargs: NPZ)
    with pytest.raises(CheckpointError, match="no valid classifier.*issues #10 and #32"):
        keras_vit.convert_checkpoint("T/8:orig_in21k")
    features = keras_vit.convert_checkpoint("T/8:orig_in21k", include_top=False)
    assert not features.config.include_top
    tuned = keras_vit.checkpoints.load("T/8:orig_in21k", num_classes=3, new_head=True)
    assert not {v.path: v.numpy() for v in tuned.weights}["head/kernel"].any()


# One pipeline, no cycle.

def _imports(root):
    """module -> set of keras_vit modules it imports (absolute imports, any depth)."""
    package = os.path.basename(root)
    modules = {}
    for folder, _, files in os.walk(root):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, f), os.path.dirname(root))
                name = rel[:-3].replace(os.sep, ".")
                modules[name[:-9] if name.endswith(".__init__") else name] = os.path.join(folder, f)
    graph = {}
    for name, file in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(open(file).read())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                if t.startswith(package) and t in modules:
                    deps.add(t)
                    break
        graph[name] = deps - {name}
    return graph


def test_import_graph_has_no_cycle_and_models_know_no_weights():
    graph = _imports(os.path.dirname(keras_vit.__file__))
    # A package's __init__ re-exports (keras_vit/__init__ imports everything);
    # the cycle test is over the modules that do work.
    work = {m: {d for d in deps if d != "keras_vit"} for m, deps in graph.items()
            if m != "keras_vit"}
    state = {}

    def visit(m, stack):
        state[m] = 1
        for d in work.get(m, ()):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack + [m, d]))
            if d not in state:
                visit(d, stack + [m])
        state[m] = 2

    for m in sorted(work):
        if m not in state:
            visit(m, [])
    for m, deps in graph.items():
        if m.startswith("keras_vit.models"):
            assert not any(d.startswith("keras_vit.checkpoints") for d in deps), (m, deps)


def test_no_function_local_imports_of_keras_vit_in_the_pipeline():
    root = os.path.dirname(keras_vit.__file__)
    for rel in ("surgery.py", "checkpoints", "models"):
        files = ([os.path.join(root, rel)] if rel.endswith(".py") else
                 [os.path.join(root, rel, f) for f in os.listdir(os.path.join(root, rel))
                  if f.endswith(".py")])
        for file in files:
            tree = ast.parse(open(file).read())
            for fn in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
                for node in ast.walk(fn):
                    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_vit"):
                        raise AssertionError(f"{file}: {fn.name} imports {node.module} locally")


# What a file does not record is a default the user may override, said in one line.

def test_npz_records_no_gelu_form():
    """timm reads the original files with the exact GELU: so may the user."""
    default = keras_vit.convert_checkpoint(NPZ)
    assert default.config.gelu_approximate
    with pytest.warns(UserWarning, match="does not record gelu_approximate"):
        exact = keras_vit.convert_checkpoint(NPZ, gelu_approximate=False)
    assert not exact.config.gelu_approximate
    assert_matches(exact, "original_exact_gelu_32x32")
    with pytest.raises(AssertionError, match="scale"):
        assert_matches(default, "original_exact_gelu_32x32")


def test_cli_convert_npz_with_exact_gelu(tmp_path, capfd):
    from keras_vit.cli import main

    out = tmp_path / "m.keras"
    assert main(["convert", NPZ, "--output", str(out), "--set", "gelu_approximate=false"]) == 0
    assert not keras.models.load_model(out).config.gelu_approximate


def test_timm_state_dict_of_a_gelu_tanh_model():
    """timm_hub_avg's model.safetensors alone: act_layer="gelu_tanh" is the user's to say."""
    kw = dict(num_heads=2, image_size=(32, 40), pooling="gap")
    with pytest.warns(UserWarning, match="does not record gelu_approximate"):
        model = keras_vit.convert_checkpoint(path("timm_hub_avg/model.safetensors"),
                                             gelu_approximate=True, **kw)
    assert_matches(model, "timm_hub_avg_32x40")


def test_bare_timm_state_dict_says_which_normalisation():
    with pytest.warns(UserWarning, match=r"records no normalisation; assumed x / 127.5 - 1.*"
                                         r"--set normalization_mean=0.485,0.456,0.406"):
        keras_vit.convert_checkpoint(path("timm_qk_norm.safetensors"), num_heads=2)
    import warnings

    with warnings.catch_warnings():  # said by the user, or by a hub folder: no note
        warnings.simplefilter("error")
        keras_vit.convert_checkpoint(path("timm_qk_norm.safetensors"), num_heads=2,
                                     normalization_mean=(0.5,), normalization_std=(0.5,))
        keras_vit.convert_checkpoint(path("timm_hub_deit3"))


def test_hf_vitmodel_every_token_drops_the_pooler():
    with pytest.warns(UserWarning, match="pooling=None gives every token.*dropped"):
        tokens = keras_vit.convert_checkpoint(path("hf_vitmodel"), pooling=None)
    assert tokens.config.representation_size is None and tokens.config.pooling is None
    pooled = keras_vit.convert_checkpoint(path("hf_vitmodel"))
    x = REF["pixels_32x32"].astype("float32")
    t = np.asarray(tokens(x))
    assert t.shape == (2, 17, 24)
    # The pooler is Dense + tanh on the class token: the tokens' first row, through it.
    dense = pooled.get_layer("pre_logits")
    np.testing.assert_allclose(np.asarray(dense(t[:, 0])), REF["hf_vitmodel_32x32"], atol=1e-4)


# DINOv2 and SigLIP HF folders (patch 14, layer scale, registers; no class token, MAP head).

@pytest.mark.parametrize("name", ["hf_dinov2", "hf_dinov2_reg"])
def test_hf_dinov2_folders(name):
    """pooler_output (the normed class token) at 42x42 and at 56x70, where HF resizes the
    position embeddings itself: Dinov2Model plain bicubic, Dinov2WithRegistersModel
    antialiased."""
    model = keras_vit.convert_checkpoint(path(name))
    c = model.config
    assert (c.patch_size, c.layer_scale_init_value, c.include_top) == (14, 0.1, False)
    assert c.num_register_tokens == (2 if name == "hf_dinov2_reg" else 0)
    assert (c.resample_method, c.resample_antialias) == ("bicubic", name == "hf_dinov2_reg")
    assert_matches(model, f"{name}_42x42")
    assert_matches(keras_vit.convert_checkpoint(path(name), image_size=(56, 70)),
                   f"{name}_56x70")
    other = keras_vit.resize_position_embeddings(model, (56, 70), method="bicubic",
                                                 antialias=not c.resample_antialias)
    with pytest.raises(AssertionError, match="scale"):  # the other source's rule misses
        assert_matches(other, f"{name}_56x70")


def test_hf_siglip_vision_folder(tmp_path):
    """pooler_output (the MAP head over every token, no class token) at 32x32, and at
    32x40 through interpolate_pos_encoding=True (plain bicubic)."""
    model = keras_vit.convert_checkpoint(path("hf_siglip"))
    c = model.config
    assert (c.class_token, c.pooling, c.include_top, c.gelu_approximate) == (
        False, "map", False, True)
    assert_matches(model, "hf_siglip_32x32")
    assert_matches(keras_vit.convert_checkpoint(path("hf_siglip"), image_size=(32, 40)),
                   "hf_siglip_32x40")
    check_save_load(model, REF["pixels_32x32"].astype("float32"), tmp_path)


def test_dinov2_registers_round_trip(tmp_path):
    model = keras_vit.convert_checkpoint(path("hf_dinov2_reg"))
    check_save_load(model, REF["pixels_42x42"].astype("float32"), tmp_path)


def test_siglip_model_folder_loads_its_image_tower(tmp_path):
    """A SiglipModel folder (what is published): vision_config, `vision_model.*`; the text
    tower and logit scale/bias are dropped."""
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "siglip"
    folder.mkdir()
    vision = json.load(open(path("hf_siglip/config.json")))
    json.dump({"model_type": "siglip", "vision_config": vision,
               "text_config": {"hidden_size": 8}}, open(folder / "config.json", "w"))
    shutil.copy(path("hf_siglip/preprocessor_config.json"), folder)
    tensors = {f"vision_model.{k}": v
               for k, v in load_file(path("hf_siglip/model.safetensors")).items()}
    tensors.update({"text_model.embeddings.token_embedding.weight": np.ones((4, 8), "float32"),
                    "logit_scale": np.ones((1,), "float32"),
                    "logit_bias": np.zeros((1,), "float32")})
    save_file(tensors, str(folder / "model.safetensors"))
    assert_matches(keras_vit.convert_checkpoint(str(folder)), "hf_siglip_32x32")


@pytest.mark.parametrize("model_type, change, match", [
    ("siglip2_vision_model", {}, "NaFlex"),
    ("dinov2", {"use_swiglu_ffn": True}, "use_swiglu_ffn"),
])
def test_unsupported_families_refused_by_name(tmp_path, model_type, change, match):
    folder = tmp_path / "f"
    shutil.copytree(path("hf_dinov2"), folder)
    config = dict(json.load(open(folder / "config.json")), model_type=model_type, **change)
    json.dump(config, open(folder / "config.json", "w"))
    with pytest.raises(CheckpointError, match=match):
        keras_vit.convert_checkpoint(str(folder))
