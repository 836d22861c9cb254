"""The Recipe value, its presets, the default per data source and the fine-tuning plan."""

import dataclasses

import pytest

from keras_vit.errors import ArgumentError
from keras_vit.training import recipes
from keras_vit.training.recipes import (
    RECIPES, Recipe, default_recipe, finetune_plan, get_recipe)


def test_presets_are_recipes_and_dicts_unchanged():
    assert set(RECIPES) == {"digits", "small_images", "from_scratch", "finetune", "vtab", "mpp"}
    assert all(isinstance(r, Recipe) for r in RECIPES.values())
    # What run folders record for the same values (resume compares them).
    # The optimizer each command implied before the recipe held it (issue 20): AdamW for
    # train and pretrain, SGD for finetune, momentum/beta_1 0.9, clip 1, no accumulation.
    assert recipes.DIGITS_RECIPE == dict(
        model="digits", image_size=16, epochs=60, batch_size=32, learning_rate=2e-3,
        weight_decay=0.05, warmup_epochs=3, decay="cosine", label_smoothing=0.1,
        dropout_rate=0.0, drop_path_rate=0.0, augment="auto", optimizer="adamw",
        momentum=0.9, global_clipnorm=1.0, gradient_accumulation_steps=None,
        jit_compile="auto")
    assert recipes.FINETUNE_RECIPE == dict(
        epochs=10, batch_size=512, learning_rate=0.01, warmup_epochs=1, decay="cosine",
        label_smoothing=0.0, augment="auto", weight_decay=0.0, optimizer="sgd",
        momentum=0.9, global_clipnorm=1.0, gradient_accumulation_steps=None,
        jit_compile="auto")
    assert [RECIPES[n].optimizer for n in RECIPES] == [
        "adamw", "adamw", "adamw", "sgd", "sgd", "adamw"]
    # What a run folder of each command recorded before is what the presets say now.
    for command, preset in (("train", "digits"), ("pretrain", "mpp"), ("finetune", "vtab")):
        implied = recipes.IMPLIED_BEFORE_RECIPE[command]
        assert RECIPES[preset].to_dict(implied) == implied, command


def test_with_and_get_recipe():
    r = get_recipe("digits").with_(epochs=20)
    assert r.epochs == 20 and r.batch_size == 32 and RECIPES["digits"].epochs == 60
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.epochs = 3
    assert get_recipe(r) is r
    with pytest.raises(ArgumentError, match=r"expected one of .*epochs.*Received: 'epoch'"):
        r.with_(epoch=3)
    with pytest.raises(ArgumentError, match=r"digits, small_images.*recipe='cifar'"):
        get_recipe("cifar")


def test_default_recipe_per_data_source():
    assert default_recipe("digits") == "digits"
    assert default_recipe("digits", small_folder=True) == "digits"
    assert default_recipe("/tmp/folder", small_folder=True) == "small_images"
    assert default_recipe("cifar10") == "from_scratch"
    # pretrain: the documented default (RECIPES' comment, README), not from_scratch's
    assert default_recipe("digits", command="pretrain") == "digits"
    assert default_recipe("cifar10", command="pretrain") == "mpp"
    assert default_recipe("/tmp/folder", small_folder=True, command="pretrain") == "mpp"
    assert default_recipe("digits", command="finetune") == "finetune"


