"""A seeded run repeats bit for bit on the CPU (issue 8, item 7), and the epoch cap."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from keras_vit.training.reproducibility import capped_epochs, seed_everything

# One epoch of the digits recipe (augmentation on) with a tiny model, in a fresh process;
# prints the history and a hash of every weight.
RUN = textwrap.dedent("""\
    import hashlib, json, sys
    import keras
    from keras_vit.training import train
    from keras_vit.training.reproducibility import seed_everything
    seed_everything(0)
    out = sys.argv[1]
    train("digits", output_dir=out, epochs=1, tensorboard=False, verbose=0, seed=0,
          model_fields=dict(hidden_size=16, num_layers=1, num_heads=2, mlp_dim=32))
    import keras_vit
    model = keras.models.load_model(out + "/model.keras", compile=False)
    digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
    rows = open(out + "/history.csv").read().splitlines()
    header = rows[0].split(",")
    history = [{k: v for k, v in zip(header, row.split(",")) if k != "seconds"} for row in rows[1:]]
    print(json.dumps({"weights": digest, "history": history}))
    """)


# Two epochs of the digits training batches as train() makes them (seeded shuffle,
# random shifts), hashed, in a fresh process.
BATCHES = textwrap.dedent("""\
    import hashlib
    from keras_vit.data import load_dataset
    from keras_vit.training.reproducibility import seed_everything
    seed_everything(0)
    dataset, _ = load_dataset("digits", "train", image_size=16, batch_size=32, augment="auto", seed=0)
    digest = hashlib.sha256()
    for epoch in range(2):
        for images, labels in dataset:
            digest.update(images.numpy().tobytes() + labels.numpy().tobytes())
    print(digest.hexdigest())
    """)


def _python(code, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("KERAS_VIT_MAX_EPOCHS", None)
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True,
        env=env, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_seeded_augmented_batches_repeat_bit_for_bit():
    # Keras' random layers in a parallel tf.data map drew in thread order: the
    # batches of two runs of seed 0 differed from the first epoch on.
    assert _python(BATCHES) == _python(BATCHES)


def _run(tmp_path, name):
    return json.loads(_python(RUN, str(tmp_path / name)))


@pytest.mark.slow  # two training processes: ~40 s of CPU, minutes on a loaded machine
def test_two_seeded_runs_give_the_same_history_and_weights(tmp_path):
    first, second = _run(tmp_path, "a"), _run(tmp_path, "b")
    assert first["history"] and first["history"] == second["history"]
    assert first["weights"] == second["weights"]


def test_seed_everything_refuses_a_bad_seed():
    with pytest.raises(ValueError, match="`seed`.*seed=-1"):
        seed_everything(-1)
    with pytest.raises(ValueError, match="seed='0'"):
        seed_everything("0")


def test_epoch_cap_from_the_environment(monkeypatch):
    monkeypatch.delenv("KERAS_VIT_MAX_EPOCHS", raising=False)
    assert capped_epochs(60) == 60
    monkeypatch.setenv("KERAS_VIT_MAX_EPOCHS", "1")
    assert capped_epochs(60) == 1 and capped_epochs(1) == 1
    monkeypatch.setenv("KERAS_VIT_MAX_EPOCHS", "100")
    assert capped_epochs(60) == 60
    monkeypatch.setenv("KERAS_VIT_MAX_EPOCHS", "zero")
    with pytest.raises(ValueError, match="KERAS_VIT_MAX_EPOCHS, expected a positive integer"):
        capped_epochs(60)
