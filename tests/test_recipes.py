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
    assert recipes.DIGITS_RECIPE == dict(
        model="digits", image_size=16, epochs=60, batch_size=32, learning_rate=2e-3,
        weight_decay=0.05, warmup_epochs=3, decay="cosine", label_smoothing=0.1,
        dropout_rate=0.0, drop_path_rate=0.0, augment="auto")
    assert recipes.FINETUNE_RECIPE == dict(
        epochs=10, batch_size=512, learning_rate=0.01, warmup_epochs=1, decay="cosine",
        label_smoothing=0.0, augment="auto")


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


@pytest.mark.parametrize("n, epochs, batch", [
    (5_000, 7, 64),         # 79 steps an epoch: 7 epochs = 553 >= 500 updates
    (3_680, 5, 32),         # Oxford Pets: 115 an epoch, 5 epochs = 575
    (10_239, 7, 128),       # just under 20 batches of 512: 80 an epoch, 560
    (50_000, 103, 512),     # CIFAR-10: 10,000 steps (paper) = 102.4 epochs of 98
    (1_281_167, 4, 512),    # ImageNet: capped at 10,000 steps, 2,503 an epoch
])
def test_finetune_plan_steps_and_batch(n, epochs, batch):
    plan, why = finetune_plan(n)
    assert (plan["epochs"], plan["batch_size"], plan["learning_rate"]) == (epochs, batch, 0.01)
    per_epoch = -(-n // batch)
    assert f"{epochs * per_epoch} steps at batch {batch}" in why
    assert epochs * per_epoch >= 500


def test_cli_presets_match_the_library():
    from keras_vit.cli import train as cli_train

    assert cli_train.PRESETS == tuple(RECIPES)
    assert set(cli_train.TRAIN_FIELDS) == set(recipes.recipe_fields())


def test_cli_recipe_flags_reach_train_and_bad_ones_are_one_line(monkeypatch, capsys):
    from keras_vit.cli import main
    from keras_vit import training

    seen = {}
    monkeypatch.setattr(training, "train", lambda **kw: seen.update(kw) or {})
    assert main(["train", "--recipe", "from_scratch", "--epochs", "3",
                 "--recipe-set", "learning_rate=0.003", "--recipe-set", "decay=linear"]) == 0
    assert (seen["recipe"], seen["epochs"], seen["learning_rate"], seen["decay"]) == (
        "from_scratch", 3, 0.003, "linear")
    for argv, message in [
        (["--recipe", "cifar"], "`--recipe`, expected one of digits, small_images"),
        (["--recipe-set", "epoch=3"], "`--recipe-set`, expected one of model, image_size"),
        (["--recipe-set", "epochs"], "`--recipe-set`, expected FIELD=VALUE"),
    ]:
        assert main(["train", *argv]) != 0
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
