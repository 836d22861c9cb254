"""`keras-vit evaluate` and `keras-vit predict`, in-process through cli.main."""

import json

import numpy as np
import pytest
from PIL import Image

import keras_vit
from keras_vit import evaluation
from keras_vit.cli import main


@pytest.fixture(scope="module")
def digit_model_path(tmp_path_factory):
    """A tiny grayscale 10-class ViT with a random head, saved as .keras."""
    model = keras_vit.ViT(
        image_size=16, patch_size=4, num_channels=1, hidden_size=32, num_layers=2,
        num_heads=2, mlp_dim=64, num_classes=10,
    )
    head = model.get_layer("head")
    rng = np.random.default_rng(1)
    head.set_weights([rng.normal(size=w.shape).astype("float32") for w in head.get_weights()])
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, ext in enumerate(("png", "jpg")):
        path = tmp_path / f"digit{i}.{ext}"
        Image.fromarray(rng.integers(0, 256, size=(28, 20, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def one_error_line(capsys, command):
    """The error a failing command printed: exactly one line, no traceback."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"keras-vit {command}: error: ")
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def test_predict_prints_class_and_probability_per_image(digit_model_path, images, capsys):
    assert main(["predict", *map(str, images), "--model", str(digit_model_path), "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    expected = evaluation.predict_images(digit_model_path, images, top=3)
    assert len(lines) == 2
    for line, result in zip(lines, expected):
        shown = ", ".join(
            f"{p['name']} ({p['probability']:.4f})" for p in result["predictions"]
        )
        assert line == f"{result['path']}: {shown}"

    assert main(["predict", str(images[0]), "--model", str(digit_model_path), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    (best,) = result["predictions"]
    assert best["class"] == expected[0]["predictions"][0]["class"]
    # One image alone vs in a batch of two: float32 rounding differs (XLA tiles by batch).
    assert best["probability"] == pytest.approx(
        expected[0]["predictions"][0]["probability"], rel=1e-5)


def test_predict_uses_class_names_saved_beside_the_model(digit_model_path, images, capsys, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "model.keras").write_bytes(digit_model_path.read_bytes())
    names = [f"digit-{i}" for i in range(10)]
    (folder / "metrics.json").write_text(json.dumps({"class_names": names}))
    assert main(["predict", str(images[0]), "--model", str(folder / "model.keras")]) == 0
    top = evaluation.predict_images(digit_model_path, images[:1], top=1)[0]["predictions"][0]
    assert capsys.readouterr().out.strip() == (
        f"{images[0]}: digit-{top['class']} ({top['probability']:.4f})"
    )


def test_predict_without_model_uses_the_shipped_digits_model(images, capsys):
    code = main(["predict", str(images[0])])
    if evaluation.DIGITS_MODEL.is_file():
        assert code == 0
        line = capsys.readouterr().out.strip()
        assert line.startswith(f"{images[0]}: ") and line.split(": ")[1][0] in "0123456789"
    else:
        assert code == 1
        assert "digits model" in one_error_line(capsys, "predict")


@pytest.mark.parametrize("kind", ["text", "empty", "truncated", "directory", "missing"])
def test_predict_bad_image_is_one_line(digit_model_path, tmp_path, capsys, kind):
    path = tmp_path / "notes.png"
    if kind == "text":
        path.write_text("this is not a picture")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        Image.fromarray(np.full((64, 64), 7, np.uint8)).save(tmp_path / "whole.png")
        path.write_bytes((tmp_path / "whole.png").read_bytes()[:60])
    elif kind == "directory":
        path.mkdir()
    code = main(["predict", str(path), "--model", str(digit_model_path)])
    assert code == 1
    line = one_error_line(capsys, "predict")
    assert str(path) in line
    assert ("image file not found" if kind == "missing" else "not an image") in line


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("kind", ["garbage", "text", "truncated", "missing", "directory"])
def test_bad_model_file_is_one_line(digit_model_path, images, tmp_path, capsys, command, kind):
    if kind == "garbage":
        path = tmp_path / "model.keras"
        path.write_bytes(np.random.default_rng(0).bytes(1000))
    elif kind == "text":
        path = tmp_path / "model.txt"
        path.write_text("a model, honestly")
    elif kind == "truncated":
        path = tmp_path / "model.keras"
        data = digit_model_path.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])
    elif kind == "missing":
        path = tmp_path / "absent.keras"
    else:
        path = tmp_path / "folder.keras"
        path.mkdir()
    argv = (
        ["predict", str(images[0]), "--model", str(path)]
        if command == "predict"
        else ["evaluate", "--model", str(path), "--data", "digits"]
    )
    assert main(argv) == 1
    line = one_error_line(capsys, command)
    assert str(path) in line
    assert ("model file not found" if kind == "missing" else "not a Keras model file") in line


def test_bad_shots_is_one_line(digit_model_path, capsys):
    assert main(["evaluate", "--model", str(digit_model_path), "--shots", "5,x"]) == 1
    assert "--shots" in one_error_line(capsys, "evaluate")


def test_evaluate_digits_prints_and_writes_json(digit_model_path, tmp_path, capsys):
    from keras_vit.data import load_dataset

    output = tmp_path / "eval.json"
    argv = ["evaluate", "--model", str(digit_model_path), "--data", "digits",
            "--output", str(output)]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(output.read_text()) == printed
    assert printed["model"] == str(digit_model_path) and printed["data"] == "digits"
    assert printed["num_examples"] == 360  # the held-out digits
    assert set(printed["fewshot"]) == {"1", "5", "10", "25"}

    # The same figures from the model and the data, computed here.
    model = evaluation.load_model(digit_model_path)
    test, _ = load_dataset("digits", "test", image_size=16, shuffle=False)
    train, _ = load_dataset("digits", "train", image_size=16, shuffle=False)
    x, y = map(np.concatenate, zip(*test.as_numpy_iterator()))
    logits = model.predict(x, verbose=0)
    assert printed["top1"] == pytest.approx(np.mean(logits.argmax(1) == y))
    top5 = np.argsort(-logits, 1)[:, :5]
    assert printed["top5"] == pytest.approx(np.mean((top5 == y[:, None]).any(1)))
    f_train, l_train = evaluation.extract_features(model, train)
    f_test, l_test = evaluation.extract_features(model, test)
    expected = evaluation.fewshot_accuracy(f_train, l_train, f_test, l_test, 10)
    for shots, accuracy in expected.items():
        assert printed["fewshot"][str(shots)] == pytest.approx(accuracy, abs=1e-6)
    # Frozen features of an untrained 2-layer ViT still carry the digit well
    # above chance (0.1): measured 0.417 with 25 shots a class.
    assert printed["fewshot"]["25"] > 0.25


def test_evaluate_unknown_data_set_is_one_line(digit_model_path, capsys):
    assert main(["evaluate", "--model", str(digit_model_path), "--data", "mnistt"]) == 1
    line = one_error_line(capsys, "evaluate")
    assert "mnistt" in line and "digits" in line


def test_evaluate_rgb_model_reads_gray_digits_as_rgb(tmp_path, capsys):
    # The gray digits are repeated to three channels for an RGB model (as
    # finetune reads them); the printed top-1 is that of the tiled images.
    rgb = keras_vit.ViT(image_size=8, patch_size=4, num_channels=3, hidden_size=32,
                        num_layers=1, num_heads=2, mlp_dim=32, num_classes=10)
    # A head that tells the channels apart, so gray-as-red-only would differ.
    rng = np.random.default_rng(3)
    for layer in (rgb.get_layer("head"), rgb.get_layer("patch_embedding")):
        layer.set_weights([rng.normal(size=w.shape).astype("float32")
                           for w in layer.get_weights()])
    rgb.save(tmp_path / "rgb.keras")
    assert main(["evaluate", "--model", str(tmp_path / "rgb.keras"), "--shots", "none"]) == 0
    printed = json.loads(capsys.readouterr().out)
    from keras_vit.data import load_dataset

    test, _ = load_dataset("digits", "test", image_size=8, shuffle=False)
    x, y = map(np.concatenate, zip(*test.as_numpy_iterator()))
    logits = rgb.predict(np.repeat(x, 3, axis=-1), verbose=0)
    assert printed["top1"] == pytest.approx(np.mean(logits.argmax(1) == y))


def test_evaluate_channel_mismatch_is_one_line(tmp_path, capsys):
    two = keras_vit.ViT(image_size=8, patch_size=4, num_channels=2, hidden_size=32,
                        num_layers=1, num_heads=2, mlp_dim=32, num_classes=10)
    two.save(tmp_path / "two.keras")
    assert main(["evaluate", "--model", str(tmp_path / "two.keras"), "--shots", "none"]) == 1
    line = one_error_line(capsys, "evaluate")
    assert "1 channels cannot be converted to 2" in line


@pytest.mark.skipif(
    not evaluation.DIGITS_MODEL.is_file(), reason="weights/digits/model.keras not trained yet"
)
def test_shipped_digits_model_reads_held_out_digits_from_png(tmp_path, capsys):
    from keras_vit.data import load_digits_arrays

    images, labels = load_digits_arrays("test")
    paths = []
    for i in range(30):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.round(images[i, :, :, 0]).astype(np.uint8), mode="L").save(path)
        paths.append(str(path))
    assert main(["predict", *paths]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    predicted = [int(line.split(": ")[1].split(" ")[0]) for line in lines]
    # The model is >= 98 % accurate on these; PNG rounding and PIL's resize may cost one.
    assert np.sum(np.array(predicted) == labels[:30]) >= 28


def test_evaluate_tfds_cifar10_on_mock_data(tmp_path, capsys):
    tfds = pytest.importorskip("tensorflow_datasets")
    from keras_vit.data import load_dataset

    model = keras_vit.ViT(image_size=32, patch_size=8, num_channels=3, hidden_size=32,
                          num_layers=1, num_heads=2, mlp_dim=32, num_classes=10)
    head = model.get_layer("head")
    rng = np.random.default_rng(2)
    head.set_weights([rng.normal(size=w.shape).astype("float32") for w in head.get_weights()])
    model.save(tmp_path / "c10.keras")
    with tfds.testing.mock_data(num_examples=40):
        argv = ["evaluate", "--model", str(tmp_path / "c10.keras"), "--data", "cifar10",
                "--shots", "none"]
        assert main(argv) == 0
        printed = json.loads(capsys.readouterr().out)
        test, _ = load_dataset("cifar10", "test", image_size=32, shuffle=False)
        x, y = map(np.concatenate, zip(*test.as_numpy_iterator()))
    logits = model.predict(x, verbose=0)
    assert printed["num_examples"] == 40 and "fewshot" not in printed
    assert printed["top1"] == pytest.approx(np.mean(logits.argmax(1) == y))
    assert printed["top5"] == pytest.approx(np.mean((np.argsort(-logits, 1)[:, :5] == y[:, None]).any(1)))


def test_evaluate_few_shot_flag_takes_a_head_of_any_size(tmp_path, capsys):
    model = keras_vit.ViT(image_size=16, patch_size=4, num_channels=1, hidden_size=32,
                          num_layers=1, num_heads=2, mlp_dim=32, num_classes=1000)
    model.save(tmp_path / "big_head.keras")
    argv = ["evaluate", "--model", str(tmp_path / "big_head.keras"), "--few-shot",
            "--shots", "2", "--preprocessing", "big_vision"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert "top1" not in printed and printed["fewshot_seeds"] == [0, 1, 2]
    assert printed["fewshot_preprocessing"] == "big_vision"
    assert len(printed["fewshot_per_seed"]["2"]) == 3


def test_evaluate_real_command_on_mock_data(tmp_path, capsys):
    tfds = pytest.importorskip("tensorflow_datasets")
    model = keras_vit.ViT(image_size=8, patch_size=4, num_channels=3, hidden_size=16,
                          num_layers=1, num_heads=2, mlp_dim=16, num_classes=1000)
    model.save(tmp_path / "in1k.keras")
    with tfds.testing.mock_data(num_examples=7):
        argv = ["evaluate", "--model", str(tmp_path / "in1k.keras"), "--data",
                "imagenet2012_real"]
        assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["data"] == "imagenet2012_real" and printed["num_examples"] == 7
    assert {"top1", "real_top1", "real_num_counted", "real_num_empty"} <= set(printed)


def test_evaluate_real_missing_is_one_line(tmp_path, capsys):
    model = keras_vit.ViT(image_size=8, patch_size=4, num_channels=3, hidden_size=16,
                          num_layers=1, num_heads=2, mlp_dim=16, num_classes=1000)
    model.save(tmp_path / "in1k.keras")
    argv = ["evaluate", "--model", str(tmp_path / "in1k.keras"), "--data",
            "imagenet2012_real", "--data-dir", str(tmp_path / "none")]
    assert main(argv) == 1
    assert "ILSVRC2012_img_val.tar" in one_error_line(capsys, "evaluate")
