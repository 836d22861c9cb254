"""keras_vit.data: every loader (tfds mock data, an image folder, digits), augmentation."""

import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

from keras_vit.data import DATASETS, TFDS_DATASETS, load_dataset, load_digits_arrays  # noqa: E402
from keras_vit.data.augmentation import parse_augment  # noqa: E402


def _first(dataset):
    images, labels = next(iter(dataset))
    return images.numpy(), labels.numpy()


def test_digits_split_matches_sklearn_and_is_fixed():
    from sklearn.datasets import load_digits

    x_train, y_train = load_digits_arrays("train")
    x_test, y_test = load_digits_arrays("test")
    assert (len(y_train), len(y_test)) == (1437, 360)
    # Stratified: every class holds 20 % of its images out (within one image).
    counts = np.bincount(load_digits().target, minlength=10)
    assert np.all(np.abs(np.bincount(y_test, minlength=10) - 0.2 * counts) <= 1)
    # Pixels 0..16 scaled to 0..255, and the split is the same on every call.
    digits = load_digits()
    flat = {tuple(row) for row in digits.images.reshape(-1, 64).astype(int)}
    as_sklearn = np.rint(x_test.reshape(-1, 64) * 16 / 255).astype(int)
    np.testing.assert_allclose(as_sklearn * 255 / 16, x_test.reshape(-1, 64), rtol=1e-6)
    assert all(tuple(row) in flat for row in as_sklearn)
    assert x_train.max() == pytest.approx(255.0) and x_train.min() == 0.0
    np.testing.assert_array_equal(load_digits_arrays("test")[1], y_test)
    # No image of the test split is also in the train split.
    train_set = {r.tobytes() for r in x_train.reshape(len(x_train), -1)}
    overlap = sum(r.tobytes() in train_set for r in x_test.reshape(len(x_test), -1))
    assert overlap <= 2  # sklearn's digits hold a couple of exact duplicates


def test_digits_dataset_values_and_resize():
    dataset, info = load_dataset("digits", "test", batch_size=400)
    images, labels = _first(dataset)
    x_test, y_test = load_digits_arrays("test")
    np.testing.assert_array_equal(images, x_test)  # unshuffled test split, as is
    np.testing.assert_array_equal(labels, y_test)
    assert (info.num_classes, info.num_channels, info.image_size, info.num_examples) == (
        10, 1, (8, 8), 360)
    dataset, info = load_dataset("digits", "test", image_size=16, batch_size=8)
    images, _ = _first(dataset)
    expected = tf.image.resize(x_test[:8], (16, 16), method="bilinear").numpy()
    np.testing.assert_allclose(images, expected, atol=1e-4)
    assert info.image_size == (16, 16)


def test_digits_train_is_shuffled_and_augmented():
    plain, _ = load_dataset("digits", "train", batch_size=1437, shuffle=False)
    shuffled, _ = load_dataset("digits", "train", batch_size=1437, augment="translate")
    x_plain, y_plain = _first(plain)
    x_aug, y_aug = _first(shuffled)
    assert sorted(y_plain.tolist()) == sorted(y_aug.tolist())
    assert not np.array_equal(y_plain, y_aug)
    assert x_aug.min() >= 0 and x_aug.max() <= 255
    # Translation keeps the ink (up to what falls off the edge): totals stay close.
    assert abs(x_aug.sum() / x_plain.sum() - 1) < 0.15


def test_mixup_and_cutmix_give_mixed_one_hot_labels():
    for name in ("mixup", "cutmix"):
        dataset, info = load_dataset("digits", "train", batch_size=64, augment=name)
        images, labels = _first(dataset)
        assert info.one_hot_labels and labels.shape == (64, 10)
        np.testing.assert_allclose(labels.sum(-1), 1.0, atol=1e-5)
        assert (labels.max(-1) < 1).any()  # some labels are mixtures


@pytest.mark.parametrize("name", sorted(TFDS_DATASETS))
def test_tfds_loaders_on_mock_data(name):
    spec = TFDS_DATASETS[name]
    with tfds.testing.mock_data(num_examples=6):
        dataset, info = load_dataset(name, "train", image_size=24, batch_size=4, augment="auto")
        images, labels = _first(dataset)
        test, test_info = load_dataset(name, "test", image_size=(20, 28), batch_size=6)
        test_images, _ = _first(test)
    assert images.shape == (4, 24, 24, 3) and images.dtype == np.float32
    assert test_images.shape == (6, 20, 28, 3)
    assert 0 <= images.min() and images.max() <= 255
    assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() < spec.num_classes
    assert (info.num_classes, info.num_channels, info.num_examples) == (spec.num_classes, 3, 6)


def test_cifar_keeps_its_native_size_on_mock_data():
    with tfds.testing.mock_data(num_examples=3):
        dataset, info = load_dataset("cifar10", "test", batch_size=3)
        images, _ = _first(dataset)
    assert images.shape == (3, 32, 32, 3) and info.image_size == (32, 32)