@pytest.mark.parametrize("n, size, epochs, batch, rate, augment", [
    (4_000, (28, 28), 45, 32, 0.03, "translate"),  # 125 an epoch, 5,625 updates
    (5_000, None, 45, 64, 0.03, None),          # 79 an epoch (size unknown: no shifts)
    (3_680, (384, 384), 45, 32, 0.03, None),    # Oxford Pets: 115 an epoch
    (100, (32, 32), 72, 16, 0.03, "translate"),  # 7 an epoch: 500 updates at least
    (10_239, (64, 96), 45, 128, 0.03, None),    # just under 20 batches of 512
    (50_000, (32, 32), 103, 512, 0.01, None),   # CIFAR-10: 10,000 steps (paper), 98 an epoch
    (1_281_167, (224, 224), 4, 512, 0.01, None),  # ImageNet: capped at 10,000 steps
])
def test_finetune_plan_steps_and_batch(n, size, epochs, batch, rate, augment):
    plan, why = finetune_plan(n, size)
    assert (plan["epochs"], plan["batch_size"], plan["learning_rate"]) == (epochs, batch, rate)
    assert plan.get("augment") == augment
    per_epoch = -(-n // batch)
    assert f"{epochs * per_epoch} steps at batch {batch}, lr {rate:g}" in why
    assert epochs * per_epoch >= 500


def test_the_presets_are_defined_without_keras():
    # The CLI takes its presets and --recipe-set fields from keras_vit.recipes (no copy
    # to keep in step), so that module, with the CLI's parsers, must import no Keras or
    # TensorFlow; pretrain, which has no labels, takes no label smoothing.
    import subprocess
    import sys

    from keras_vit.cli import pretrain as cli_pretrain

    assert "label_smoothing" not in cli_pretrain.PRETRAIN_FIELDS
    assert "label_smoothing" in recipes.recipe_fields()
    code = ("import sys, keras_vit.recipes as r, keras_vit.cli as c; "
            "c.build_parser(); assert r.get_recipe('vtab').optimizer == 'sgd'; "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_cli_recipe_flags_reach_train_and_bad_ones_are_one_line(monkeypatch, capsys):
    from keras_vit.cli import main
    from keras_vit import training

    seen = {}
    monkeypatch.setattr(training, "train", lambda **kw: seen.update(kw) or {})
    assert main(["train", "--recipe", "from_scratch", "--epochs", "3",
                 "--recipe-set", "learning_rate=0.003", "--recipe-set", "decay=linear",
                 "--recipe-set", "optimizer=sgd", "--recipe-set", "global_clipnorm=none"]) == 0
    assert (seen["recipe"], seen["epochs"], seen["jit_compile"]) == ("from_scratch", 3, None)
    assert seen["recipe_set"] == dict(learning_rate=0.003, decay="linear", optimizer="sgd",
                                      global_clipnorm=None)
    for argv, message in [
        (["--recipe", "cifar"], "`--recipe`, expected one of digits, small_images"),
        (["--recipe-set", "epoch=3"], "`--recipe-set`, expected one of model, image_size"),
        (["--recipe-set", "epochs"], "`--recipe-set`, expected FIELD=VALUE"),
    ]:
        assert main(["train", *argv]) != 0
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_finetune_with_no_recipe_sizes_its_run_to_a_small_folder(tmp_path, monkeypatch, capsys):
    # 36 images of 28 px: small data (batch 16, lr 0.03) and small images (shifts, not
    # crops and flips), said in one line and recorded; one epoch of it here.
    import json
    import os
    import re

    from keras_vit.training import finetune
    from tests.test_user_paths import ROOT, _digit_folder

    monkeypatch.setenv("KERAS_VIT_MAX_EPOCHS", "1")
    data = _digit_folder(tmp_path / "digits28")
    finetune(os.path.join(ROOT, "weights", "digits", "model.keras"), data=str(data),
             output_dir=str(tmp_path / "run"), tensorboard=False, jit_compile=False)
    line = next(l for l in capsys.readouterr().err.splitlines() if "Fine-tuning recipe" in l)
    # (of the 36, the folder's own validation split holds some out)
    assert re.search(r"at batch 16, lr 0\.03, on 3\d images", line) and "shifts" in line, line
    config = json.loads((tmp_path / "run" / "metrics.json").read_text())["config"]
    assert (config["batch_size"], config["learning_rate"], config["augment"]) == (
        16, 0.03, "translate")


def test_cli_pretrain_takes_the_recipe_flags_as_train_does(monkeypatch, capsys):
    from keras_vit import pretraining
    from keras_vit.cli import main

    seen = {}
    monkeypatch.setattr(pretraining, "pretrain", lambda **kw: seen.update(kw) or {})
    assert main(["pretrain", "--recipe", "mpp", "--epochs", "3", "--recipe-set",
                 "epochs=5", "--recipe-set", "warmup_epochs=0.5", "--distribute",
                 "--model-parallel", "2", "--gradient-accumulation-steps", "4"]) == 0
    assert (seen["recipe"], seen["epochs"]) == ("mpp", 3)
    assert seen["recipe_set"] == dict(epochs=5, warmup_epochs=0.5)
    assert (seen["distribute"], seen["model_parallel"],
            seen["gradient_accumulation_steps"]) == (True, 2, 4)
    for argv, message in [
        (["--recipe", "cifar"], "`--recipe`, expected one of digits, small_images"),
        (["--recipe-set", "label_smoothing=0.1"],  # no labels to smooth
         "`--recipe-set`, expected one of model, image_size"),
    ]:
        assert main(["pretrain", *argv]) != 0
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_pretrain_runs_the_recipe_it_is_given(tmp_path):
    import json

    from keras_vit.pretraining import pretrain

    mine = get_recipe("mpp").with_(model="digits", image_size=8, epochs=1, batch_size=1024,
                                   learning_rate=3e-4, warmup_epochs=0, decay="linear",
                                   augment="none", weight_decay=0.01)
    pretrain("digits", recipe=mine, output_dir=str(tmp_path / "run"), tensorboard=False,
             verbose=0, model_fields=dict(num_layers=1, hidden_size=16, num_heads=2,
                                          mlp_dim=32), weight_decay=0.02)
    config = json.loads((tmp_path / "run" / "metrics.json").read_text())["config"]
    assert (config["learning_rate"], config["decay"], config["batch_size"]) == (
        3e-4, "linear", 1024)
    assert config["weight_decay"] == 0.02  # a keyword argument over the recipe
    assert config["image_size"] == [8, 8] and "label_smoothing" not in config


def test_make_optimizer_builds_what_the_recipe_names():
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                              keras.layers.LayerNormalization()])
    sgd = recipes.make_optimizer(get_recipe("finetune").with_(momentum=0.8,
                                                              global_clipnorm=None), 0.02)
    assert type(sgd).__name__ == "SGD" and isinstance(sgd, keras.optimizers.SGD)
    assert (sgd.momentum, sgd.global_clipnorm, sgd.weight_decay) == (0.8, None, None)
    adamw = recipes.make_optimizer(
        dict(optimizer="adamw", momentum=0.85, weight_decay=0.3, global_clipnorm=2.0,
             gradient_accumulation_steps=3), 1e-3, model=model)  # a dict: as Run.recipe
    assert isinstance(adamw, keras.optimizers.AdamW)
    assert (adamw.beta_1, adamw.beta_2, adamw.weight_decay, adamw.global_clipnorm,
            adamw.gradient_accumulation_steps) == (0.85, 0.999, 0.3, 2.0, 3)
    # SGD with weight decay decays kernels only, as AdamW does.
    decayed = recipes.make_optimizer(Recipe(optimizer="sgd", weight_decay=0.1), 0.1,
                                     model=model)
    assert decayed.weight_decay == 0.1
    decayed.build(model.trainable_variables)
    assert [v.name for v in model.trainable_variables if decayed._use_weight_decay(v)] == [
        "kernel"]
    with pytest.raises(ArgumentError, match="`optimizer`, expected one of adamw, sgd. "
                       "Received: optimizer='adam'"):
        recipes.make_optimizer(Recipe(optimizer="adam"), 0.1)


