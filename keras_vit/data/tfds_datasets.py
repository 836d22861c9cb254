"""tensorflow-datasets loaders: the data sets of the paper's transfer tables."""

import dataclasses
import os
from typing import Optional, Tuple

from keras_vit.errors import ArgumentError, DataNotFound


@dataclasses.dataclass(frozen=True)
class TfdsSpec:
    tfds_name: str
    num_classes: int
    native_size: Optional[Tuple[int, int]]  # None: images vary in size
    splits: Tuple[str, ...]
    fetch: str  # what to download, for the "not found" message


TFDS_DATASETS = {
    "cifar10": TfdsSpec(
        "cifar10", 10, (32, 32), ("train", "test"),
        "cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/",
    ),
    "cifar100": TfdsSpec(
        "cifar100", 100, (32, 32), ("train", "test"),
        "cifar-100-binary.tar.gz from https://www.cs.toronto.edu/~kriz/",
    ),
    "oxford_iiit_pet": TfdsSpec(
        "oxford_iiit_pet", 37, None, ("train", "test"),
        "images.tar.gz and annotations.tar.gz from "
        "https://www.robots.ox.ac.uk/~vgg/data/pets/",
    ),
    "oxford_flowers102": TfdsSpec(
        "oxford_flowers102", 102, None, ("train", "validation", "test"),
        "102flowers.tgz, imagelabels.mat and setid.mat from "
        "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
    ),
    "imagenet2012": TfdsSpec(
        "imagenet2012", 1000, None, ("train", "validation"),
        "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from "
        "https://image-net.org/ (a manual download, login required)",
    ),
}


def default_data_dir(data_dir=None):
    """Where tfds looks: `data_dir`, else $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser(
        "~/tensorflow_datasets"
    )


def load_tfds(name, split, data_dir=None, manual_dir=None, shuffle_files=False, seed=None):
    """Unbatched (image uint8 (H, W, 3), label int64) examples of a tfds data set.

    Nothing is downloaded (these machines are offline): the data must already
    be prepared under `data_dir`, or for imagenet2012 the two tar files must
    lie in `manual_dir`. Otherwise a `DataNotFound` (`read_tfds`) says what to
    fetch and where to put it.
    """
    spec = TFDS_DATASETS[name]
    base_split = split.split("[")[0]
    if base_split == "test" and "test" not in spec.splits:
        split = "validation" + split[len("test"):]  # imagenet's held-out split
        base_split = "validation"
    if base_split not in spec.splits:
        raise ArgumentError(
            f"Received an invalid value for argument `split`, expected one of "
            f"{', '.join(repr(s) for s in spec.splits)} for {name} (a tfds "
            f"slice like 'train[:90%]' also works). Received: split={split!r}"
        )
    return read_tfds(name, spec.tfds_name, split, spec.fetch, manual=name == "imagenet2012",
                     data_dir=data_dir, manual_dir=manual_dir, shuffle_files=shuffle_files,
                     seed=seed)


def read_tfds(name, tfds_name, split, fetch="", manual=False, data_dir=None, manual_dir=None,
              shuffle_files=False, seed=None, as_supervised=True):
    """`tfds.load` of a prepared data set: keras_vit's one tfds reader, and its one
    "not downloaded" message, for the tfds data sets, the VTAB tasks and ReaL.

    Args:
        name: the data set as the user names it (in the message).
        tfds_name: tfds' name ("eurosat/rgb").
        split: a tfds split expression.
        fetch: what to download, for the message ("" names nothing).
        manual: the files are a manual download: tfds prepares them from
            `manual_dir` (which needs no network).
        data_dir, manual_dir, shuffle_files, seed: as `load_dataset` takes them.
        as_supervised: (image, label) pairs; False gives tfds' feature dicts.

    Raises:
        DataNotFound: the data set is not prepared under `data_dir` (what to fetch
            and where to put it).
    """
    import tensorflow_datasets as tfds

    where = default_data_dir(data_dir)
    kwargs = dict(
        split=split,
        data_dir=data_dir,
        as_supervised=as_supervised,
        shuffle_files=shuffle_files,
        read_config=tfds.ReadConfig(shuffle_seed=seed),
        download=False,
    )
    if manual_dir is not None:
        # Preparing from files already on disk needs no network.
        kwargs["download"] = True
        kwargs["download_and_prepare_kwargs"] = {
            "download_config": tfds.download.DownloadConfig(manual_dir=manual_dir)
        }
    try:
        return tfds.load(tfds_name, **kwargs)
    except (AssertionError, tfds.core.registered.DatasetNotFoundError, OSError) as error:
        folder = tfds_name.split("/")[0]
        if manual:
            how = (
                f"put {fetch} in a folder and pass it as manual_dir "
                f"(--manual-dir); tfds then prepares it under {where}"
            )
        else:
            fetches = f" (it fetches {fetch})" if fetch else ""
            how = (
                f"on a machine with internet run `python -c \"import "
                f"tensorflow_datasets as tfds; tfds.load('{tfds_name}')\"`{fetches} "
                f"and copy ~/tensorflow_datasets/{folder} to {os.path.join(where, folder)}, "
                f"or pass data_dir (--data-dir) where it lies"
            )
        raise DataNotFound(
            f"The data set {name!r} is not downloaded: no prepared copy of "
            f"{tfds_name} in {where}. To use it, {how}."
        ) from error