def test_missing_tfds_data_says_what_to_fetch(tmp_path):
    with pytest.raises(FileNotFoundError, match="not downloaded.*cifar-10-binary.tar.gz"):
        load_dataset("cifar10", data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="ILSVRC2012_img_train.tar.*manual_dir"):
        load_dataset("imagenet2012", "validation", data_dir=str(tmp_path))


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="expected one of digits, cifar10.*Received: name='mnist'"):
        load_dataset("mnist")
    for name in DATASETS:
        assert name in str(pytest.raises(ValueError, load_dataset, "mnist").value)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="`split`.*Received: split='valid'"):
        load_dataset("digits", "valid")
    with pytest.raises(ValueError, match="`batch_size`.*Received: batch_size=0"):
        load_dataset("digits", batch_size=0)
    with pytest.raises(ValueError, match="`image_size`.*Received: image_size=-3"):
        load_dataset("digits", image_size=-3)
    with pytest.raises(ValueError, match="`augment`.*Received: augment='blur'"):
        parse_augment("translate+blur")
    assert parse_augment("auto", default=("translate",)) == ("translate",)
    assert parse_augment("mixup,cutmix") == ("mixup", "cutmix")
    assert parse_augment(None) == ()


def _make_folder(root, classes=("cat", "dog", "owl"), per_class=10, size=(12, 10)):
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = {}
    for label, name in enumerate(classes):
        os.makedirs(root / name)
        for i in range(per_class):
            array = np.full(size + (3,), 40 * label + i, dtype=np.uint8)
            array[0, 0] = rng.integers(0, 255, 3)
            Image.fromarray(array).save(root / name / f"{i}.png")
            pixels[(label, i)] = array
    return pixels


def test_image_folder(tmp_path):
    _make_folder(tmp_path)
    train, info = load_dataset(str(tmp_path), "train", image_size=(12, 10), batch_size=64)
    test, test_info = load_dataset(str(tmp_path), "test", image_size=(12, 10), batch_size=64)
    x_train, y_train = _first(train)
    x_test, y_test = _first(test)
    assert info.class_names == ("cat", "dog", "owl") and info.num_classes == 3
    assert len(y_train) + len(y_test) == 30 and len(y_test) == 3  # a 10 % hold-out
    # Each image's fill value tells its class: label = value // 40.
    for images, labels in ((x_train, y_train), (x_test, y_test)):
        np.testing.assert_array_equal(images[:, 5, 5, 0] // 40, labels)
    held = {v.tobytes() for v in x_test}
    assert not any(v.tobytes() in held for v in x_train)


def test_image_folder_with_split_subfolders(tmp_path):
    _make_folder(tmp_path / "train", per_class=4)
    _make_folder(tmp_path / "test", per_class=2)
    test, info = load_dataset(str(tmp_path), "test", image_size=8, batch_size=64)
    images, labels = _first(test)
    assert images.shape == (6, 8, 8, 3) and sorted(labels.tolist()) == [0, 0, 1, 1, 2, 2]


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_dataset(str(tmp_path), "train")


def test_a_vtab_task_is_a_data_source_with_task_adaptations_labels():
    # dsprites orientation: 40 source classes grouped into 16 (label // 2.5), images
    # stored as {0, 1} scaled to [0, 255], gray tiled to RGB, then read as asked (gray).
    from keras_vit.data import VTAB_TASKS, vtab_splits

    split = vtab_splits("dsprites_label_orientation")["train800val200"]
    with tfds.testing.mock_data(num_examples=10):
        dataset, info = load_dataset("vtab/dsprites_label_orientation", "train800val200",
                                     image_size=(12, 20), batch_size=4, num_channels=1,
                                     shuffle=False)
        batches = list(dataset.as_numpy_iterator())
        raw = list(tfds.load("dsprites", split=split, shuffle_files=False,
                             download=False).as_numpy_iterator())
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    assert images.shape == (10, 12, 20, 1)
    scaled = np.stack([e["image"] for e in raw]).astype("float32") * 255.0  # (10, 64, 64, 1)
    expected = tf.image.resize(scaled, (12, 20), method="bilinear").numpy()
    np.testing.assert_allclose(images, expected, rtol=1e-3, atol=1e-2 * 255)  # luma of gray
    assert (info.num_classes, info.num_channels) == (16, 1)
    assert VTAB_TASKS["dsprites_label_orientation"].num_classes == 16
    source = np.array([e["label_orientation"] for e in raw])
    assert len(set(source.tolist())) > 1
    np.testing.assert_array_equal(labels, np.floor(source / 2.5).astype(int))


def test_every_tfds_source_says_it_is_not_downloaded_in_one_way(tmp_path):
    empty = str(tmp_path / "empty")
    cases = [
        (("cifar10", "train"), r"'cifar10' is not downloaded: no prepared copy of cifar10 in "
         ".*tfds.load\\('cifar10'\\).*cifar-10-binary"),
        (("vtab/svhn", "test"), r"'vtab/svhn' is not downloaded: no prepared copy of "
         "svhn_cropped in .*tfds.load\\('svhn_cropped'\\)"),
        (("vtab/resisc45", "test"), r"'vtab/resisc45' is not downloaded: .*NWPU-RESISC45.rar"),
        (("imagenet2012_real", "test"), r"'imagenet2012_real' is not downloaded: no prepared "
         "copy of imagenet2012_real in .*ILSVRC2012_img_val.tar.*manual_dir"),
    ]
    for (name, split), message in cases:
        with pytest.raises(FileNotFoundError, match=message) as error:
            load_dataset(name, split, image_size=8, data_dir=empty)
        assert empty in str(error.value)