@pytest.mark.parametrize("field, value, message", [
    ("optimizer", "lamb", "`optimizer`, expected one of adamw, sgd"),
    ("momentum", 1.0, "`momentum`, expected a number in [0, 1). Received: momentum=1.0"),
    ("global_clipnorm", 0, "`global_clipnorm`, expected a positive number or None"),
    ("gradient_accumulation_steps", 0, "gradient_accumulation_steps"),
])
def test_a_bad_optimizer_field_is_refused_by_name_before_any_work(field, value, message,
                                                                  tmp_path):
    from keras_vit.training import train

    with pytest.raises(ArgumentError, match=message.replace("[", r"\[").replace(
            "(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        train("digits", recipe_set={field: value}, output_dir=str(tmp_path / "run"),
              verbose=0)
    assert not (tmp_path / "run").exists()


def test_recipe_set_names_an_unknown_field():
    from keras_vit.training import finetune, train

    with pytest.raises(ArgumentError, match="`recipe_set`, expected one of .*Received: "
                       "'optimiser'"):
        train("digits", recipe_set={"optimiser": "sgd"})
    with pytest.raises(ArgumentError, match="Received: 'dropout_rate'"):  # not fine-tuning's
        finetune("missing.keras", recipe_set={"dropout_rate": 0.1})


def test_the_recipe_line_names_the_preset_every_value_and_where_it_came_from():
    from keras_vit.training.runs import recipe_line

    recipe = dict(epochs=3, batch_size=16, optimizer="sgd", momentum=0.9)
    line = recipe_line("finetune", recipe, given={"epochs": 3}, planned=["batch_size"])
    assert line == ("Recipe (preset 'finetune'): epochs=3 (given), batch_size=16 (plan), "
                    "optimizer='sgd', momentum=0.9.")
    assert recipe_line(None, dict(epochs=1)) == "Recipe (your own): epochs=1."
