"""ImageNet ReaL as a data source: the validation images with their ReaL label sets.

tensorflow-datasets carries the labels of Beyer et al., "Are we done with
ImageNet?" (2020) as `imagenet2012_real` (validation split only; the images
come from ILSVRC2012_img_val.tar, a manual download). Scoring is
`keras_vit.evaluation.real`.
"""

from keras_vit.data.tfds_datasets import read_tfds
from keras_vit.utils import to_hw

REAL_DATASET = "imagenet2012_real"
REAL_FETCH = ("ILSVRC2012_img_val.tar (from https://image-net.org/, login required; tfds "
              "also fetches the ReaL labels, real.json from "
              "github.com/google-research/reassessed-imagenet, once, which needs internet)")


def load_real(image_size, batch_size=64, data_dir=None, manual_dir=None, split="validation"):
    """ImageNet ReaL batches: (images float32 [0, 255], original labels, label sets).

    Label sets are padded with -1 to the batch's longest. Images are resized
    (bilinear) to `image_size`, as `keras_vit.data.load_dataset` does for
    imagenet2012.

    Raises:
        DataNotFound: the data set is not prepared (what to download and
            where to put it).
    """
    import tensorflow as tf

    height, width = to_hw("image_size", image_size)
    dataset = read_tfds(REAL_DATASET, REAL_DATASET, split, REAL_FETCH, manual=True,
                        data_dir=data_dir, manual_dir=manual_dir, as_supervised=False)

    def to_tuple(example):
        image = tf.image.resize(tf.cast(example["image"], tf.float32), (height, width))
        return image, tf.cast(example["original_label"], tf.int32), tf.cast(
            example["real_label"], tf.int32)

    dataset = dataset.map(to_tuple, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.padded_batch(
        batch_size, padded_shapes=((height, width, 3), (), (None,)),
        padding_values=(0.0, 0, -1),
    )
    return dataset.prefetch(tf.data.AUTOTUNE)
