"""Mutation check: every bug this project has fixed must make its tests fail.

Each line of MUTATIONS below puts one known bug back, as a literal
pattern -> replacement edit of one file, into a temporary copy of the
repository, and runs the tests named for it there (`pytest -x -q`). The bug is
"caught" when they fail and "survived" when they pass. A pattern that no
longer matches exactly once is "STALE" (the code moved: update the line),
never counted as caught. First, the same tests run on an unmutated copy: a
failure there would make every "caught" meaningless, so it stops the check.

    python tools/mutate.py            # all of them
    python tools/mutate.py --list     # the table
    python tools/mutate.py label-smoothing-zero constant-learning-rate

Exit status 0 only when every mutation was caught. Not part of the default
test run (it runs the named tests once per mutation: minutes).

When you fix a bug, add a line for it: the file, the smallest edit that puts
it back, and the tests that now catch it.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JAX = {"KERAS_BACKEND": "jax"}

# (id, file, pattern, replacement, tests, environment). Patterns are literal
# text (several lines allowed); tests are pytest arguments (files, node ids, -k).
MUTATIONS = [
    ("tensorflow-log-level-only", "keras_vit/cli/common.py",
     "        sys.meta_path.insert(0, _QuietTensorFlowImport())",
     "        pass",
     ["tests/test_user_paths.py::test_tensorflow_start_up_lines_only_with_verbose"], {}),
    ("quiet-import-drops-everything", "keras_vit/cli/common.py",
     "if not _TF_LOG_LINE.match(line)]", "if False]",
     ["tests/test_user_paths.py::test_quiet_import_drops_only_tensorflow_log_lines"], {}),
    ("vtab-schedule-counts-micro-batches", "keras_vit/vtab.py",
     "total_steps=steps * accumulation,\n"
     "                           warmup_steps=min(warmup_steps, steps - 1) * accumulation)",
     "total_steps=steps,\n"
     "                           warmup_steps=min(warmup_steps, steps - 1))",
     ["tests/test_vtab.py::test_vtab_schedule_counts_updates_not_micro_batches"], {}),
    ("encoder-norm-epsilon", "keras_vit/models/vit.py",
     'epsilon=c.layer_norm_epsilon, dtype=policy, name=names.ENCODER_NORM',
     'epsilon=1e-5, dtype=policy, name=names.ENCODER_NORM',
     ["tests/test_fixture_parity.py::test_layer_norm_epsilon_shows_at_small_activations"], {}),
    ("finetune-drops-pretrained-weights", "keras_vit/checkpoints/convert.py",
     "    MODULES[src.format].port(porter, config, layout)\n"
     "    porter.finish(allowed_unset=new_layers)\n",
     "    pass  # a fresh ViT at the new size: the checkpoint's weights dropped\n",
     ["tests/test_training_wiring.py::"
      "test_finetune_at_a_negligible_rate_keeps_the_converted_and_resized_weights"], {}),
    ("hybrid-stride-on-1x1-conv", "keras_vit/models/resnet_stem.py",
     'y = _conv(filters, 1, 1, f"{name}_conv1", policy)(x)\n'
     '    y = keras.layers.ReLU(dtype=policy)(_norm(f"{name}_norm1", policy)(y))\n'
     '    y = _conv(filters, 3, strides, f"{name}_conv2", policy)(y)',
     'y = _conv(filters, 1, strides, f"{name}_conv1", policy)(x)\n'
     '    y = keras.layers.ReLU(dtype=policy)(_norm(f"{name}_norm1", policy)(y))\n'
     '    y = _conv(filters, 3, 1, f"{name}_conv2", policy)(y)',
     ["tests/test_fixture_parity.py::test_hybrid_with_a_stride_2_stage_matches_timm"], {}),
    ("feature-model-takes-pooled-output", "keras_vit/evaluation/accuracy.py",
     "for name in (parts.PRE_LOGITS, parts.POOLING):",
     "for name in (parts.POOLING, parts.PRE_LOGITS):",
     ["tests/test_evaluation_references.py::"
      "test_evaluate_fewshot_equals_sklearn_on_pre_logits_features"], {}),
    ("no-embed-class-gets-patch-0-embedding", "keras_vit/checkpoints/timm.py",
     "[np.zeros_like(p[:, :1]).repeat(prefix, 1), p], 1))",
     "[p[:, :1].repeat(prefix, 1), p], 1))",
     ["tests/test_fixture_parity.py::"
      "test_timm_no_embed_class_gives_the_class_token_no_position_embedding"], {}),
    ("label-smoothing-zero", "keras_vit/training/train.py",
     "from_logits=True, label_smoothing=label_smoothing",
     "from_logits=True, label_smoothing=0.0",
     ["tests/test_training_wiring.py::"
      "test_saved_model_compiled_with_the_recipes_label_smoothing"], {}),
    ("constant-learning-rate", "keras_vit/training/train.py",
     "optimizer = make_optimizer(recipe, run.schedule(), model=vit)",
     'optimizer = make_optimizer(recipe, recipe["learning_rate"], model=vit)',
     ["tests/test_training_wiring.py::test_history_learning_rate_follows_the_schedule"], {}),
    ("shared-position-embedding-added-once", "keras_vit/models/vit.py",
     "        if shared is not None:\n            x = shared(x)",
     "        if shared is not None and i == 0:\n            x = shared(x)",
     ["tests/test_position_reference.py", "-k", "every_layer_shared"], {}),
    ("fused-attention-drops-relative-bias", "keras_vit/layers/multi_head_self_attention.py",
     "bias=bias, scale=1.0, flash_attention=",
     "bias=None, scale=1.0, flash_attention=",
     ["tests/test_position_reference.py", "-k", "relative"], JAX),
    ("fewshot-constant-predictor", "keras_vit/evaluation/fewshot.py",
     "return np.argmax(self.decision_function(features), axis=1)",
     "return np.zeros(len(self.decision_function(features)), dtype=np.int64)",
     ["tests/test_evaluation_references.py::"
      "test_fewshot_at_chance_rejects_a_constant_predictor"], {}),
    ("remat-traces-the-training-flag", "keras_vit/layers/transformer_block.py",
     "return keras.remat(lambda x: layer_call(x, **flags))(inputs)",
     "return keras.remat(layer_call)(inputs, **flags)",
     ["tests/test_finetune_kit.py::test_remat_recomputes_whole_blocks_with_the_same_gradients"],
     JAX),
    ("remat-recomputes-every-sublayer", "keras_vit/layers/transformer_block.py",
     "        with keras.RematScope(mode=None):  # the block is rematerialised whole\n"
     "            self._build_sublayers()",
     "        self._build_sublayers()",
     ["tests/test_finetune_kit.py::test_remat_recomputes_whole_blocks_with_the_same_gradients"],
     {}),
    # Issue 23: a user's own files.
    ("folder-unreadable-images-unchecked", "keras_vit/data/image_folder.py",
     "    if bad:\n        more =", "    if False:\n        more =",
     ["tests/test_user_files.py::test_a_folder_with_unreadable_images_is_refused_naming_them"], {}),
    ("folder-one-class-accepted", "keras_vit/data/image_folder.py",
     "    if len(classes) < 2:", "    if len(classes) < 1:",
     ["tests/test_user_files.py::test_a_folder_of_one_class_is_refused_showing_its_sub_folders"], {}),
    ("rgba-alpha-dropped", "keras_vit/data/image_file.py",
     'if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:', "if False:",
     ["tests/test_user_files.py::test_an_rgba_drawing_on_a_transparent_canvas_is_read_as_drawn"], {}),
    ("image-16-bit-clipped", "keras_vit/data/image_file.py",
     'if image.mode not in ("I", "I;16", "I;16B", "I;16L", "F"):', "if True:",
     ["tests/test_user_files.py::test_image_reader_scales_16_bit_composites_alpha_and_applies_exif"], {}),
    ("image-exif-ignored", "keras_vit/data/image_file.py",
     "image = ImageOps.exif_transpose(image)", "pass",
     ["tests/test_user_files.py::test_image_reader_scales_16_bit_composites_alpha_and_applies_exif"], {}),
    ("ctrl-c-traceback", "keras_vit/training/interrupt.py",
     "    previous = signal.signal(signal.SIGINT, lambda number, frame: None)",
     "    previous = signal.getsignal(signal.SIGINT)",
     ["tests/test_interrupt.py::test_ctrl_c_stops_in_one_line_keeps_the_epochs_and_resumes"], {}),
    ("second-ctrl-c-waits", "keras_vit/training/interrupt.py",
     "        os._exit(INTERRUPTED_STATUS)", "        return",
     ["tests/test_interrupt.py::test_a_second_ctrl_c_during_the_first_compile_stops_at_once"], {}),
    ("named-variant-patch-swapped", "keras_vit/training/train.py",
     "    if keep_patch:\n        sizes =", "    if False:\n        sizes =",
     ["tests/test_user_files.py::test_a_named_variant_keeps_its_patch"], {}),
    ("evaluate-ignores-model-channels", "keras_vit/evaluation/datasets.py",
     "            num_channels=channels,  # read as the model takes them", "            # read",
     ["tests/test_user_files.py::test_evaluate_reads_a_folder_with_the_models_channels"], {}),
    ("folder-alpha-dropped", "keras_vit/data/image_folder.py",
     "    composite = (check_images(files) and", "    composite = (check_images(files) and False and",
     ["tests/test_user_files.py::test_a_folder_of_rgba_drawings_is_composited_as_read_image_does"], {}),
    ("errors-name-python-parameters", "keras_vit/cli/__init__.py",
     "        message = name_the_flags(str(error), args.command_parser)",
     "        message = str(error)",
     ["tests/test_user_files.py::test_errors_name_the_flag_typed"], {}),
    ("data-path-reported-as-name", "keras_vit/data/datasets.py",
     "    elif isinstance(name, (str, os.PathLike)) and _looks_like_a_path(os.fspath(name)):",
     "    elif False:",
     ["tests/test_user_files.py::test_a_missing_data_folder_from_python_is_no_such_folder"],
     {}),
    ("save-folder-unchecked", "keras_vit/utils.py",
     "    if not os.path.isdir(folder):\n", "    if False:\n",
     ["tests/test_user_files.py::test_a_missing_output_folder_is_named_not_the_temporary"], {}),
    ("save-error-names-no-file", "keras_vit/utils.py",
     "        if error.filename not in (None, tmp):\n", "        if True:\n",
     ["tests/test_user_files.py::test_a_full_disk_is_one_line_and_keeps_what_was_there"], {}),
    ("killed-save-temporaries-kept", "keras_vit/utils.py",
     "    _remove_orphans(folder, root, ext)\n", "",
     ["tests/test_user_files.py::"
      "test_a_save_killed_midway_leaves_a_temporary_the_next_save_removes"], {}),
    ("benchmark-only-beside-the-package", "keras_vit/cli/benchmark.py",
     "    for root in (CHECKOUT, pathlib.Path.cwd()):", "    for root in (CHECKOUT,):",
     ["tests/test_user_files.py::test_benchmark_after_a_non_editable_install"], {}),
    ("checkpoint-budget-unchecked", "keras_vit/checkpoints/convert.py",
     "    validate.check_budget(validate.config_params(native), src.tensors, path)\n", "",
     ["tests/test_fuzz.py::test_a_shape_implying_a_huge_model_is_refused_before_building"], {}),
    ("npz-member-headers-unchecked", "keras_vit/checkpoints/npz.py",
     "        check_npz(path)  # sizes and dtypes, before anything is decompressed\n", "",
     ["tests/test_fuzz.py::test_npz_members_forged_typed_or_not_finite_are_refused"], {}),
    ("nan-weights-accepted", "keras_vit/checkpoints/validate.py",
     "        if not np.isfinite(array).all():", "        if False:",
     ["tests/test_fuzz.py::test_npz_members_forged_typed_or_not_finite_are_refused"], {}),
    ("safetensors-header-unvalidated", "keras_vit/checkpoints/safetensors_io.py",
     "    check_safetensors_header(header, path, size - 8 - n)\n", "",
     ["tests/test_fuzz.py::test_safetensors_header_entries_are_validated_before_use"], {}),
    ("hf-config-types-unchecked", "keras_vit/checkpoints/hf.py",
     "    check_fields(config, HF_CONFIG_FIELDS, config_path)\n", "",
     ["tests/test_fuzz.py::test_hf_config_fields_are_type_checked_and_must_agree_with_the_tensors"], {}),
    ("hf-config-contradiction-accepted", "keras_vit/checkpoints/convert.py",
     '        validate.check_recorded_fields(meta[0], fields, os.path.join(folder, "config.json"), path)\n', "",
     ["tests/test_fuzz.py::test_hf_config_fields_are_type_checked_and_must_agree_with_the_tensors"], {}),
    ("keras-config-built-as-written", "keras_vit/evaluation/predict.py",
     "    check_keras_file(path)\n", "",
     ["tests/test_fuzz.py::test_a_keras_config_describing_a_huge_model_is_refused_before_building"], {}),
    ("port-transform-before-shape-check", "keras_vit/checkpoints/port.py",
     "        except (ValueError, IndexError) as error:  # a reshape/concat of the file's shapes",
     "        except ZeroDivisionError as error:",
     ["tests/test_fuzz.py::test_npz_members_forged_typed_or_not_finite_are_refused"], {}),
    ("qk-norm-not-applied", "keras_vit/layers/multi_head_self_attention.py",
     "            q, k = self.query_norm(q), self.key_norm(k)",
     "            q, k = q, self.key_norm(k)",
     ["tests/test_checkpoints_families.py::test_timm_qk_norm"], {}),
    ("clip-pre-norm-skipped", "keras_vit/models/vit.py",
     'epsilon=c.layer_norm_epsilon, dtype=policy, name=names.PRE_NORM)(x)',
     'epsilon=c.layer_norm_epsilon, dtype=policy, name=names.PRE_NORM)(x) * 0 + x',
     ["tests/test_checkpoints_families.py::test_timm_clip_hub_folder"], {}),
    ("quick-gelu-constant", "keras_vit/layers/mlp.py",
     "x = x * ops.sigmoid(1.702 * x)", "x = x * ops.sigmoid(1.0 * x)",
     ["tests/test_checkpoints_families.py::test_hf_clip_vision_folders"], {}),
    # issue 19: the exact GELU written with erf
    ("exact-gelu-is-keras-erfc-form", "keras_vit/layers/mlp.py",
     "ops.gelu(x, approximate=True) if self.gelu_approximate else exact_gelu(x)",
     "ops.gelu(x, approximate=self.gelu_approximate)",
     ["tests/test_performance.py::test_exact_gelu_on_tensorflow_has_no_erfc"], {}),
    ("exact-gelu-tanh", "keras_vit/layers/mlp.py",
     "    return ops.cast(0.5, x.dtype) * x * (one + ops.erf(x * ops.cast(SQRT_HALF, x.dtype)))",
     "    return ops.gelu(x, approximate=True)",
     ["tests/test_performance.py::test_exact_gelu_is_x_phi_x_in_value_and_gradient"], {}),
    ("exact-gelu-erf-of-x", "keras_vit/layers/mlp.py",
     "    return ops.cast(0.5, x.dtype) * x * (one + ops.erf(x * ops.cast(SQRT_HALF, x.dtype)))",
     "    return ops.cast(0.5, x.dtype) * x * (one + ops.erf(x * ops.cast(0.7, x.dtype)))",
     ["tests/test_performance.py::test_exact_gelu_is_x_phi_x_in_value_and_gradient"], {}),
    ("exact-gelu-form-tflite-cannot-fuse", "keras_vit/layers/mlp.py",
     "    return ops.cast(0.5, x.dtype) * x * (one + ops.erf(x * ops.cast(SQRT_HALF, x.dtype)))",
     "    return x * (0.5 + 0.5 * ops.erf(x * ops.cast(SQRT_HALF, x.dtype)))",
     ["tests/test_export.py::test_exported_model_matches_keras_in_its_runtime[tflite-m.tflite]"],
     {}),
    ("onnx-erfc-handler-not-registered", "keras_vit/export/exporter.py",
     "        tf2onnx_ops.register()", "        pass",
     ["tests/test_export.py::test_onnx_export_of_keras_own_exact_gelu"], {}),
    ("timm-clip-epsilon-1e-6", "keras_vit/checkpoints/timm.py",
     'meta["layer_norm_epsilon"] = 1e-5', 'meta["layer_norm_epsilon"] = 1e-6',
     ["tests/test_checkpoints_families.py::test_timm_clip_hub_folder"], {}),
    ("npz-gelu-form-fixed", "keras_vit/checkpoints/convert.py",
     "layout = dict(layout, unrecorded=_NPZ_UNRECORDED)", "layout = dict(layout)",
     ["tests/test_checkpoints_families.py::test_npz_records_no_gelu_form"], {}),
    ("timm-state-dict-gelu-fixed", "keras_vit/checkpoints/timm.py",
     'UNRECORDED = ("gelu_approximate", "quick_gelu", "layer_norm_epsilon")',
     'UNRECORDED = ("quick_gelu", "layer_norm_epsilon")',
     ["tests/test_checkpoints_families.py::test_timm_state_dict_of_a_gelu_tanh_model"], {}),
    ("tokens-keep-the-pooler", "keras_vit/checkpoints/convert.py",
     'dropped.", stacklevel=3)\n        fields.pop("representation_size")\n',
     'dropped.", stacklevel=3)\n',
     ["tests/test_checkpoints_families.py::test_hf_vitmodel_every_token_drops_the_pooler"], {}),
    ("normalisation-assumed-silently", "keras_vit/checkpoints/convert.py",
     'if "normalization_mean" in unrecorded and not', 'if False and not',
     ["tests/test_checkpoints_families.py::test_bare_timm_state_dict_says_which_normalisation"],
     {}),
    ("export-qkv-untransposed", "keras_vit/checkpoints/export.py",
     't[f"{s}attn.qkv.weight"] = w[f"{d}attention/qkv/kernel"].T',
     't[f"{s}attn.qkv.weight"] = w[f"{d}attention/qkv/kernel"].reshape(-1, w[f"{d}attention/qkv/kernel"].shape[0])',
     ["tests/test_export_checkpoint.py::test_round_trip"], {}),
    ("export-patch-conv-layout", "keras_vit/checkpoints/export.py",
     "reshape(p, p, c, -1).transpose(3, 2, 0, 1)", "reshape(p, p, c, -1).transpose(3, 2, 1, 0)",
     ["tests/test_export_checkpoint.py::test_round_trip"], {}),
    ("export-fc-norm-as-norm", "keras_vit/checkpoints/export.py",
     'norm = "fc_norm" if config.fc_norm else "norm"\n    t[', 'norm = "norm"\n    t[',
     ["tests/test_export_checkpoint.py::test_round_trip"], {}),
    ("export-unsupported-field-passes", "keras_vit/checkpoints/export.py",
     "elif name not in SUPPORTED[format] and value != getattr(default, name):",
     "elif False:",
     ["tests/test_export_checkpoint.py::test_refuses_what_the_target_cannot_build"], {}),
    ("export-overwrites-unasked", "keras_vit/checkpoints/export.py",
     "if present and not overwrite:", "if False:",
     ["tests/test_export_checkpoint.py::test_never_overwrites_unasked"], {}),
    ("hub-cache-links-refused", "keras_vit/checkpoints/port.py",
     'roots.append(os.path.join(os.path.dirname(parent), "blobs"))', "pass",
     ["tests/test_hub.py::test_hf_and_timm_repos_from_an_offline_cache"], {}),
    ("hub-any-architecture", "keras_vit/checkpoints/hub.py",
     "        check_architecture(read_json(config_path, \"hub config\"), source)\n", "",
     ["tests/test_hub.py::test_unsupported_architecture_refused_before_the_weights"], {}),
    ("class-names-not-recorded", "keras_vit/checkpoints/convert.py",
     'fields["class_names"] = labels.class_names(path, src.format, fields["num_classes"], entry)',
     'fields["class_names"] = None',
     ["tests/test_class_names.py::test_hf_id2label_round_trip"], {}),
    ("predict-ignores-class-names", "keras_vit/evaluation/predict.py",
     'class_names = getattr(getattr(model, "config", None), "class_names", None)',
     "class_names = None",
     ["tests/test_class_names.py::test_predict_prints_the_names"], {}),
    ("imagenet-tag-first-dataset", "keras_vit/checkpoints/labels.py",
     "if last and last[-1].replace", "if last and last[0].replace",
     ["tests/test_class_names.py::test_timm_imagenet_heads_get_imagenet_names"], {}),
    ("new-head-keeps-names", "keras_vit/models/config.py",
     'changes.setdefault("class_names", None)', "pass",
     ["tests/test_class_names.py::test_a_new_head_has_no_names"], {}),
    ("corrupt-patches-int-seed-shared", "keras_vit/pretraining/objectives.py",
     "    return tuple((seed * 0x9E3779B1 + k * 0x85EBCA77) % 2**31 for k in (1, 2, 3))",
     "    return seed, seed, seed",
     ["tests/test_pretraining.py::test_corruption_counts_and_kinds_on_a_fixed_seed"], {}),
    ("lora-merge-drops-alpha-over-rank", "keras_vit/training/finetune_kit.py",
     "values[compat.lora_base_kernel(layer).path] = layer.kernel  # W + (alpha / r) A B",
     "values[compat.lora_base_kernel(layer).path] = compat.lora_base_kernel(layer)"
     " + keras.ops.matmul(layer.lora_kernel_a, layer.lora_kernel_b)",
     ["tests/test_finetune_kit.py::test_lora_merges_w_plus_alpha_over_rank_a_b_by_value"], {}),
    ("ema-momentum-always-default", "keras_vit/training/finetune_kit.py",
     "ema_momentum=0.9999 if ema is True else float(ema)", "ema_momentum=0.9999",
     ["tests/test_finetune_kit.py::test_ema_momentum_is_the_one_asked_for_and_averages_by_it"],
     {}),
    ("ema-flag-ignores-its-value", "keras_vit/cli/train.py",
     'p.add_argument("--ema", type=float,', 'p.add_argument("--ema", type=lambda _: 0.9999,',
     ["tests/test_finetune_kit.py::test_finetune_ema_flag_passes_its_momentum"], {}),
    ("real-sets-padded-with-class-0", "keras_vit/data/real.py",
     "padding_values=(0.0, 0, -1),", "padding_values=(0.0, 0, 0),",
     ["tests/test_evaluation.py::test_evaluate_real_on_mock_imagenet2012_real"], {}),
    ("patch-distances-grid-transposed", "keras_vit/analysis/attention.py",
     "np.mgrid[:gh, :gw]", "np.mgrid[:gw, :gh]",
     ["tests/test_analysis.py::test_patch_distances_on_a_non_square_grid_by_hand"], {}),
    ("neighbours-include-the-patch-itself", "keras_vit/analysis/visualize.py",
     "s[np.isclose(d, 1.0)]", "s[d <= 1.0]",
     ["tests/test_analysis.py::test_similarity_by_distance_on_a_hand_made_non_square_map"], {}),
    ("top-k-ties-unstable", "keras_vit/evaluation/accuracy.py",
     'np.argsort(-logits, axis=1, kind="stable")', "np.argsort(-logits, axis=1)",
     ["tests/test_evaluation.py::test_top_k_accuracy_breaks_ties_by_the_lower_class"], {}),
    ("replaced-patch-may-be-itself", "keras_vit/pretraining/objectives.py",
     'shift = ops.cast(ops.minimum(shift, ops.maximum(span - 1.0, 0.0)), "int32") + 1',
     'shift = ops.cast(shift, "int32")',
     ["tests/test_pretraining.py::test_a_replaced_patch_takes_the_other_one_of_two"], {}),
    ("cpu-steps-per-execution-no-divisor", "keras_vit/training/runs.py",
     "return best if best >= most // 2 else min(most, steps)", "return min(most, steps)",
     ["tests/test_training.py::test_cpu_steps_per_execution_by_value"], {}),
    ("sample-images-height-width-swapped", "keras_vit/export/exporter.py",
     "size=(batch_size, *hw, shape[3])", "size=(batch_size, *hw[::-1], shape[3])",
     ["tests/test_export.py::test_sample_images_take_the_models_non_square_size"], {}),
    ("dinov2-registers-get-positions", "keras_vit/checkpoints/hf.py",
     "np.zeros_like(p[:, :1]).repeat(registers, 1),\n                                          p[:, 1:]]",
     "p[:, 1:2].repeat(registers, 1),\n                                          p[:, 1:]]",
     ["tests/test_checkpoints_families.py::test_hf_dinov2_folders"], {}),
    ("dinov2-registers-plain-bicubic", "keras_vit/checkpoints/hf.py",
     "resample_antialias=config.get(\"model_type\") == \"dinov2_with_registers\",",
     "resample_antialias=False,",
     ["tests/test_checkpoints_families.py::test_hf_dinov2_folders"], {}),
    ("dinov2-layer-scale-dropped", "keras_vit/checkpoints/hf.py",
     "layer_scale_init_value=float(config.get(\"layerscale_value\", 1.0)),",
     "",
     ["tests/test_checkpoints_families.py::test_hf_dinov2_folders"], {}),
    ("siglip-map-kv-swapped", "keras_vit/checkpoints/hf.py",
     "enumerate((\"query\", \"key\", \"value\"))",
     "enumerate((\"query\", \"value\", \"key\"))",
     ["tests/test_checkpoints_families.py::test_hf_siglip_vision_folder"], {}),
    ("siglip-exact-gelu", "keras_vit/checkpoints/hf.py",
     "act = config.get(\"hidden_act\", \"gelu_pytorch_tanh\")",
     "act = \"gelu\"",
     ["tests/test_checkpoints_families.py::test_hf_siglip_vision_folder"], {}),
    ("siglip-model-text-tower-kept", "keras_vit/checkpoints/hf.py",
     "        porter.drop(layout[\"other\"])  # a SiglipModel's",
     "        pass  # a SiglipModel's",
     ["tests/test_checkpoints_families.py::test_siglip_model_folder_loads_its_image_tower"], {}),
    ("keras-hub-blocks-by-name", "keras_vit/checkpoints/keras_hub.py",
     "                    key=_block_order)", "                    key=lambda n: -_block_order(n))",
     ["tests/test_keras_hub.py::test_backbone_preset_matches_keras_hub"], {}),
    ("keras-hub-heads-transposed", "keras_vit/checkpoints/keras_hub.py",
     "np.concatenate([x.reshape(d, d) for x in k], axis=1)",
     "np.concatenate([x.transpose(0, 2, 1).reshape(d, d) for x in k], axis=1)",
     ["tests/test_keras_hub.py::test_backbone_preset_matches_keras_hub"], {}),
    # issue 20: recipe
    ("finetune-plan-paper-steps-cap", "keras_vit/recipes.py",
     "        steps = min(high, round(num_examples / 5))",
     "        steps = round(num_examples / 5)",
     ["tests/test_recipes.py::test_finetune_plan_steps_and_batch"], {}),
    ("finetune-plan-small-batch", "keras_vit/recipes.py",
     "min(PAPER_FINETUNE_BATCH, num_examples / 64)", "min(PAPER_FINETUNE_BATCH, num_examples / 16)",
     ["tests/test_recipes.py::test_finetune_plan_steps_and_batch"], {}),
    ("default-recipe-small-folder", "keras_vit/recipes.py",
     'return "small_images" if small_folder else "from_scratch"', 'return "from_scratch"',
     ["tests/test_recipes.py::test_default_recipe_per_data_source"], {}),
    ("cli-recipe-set-ignored", "keras_vit/cli/train.py",
     '                  recipe_set=parse_fields(args.recipe_set, "--recipe-set", allowed))',
     '                  recipe_set={})',
     ["tests/test_recipes.py::test_cli_recipe_flags_reach_train_and_bad_ones_are_one_line"],
     {}),
    # issue 24: past one machine
    ("process-id-past-the-count", "keras_vit/training/distribution.py",
     "        if process >= count:\n", "        if False:\n",
     ["tests/test_distribution.py::test_a_wrong_process_group_is_one_line"], {}),
    ("global-batch-split-unchecked", "keras_vit/training/distribution.py",
     "    if batch_size % data_parallel:\n", "    if False:\n",
     ["tests/test_distribution.py::test_a_global_batch_the_devices_cannot_split_is_refused"],
     {}),
    ("every-process-writes", "keras_vit/training/distribution.py",
     "    return jax.process_index() == 0\n", "    return True\n",
     ["tests/test_distribution.py::test_two_processes_train_the_one_process_run",
      "-m", "slow"], {}),
    # issue 23 item 10: a Keras backend that is not installed; a find_spec probe
    ("backend-not-checked", "keras_vit/cli/__init__.py",
     "        check_backend_installed()\n", "",
     ["tests/test_user_paths.py", "-k", "backend_that_is_not_installed"], {}),
    ("tensorflow-probe-consumes-the-quiet-hook", "keras_vit/cli/common.py",
     "        self._finding = True  # the other finders answer the lookup below\n",
     "        sys.meta_path.remove(self)\n",
     ["tests/test_user_paths.py::test_tensorflow_start_up_lines_only_with_verbose"], {}),
    # issue 21: keras-hub ViTImageClassifier presets
    ("keras-hub-converter-offset-sign", "keras_vit/checkpoints/keras_hub.py",
     '    mean = -values["offset"] * std\n', '    mean = values["offset"] * std\n',
     ["tests/test_keras_hub.py::test_classifier_preset_matches_keras_hub_from_pixels"], {}),
    ("keras-hub-head-before-pre-logits", "keras_vit/checkpoints/keras_hub.py",
     '(["pre_logits"] if len(dense) == 2 else []) + ["head"]',
     '["head"] + (["pre_logits"] if len(dense) == 2 else [])',
     ["tests/test_keras_hub.py::test_classifier_preset_matches_keras_hub_from_pixels"], {}),
    ("keras-hub-gap-averages-the-class-token", "keras_vit/checkpoints/keras_hub.py",
     ' or (pooling == "gap" and class_token)', "",
     ["tests/test_keras_hub.py::test_classifier_fields_that_do_not_fit_are_refused"], {}),
    # issue 21: a whole CLIPModel folder
    ("clip-model-reads-the-top-level-config", "keras_vit/checkpoints/hf.py",
     'config = dict(config.get("vision_config") or {}, model_type="clip")',
     'config = dict(config, model_type="clip")',
     ["tests/test_checkpoints_families.py::test_hf_clip_model_folder_gives_image_features"], {}),
    ("clip-model-text-tower-kept", "keras_vit/checkpoints/hf.py",
     "        porter.drop(layout[\"other\"])  # a CLIPModel's text tower and logit scale\n",
     "        pass\n",
     ["tests/test_checkpoints_families.py::test_hf_clip_model_folder_gives_image_features"], {}),
    # issue 21: registry facts from their sources, hub revisions
    ("registry-deit-normalisation", "keras_vit/checkpoints/registry.py",
     '_timm("deit_base_patch16_224.fb_in1k", 224, 1000, "imagenet",',
     '_timm("deit_base_patch16_224.fb_in1k", 224, 1000, "0.5",',
     ["tests/test_hub.py::test_registry_timm_entries_say_what_timms_pretrained_cfgs_say"], {}),
    ("registry-dinov2-at-224", "keras_vit/checkpoints/registry.py",
     '_hf("facebook/dinov2-small", 518, 0, "imagenet",',
     '_hf("facebook/dinov2-small", 224, 0, "imagenet",',
     ["tests/test_hub.py::test_registry_pins_the_facts_a_wrong_edit_would_break"], {}),
    ("hf-clip-default-normalisation", "keras_vit/checkpoints/hf.py",
     '"clip_vision_model": OPENAI_CLIP,', '"clip_vision_model": IMAGENET,',
     ["tests/test_hub.py::test_registry_pins_the_facts_a_wrong_edit_would_break"], {}),
    ("hub-revision-without-slash", "keras_vit/checkpoints/hub.py",
     r"(?:@([\w./-]+))?$", r"(?:@([\w.-]+))?$",
     ["tests/test_hub.py::test_a_pull_request_revision_from_the_cache"], {}),
    # issue 19: perf
    ("padded-keys-unmasked", "keras_vit/layers/multi_head_self_attention.py",
     "        key_value_seq_lengths=lengths, implementation=implementation,",
     "        implementation=implementation,",
     ["tests/test_attention_paths.py::test_padded_and_masked_attention_equals_unpadded_forward_and_gradient"], {}),
    ("padded-queries-kept", "keras_vit/layers/multi_head_self_attention.py",
     "    return out[:, :tokens]",
     "    return out",
     ["tests/test_attention_paths.py::test_padded_and_masked_attention_equals_unpadded_forward_and_gradient"], {}),
    ("padded-bias-at-the-front", "keras_vit/layers/multi_head_self_attention.py",
     "bias = ops.pad(bias, ((0, 0), (0, 0), (0, extra), (0, extra)))",
     "bias = ops.pad(bias, ((0, 0), (0, 0), (extra, 0), (extra, 0)))",
     ["tests/test_attention_paths.py::test_padded_and_masked_attention_equals_unpadded_forward_and_gradient"], {}),
    ("cudnn-padding-not-rounded-up", "keras_vit/layers/multi_head_self_attention.py",
     "return -(-tokens // CUDNN_TOKEN_MULTIPLE) * CUDNN_TOKEN_MULTIPLE",
     "return tokens // CUDNN_TOKEN_MULTIPLE * CUDNN_TOKEN_MULTIPLE",
     ["tests/test_attention_paths.py"], {}),
    ("cudnn-on-float32", "keras_vit/layers/multi_head_self_attention.py",
     'not in ("float16", "bfloat16")',
     'not in ("float16", "bfloat16", "float32")',
     ["tests/test_attention_paths.py"], {}),
    ("padded-path-never-called", "keras_vit/layers/multi_head_self_attention.py",
     "            padded = self._padded_plan(training, tokens, q.dtype)",
     "            padded = None",
     ["tests/test_attention_paths.py"], {}),
    ("cudnn-refusal-crashes", "keras_vit/layers/multi_head_self_attention.py",
     "                except NotImplementedError as error:",
     "                except KeyError as error:",
     ["tests/test_attention_paths.py::test_a_shape_cudnn_refuses_falls_back_to_xla"], {}),
    ("qkv-indexed-on-tensorflow", "keras_vit/layers/multi_head_self_attention.py",
     "        q, k, v = ops.unstack(qkv, 3, axis=0)  # each (B, heads, T, hd)",
     "        q, k, v = qkv[0], qkv[1], qkv[2]",
     ["tests/test_performance.py::"
      "test_attention_gradient_on_tensorflow_makes_no_zero_filled_slices"], {}),
    ("zeromodels-missing-is-a-failed-row", "benchmarks/workers.py",
     'PEERS = ("keras_hub", "zeromodels", "timm",',
     'PEERS = ("keras_hub", "timm",',
     ["tests/test_benchmark.py::test_tiny_run_table_has_every_row_and_skips_missing_peers"], {}),
    # issue 20: executor
    ("xla-policy-blind-to-distribution", "keras_vit/training/runs.py",
     "if not has_accelerator() and (distribute or not xla_on_cpu):",
     "if not has_accelerator() and not xla_on_cpu:",
     ["tests/test_runs.py::test_xla_policy_takes_distribution_and_objective_by_value"], {}),
    ("pretrain-xla-on-a-cpu", "keras_vit/pretraining/pretrain.py",
     "steps_per_execution=steps_per_execution, xla_on_cpu=False)",
     "steps_per_execution=steps_per_execution)",
     ["tests/test_pretraining.py::test_pretrain_asks_the_run_for_xla_off_on_a_cpu"], {}),
    ("run-loss-of-class-0", "keras_vit/evaluation/accuracy.py",
     "-log_probs[np.arange(len(labels)), labels].mean()",
     "-log_probs[:, 0].mean()",
     ["tests/test_evaluation_references.py::"
      "test_evaluate_loss_and_a_runs_test_metrics_equal_sklearn"], {}),
    ("run-top5-always", "keras_vit/training/train.py",
     "top_k=(1, 5) if num_classes > 5 else (1,)", "top_k=(1, 5)",
     ["tests/test_evaluation_references.py::"
      "test_evaluate_loss_and_a_runs_test_metrics_equal_sklearn"], {}),
    ("vtab-source-drops-channel-conversion", "keras_vit/data/datasets.py",
     'if name == "digits" or name in TFDS_DATASETS or name in VTAB_DATASETS:',
     'if name == "digits" or name in TFDS_DATASETS:',
     ["tests/test_data.py::test_a_vtab_task_is_a_data_source_with_task_adaptations_labels"], {}),
    ("dsprites-labels-ungrouped", "keras_vit/data/vtab.py",
     "factor = _DSPRITES_ORIGINAL_CLASSES[key] / task.num_classes", "factor = 1.0",
     ["tests/test_data.py::test_a_vtab_task_is_a_data_source_with_task_adaptations_labels"], {}),
    ("tfds-message-without-the-fetch", "keras_vit/data/tfds_datasets.py",
     'fetches = f" (it fetches {fetch})" if fetch else ""', 'fetches = ""',
     ["tests/test_data.py::test_every_tfds_source_says_it_is_not_downloaded_in_one_way"], {}),
    ("evaluate-duplicates-replicas", "keras_vit/evaluation/accuracy.py",
     "self.predict = model.predict_on_batch if replicas == 1 else self._call",
     "self.predict = model.predict_on_batch",
     ["tests/test_training.py::test_distribute_over_two_virtual_cpus"], {}),
    ("vtab-train-split-unknown", "keras_vit/data/datasets.py",
     'split = "train800val200" if split == "train" else split', "pass",
     ["tests/test_evaluation.py::"
      "test_evaluate_dataset_scores_a_vtab_task_with_fewshot_from_its_training_set"], {}),
    ("input-paths-checked-after-keras-starts", "keras_vit/cli/__init__.py",
     "        check_input_paths(args)  # before Keras is imported (seconds)\n", "",
     ["tests/test_user_paths.py", "-k", "missing_input_path"], {}),
    ("checkpoint-names-taken-for-paths", "keras_vit/cli/common.py",
     "            elif names_too and not (", "            elif False and not (",
     ["tests/test_user_paths.py::"
      "test_registered_and_hub_names_are_not_taken_for_missing_paths"], {}),
    # issue 23 item 10: the rest of it
    ("visualize-never-auto-inverts", "keras_vit/cli/visualize.py",
     '"auto" if args.invert is None else args.invert', "bool(args.invert)",
     ["tests/test_user_files.py::"
      "test_a_trained_model_carries_its_polarity_and_visualize_inverts_as_predict"], {}),
    ("polarity-only-beside-the-model", "keras_vit/training/train.py",
     "    record_background(model, info.background)  # saved with it", "    pass  #",
     ["tests/test_user_files.py::"
      "test_a_trained_model_carries_its_polarity_and_visualize_inverts_as_predict"], {}),
    ("polarity-record-ignored", "keras_vit/evaluation/predict.py",
     "    if recorded is not None:\n        return recorded\n    path", "    path",
     ["tests/test_user_files.py::"
      "test_a_trained_model_carries_its_polarity_and_visualize_inverts_as_predict"], {}),
    ("folder-split-said-by-keras", "keras_vit/data/image_folder.py",
     "    keras.config.disable_interactive_logging()\n", "",
     ["tests/test_user_paths.py::test_train_on_a_folder_of_small_gray_images_with_no_flags"], {}),
    ("folder-split-said-per-read", "keras_vit/data/image_folder.py",
     "    if key in _SPLITS_SAID:\n        return\n", "",
     ["tests/test_user_paths.py::test_train_on_a_folder_of_small_gray_images_with_no_flags"], {}),
    ("model-name-suggests-no-command-names", "keras_vit/training/train.py",
     'raise unknown_variant(name, "model", ("digits", "small")) from error',
     'raise unknown_variant(name, "model") from error',
     ["tests/test_user_files.py::test_a_misspelt_model_name_suggests_the_near_ones"], {}),
    ("variant-suggests-nothing", "keras_vit/models/variants.py",
     "    near = [by_key[k] for k in difflib.get_close_matches(key, by_key, n=4, cutoff=0.6)]",
     "    near = []",
     ["tests/test_user_files.py::test_an_unknown_variant_names_the_nearest_variants"], {}),
    ("training-paths-checked-after-keras-starts", "keras_vit/cli/train.py",
     "    mark_data_and_weights(p)  # a missing", "    pass  #",
     ["tests/test_user_paths.py", "-k", "missing_input_path"], {}),
    ("pretrain-data-checked-after-keras-starts", "keras_vit/cli/pretrain.py",
     "    mark_data_and_weights(p)  # a missing", "    pass  #",
     ["tests/test_user_paths.py", "-k", "missing_input_path"], {}),
    ("data-names-taken-for-paths", "keras_vit/cli/common.py",
     '    return value in DATA_NAMES or value.startswith("vtab/")', "    return False",
     ["tests/test_user_paths.py::"
      "test_data_and_checkpoint_names_are_not_taken_for_missing_paths"], {}),
    ("checkpoint-tags-taken-for-paths", "keras_vit/cli/common.py",
     '    return ":" in value or getattr(args, "variant", None) is not None',
     '    return ":" in value',
     ["tests/test_user_paths.py::"
      "test_data_and_checkpoint_names_are_not_taken_for_missing_paths"], {}),
    ("pip-name-of-another-project", "keras_vit/export/exporter.py",
     "`pip install '.[export]'` (from the checkout; the PyPI",
     "`pip install keras-vit[export]` (from the checkout; the PyPI",
     ["tests/test_user_files.py::test_no_message_installs_the_other_pypi_keras_vit"], {}),
    ("readme-names-no-jax-extra", "README.md",
     '(`KERAS_BACKEND=jax` with `pip install ".[tf,jax]"`',
     '(`KERAS_BACKEND=jax` with `pip install jax`',
     ["tests/test_user_files.py::test_the_readme_names_the_install_of_every_backend_extra"], {}),
    ("help-doubled-percent", "keras_vit/cli/pretrain.py",
     "(paper section 4.6): 50 % of", "(paper section 4.6): 50 %% of",
     ["tests/test_user_paths.py::test_no_help_text_shows_a_doubled_percent_sign"], {}),
    ("image-bomb-traceback", "keras_vit/data/image_file.py",
     "    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,\n"
     "            Image.DecompressionBombError) as error:",
     "    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:",
     ["tests/test_user_files.py::test_hostile_images_are_one_line_or_read"], {}),
    ("json-read-unbounded", "keras_vit/checkpoints/port.py",
     "    if len(data) > max_bytes:", "    if False:",
     ["tests/test_fuzz.py::test_a_config_json_is_read_bounded_and_never_through_a_link_out"], {}),
    ("json-links-followed", "keras_vit/checkpoints/port.py",
     "    if not inside(real, link_roots(os.path.dirname(os.path.abspath(path)))) or not os.path.isfile(real):",
     "    if False:",
     ["tests/test_fuzz.py::test_a_config_json_is_read_bounded_and_never_through_a_link_out"], {}),
    ("readme-block-saves-in-the-root", "README.md",
     'model.save("runs/vit_int8.keras")\nmodel = keras.models.load_model("runs/vit_int8.keras")',
     'model.save("vit_int8.keras")\nmodel = keras.models.load_model("vit_int8.keras")',
     ["tests/test_readme.py", "-k", "line712"], {}),
    # issue 20: names
    ("compat-all-layers-includes-self", "keras_vit/compat.py",
     "layer._flatten_layers(include_self=False)", "layer._flatten_layers(include_self=True)",
     ["tests/test_compat.py::test_all_layers_recurses_into_nested_layers"], {}),
    ("compat-lora-base-kernel-is-merged", "keras_vit/compat.py",
     "return dense._kernel", "return dense.kernel",
     ["tests/test_compat.py::test_lora_base_kernel_is_w_without_the_update"], {}),
    ("compat-remat-mode-lost", "keras_vit/compat.py",
     'return getattr(layer, "_remat_mode", None)', "return None",
     ["tests/test_compat.py::test_remat_mode_reads_the_scope_a_layer_was_built_under"], {}),
    ("model-part-built-under-another-name", "keras_vit/models/vit.py",
     "name=names.PRE_LOGITS", 'name="representation"',
     ["tests/test_model_parts.py::test_declared_names_are_the_built_models_layers"], {}),
    ("finetune-small-data-too-few-passes", "keras_vit/recipes.py",
     "        steps = max(low, SMALL_DATA_EPOCHS * -(-num_examples // batch))",
     "        steps = low", ["tests/test_recipes.py::test_finetune_plan_steps_and_batch"], {}),
    ("finetune-small-images-crop-and-flip", "keras_vit/training/train.py",
     "finetune_plan(probe.num_examples, probe.image_size)", "finetune_plan(probe.num_examples)",
     ["tests/test_recipes.py::test_finetune_with_no_recipe_sizes_its_run_to_a_small_folder"],
     {}),
    # issues 20/24: pretrain on the recipe and distributed; the optimizer in the recipe
    ("pretrain-default-recipe-from-scratch", "keras_vit/recipes.py",
     '    if command == "pretrain":\n        return "mpp"\n', "",
     ["tests/test_recipes.py::test_default_recipe_per_data_source"], {}),
    ("pretrain-recipe-ignored", "keras_vit/pretraining/pretrain.py",
     'name = recipe or default_recipe(data, command="pretrain")',
     'name = default_recipe(data, command="pretrain")',
     ["tests/test_recipes.py::test_pretrain_runs_the_recipe_it_is_given"], {}),
    ("cli-pretrain-recipe-set-ignored", "keras_vit/cli/pretrain.py",
     '        recipe_set=parse_fields(args.recipe_set, "--recipe-set", PRETRAIN_FIELDS),',
     '        recipe_set={},',
     ["tests/test_recipes.py::test_cli_pretrain_takes_the_recipe_flags_as_train_does"], {}),
    ("pretrain-distribute-dropped", "keras_vit/pretraining/pretrain.py",
     'run = Run(defaults, given, data, "pretrain", output_dir, seed, distribute=distribute,',
     'run = Run(defaults, given, data, "pretrain", output_dir, seed, distribute=False,',
     ["tests/test_pretraining.py::test_pretrain_distributes_on_jax_over_two_virtual_cpus"],
     {}),
    ("optimizer-by-command-again", "keras_vit/training/recipes.py",
     '    if r["optimizer"] == "adamw":', '    if True:',
     ["tests/test_recipes.py::test_make_optimizer_builds_what_the_recipe_names",
      "tests/test_training.py::test_train_on_the_finetune_recipe_trains_with_sgd_and_says_so"],
     {}),
    ("old-run-folder-compared-without-implied", "keras_vit/training/runs.py",
     "    old = {**(implied or {}), **old}\n", "",
     ["tests/test_training.py::"
      "test_a_run_folder_from_before_the_optimizer_fields_resumes_or_is_refused"], {}),
    ("npz-bomb-member-read", "keras_vit/checkpoints/validate.py",
     "and member.file_size > MAX_NPZ_RATIO * max(member.compress_size, 1)):",
     "and member.file_size > MAX_NPZ_RATIO * max(member.compress_size, 1) and False):",
     ["tests/test_fuzz.py::"
      "test_an_npz_member_that_decompresses_like_a_bomb_is_refused_before_reading"], {}),
    ("background-compared-on-resume", "keras_vit/training/runs.py",
     " and k not in _MODEL_NOT_COMPARED]", "]",
     ["tests/test_training.py::"
      "test_a_run_folder_from_before_the_optimizer_fields_resumes_or_is_refused"], {}),
    ("recipe-set-none-dropped", "keras_vit/training/runs.py",
     "        given.update(recipe_set or {})",
     "        given.update({k: v for k, v in (recipe_set or {}).items() if v is not None})",
     ["tests/test_training.py::"
      "test_a_run_folder_from_before_the_optimizer_fields_resumes_or_is_refused"], {}),
    ("recipe-line-marks-nothing", "keras_vit/training/runs.py",
     '        mark = " (given)" if field in given else " (plan)" if field in planned else ""',
     '        mark = ""',
     ["tests/test_recipes.py::"
      "test_the_recipe_line_names_the_preset_every_value_and_where_it_came_from"], {}),
    ("sgd-momentum-ignored", "keras_vit/training/recipes.py",
     'return finetuning_optimizer(schedule, momentum=r["momentum"],',
     'return finetuning_optimizer(schedule, momentum=0.9,',
     ["tests/test_recipes.py::test_make_optimizer_builds_what_the_recipe_names"], {}),
]

IGNORE = shutil.ignore_patterns(".git", ".venv", "runs", "__pycache__", "*.pyc",
                                ".pytest_cache", "*.egg-info", "build", "dist")


def copy_tree(dest):
    shutil.copytree(ROOT, dest, ignore=IGNORE, symlinks=True)
    return dest


def run_tests(tree, tests, env, timeout):
    """pytest's exit status on `tests` inside `tree`, and its last lines."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    environment = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", **env)
    try:
        done = subprocess.run(command, cwd=tree, env=environment, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode, "\n".join(lines[-3:])


def stale(text, pattern):
    """None when `pattern` occurs exactly once in `text`, else why the line is stale."""
    count = text.count(pattern)
    if count == 0:
        return "STALE (pattern not found)"
    if count > 1:
        return f"STALE (pattern found {count} times)"
    return None


def apply(tree, path, pattern, replacement):
    """Edits the copy; returns None, or why the mutation is stale."""
    target = os.path.join(tree, path)
    if not os.path.exists(target):
        return f"STALE (no file {path})"
    with open(target) as f:
        text = f.read()
    reason = stale(text, pattern)
    if reason:
        return reason
    with open(target, "w") as f:
        f.write(text.replace(pattern, replacement))
    return None


def describe(env):
    return " ".join(f"{k}={v}" for k, v in env.items()) or "default backend"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="*", help="mutation ids to run (default: all)")
    parser.add_argument("--list", action="store_true", help="print the table and exit")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the run of the same tests on the unmutated copy")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per pytest run")
    args = parser.parse_args(argv)

    known = {m[0] for m in MUTATIONS}
    unknown = sorted(set(args.ids) - known)
    if unknown:
        parser.error(f"unknown mutation id(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    chosen = [m for m in MUTATIONS if not args.ids or m[0] in args.ids]
    if args.list:
        for ident, path, _, _, tests, env in chosen:
            print(f"{ident:40s} {path:48s} {' '.join(tests)} [{describe(env)}]")
        return 0

    with tempfile.TemporaryDirectory(prefix="keras-vit-mutate-") as scratch:
        if not args.no_baseline:
            clean = copy_tree(os.path.join(scratch, "clean"))
            groups = {}
            for _, _, _, _, tests, env in chosen:
                # -k expressions differ per mutation: run those lines on their own.
                key = tuple(sorted(env.items())), "-k" in tests
                groups.setdefault(key, []).append(tests)
            for (env, has_k), test_lists in groups.items():
                runs = test_lists if has_k else [sorted({t for ts in test_lists for t in ts})]
                for tests in runs:
                    start = time.time()
                    rc, tail = run_tests(clean, tests, dict(env), args.timeout)
                    print(f"baseline [{describe(dict(env))}] {' '.join(tests)}: "
                          f"{'passes' if rc == 0 else 'FAILS'} ({time.time() - start:.0f} s)",
                          flush=True)
                    if rc != 0:
                        print(tail)
                        print("The tests fail without any mutation; fix that first.")
                        return 1
        results = []
        for ident, path, pattern, replacement, tests, env in chosen:
            tree = copy_tree(os.path.join(scratch, ident))
            stale = apply(tree, path, pattern, replacement)
            start = time.time()
            if stale:
                verdict, tail = stale, ""
            else:
                rc, tail = run_tests(tree, tests, env, args.timeout)
                # 1: tests failed; 2: collection failed (an import error): CI fails too.
                verdict = "caught" if rc in (1, 2) else (
                    "survived" if rc == 0 else f"ERROR (pytest exit status {rc})")
            results.append((ident, verdict))
            print(f"{ident:40s} {verdict:28s} {time.time() - start:5.0f} s  [{describe(env)}]",
                  flush=True)
            if verdict != "caught" and tail:
                print("    " + tail.replace("\n", "\n    "))
            shutil.rmtree(tree, ignore_errors=True)
    caught = sum(v == "caught" for _, v in results)
    print(f"{caught} of {len(results)} mutations caught.")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
