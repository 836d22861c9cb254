"""Loading a saved model safely, reading images, and predicting their classes."""

import json
import pathlib
import zipfile

import numpy as np

from keras_vit.checkpoints.validate import check_keras_file
from keras_vit.data.datasets import DARK_BACKGROUND_DATA
from keras_vit.data.image_file import read_image
from keras_vit.errors import ArgumentError, DataError, DataNotFound
from keras_vit.utils import check_positive_int

# The digits model `keras-vit train` makes and the project ships (weights/).
# Installed from a wheel it lies in keras_vit/weights/; in a source checkout, in weights/.
_PACKAGE = pathlib.Path(__file__).resolve().parents[1]
DIGITS_MODEL = next(
    (root / "digits" / "model.keras" for root in (_PACKAGE / "weights", _PACKAGE.parent / "weights")
     if (root / "digits" / "model.keras").exists()),
    _PACKAGE.parent / "weights" / "digits" / "model.keras",
)


def load_model(path):
    """Loads a `.keras` file, with a one-line ValueError for anything else.

    Keras' own messages mislead here (garbage bytes read "File not found"),
    so the file is checked first: it must exist, end in `.keras` and be a
    zip holding a Keras model's `config.json`. Loading uses Keras' safe mode
    (no arbitrary code, no unpickling).

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: `path` is not a Keras model file.
    """
    import keras

    path = pathlib.Path(path)
    if not path.exists():
        raise DataNotFound(f"model file not found: {path}")
    if not path.is_file() or path.suffix != ".keras":
        raise DataError(f"not a Keras model file: {path} (expected a .keras file)")
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.getinfo("config.json").file_size > 4 * 2**20:
                raise DataError(f"not a Keras model file: {path} (config.json over 4 MB)")
            json.loads(archive.read("config.json"))
            bad = archive.testzip()
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, RecursionError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(
            f"not a Keras model file: {path} (a .keras file is a zip with "
            f"config.json; {type(error).__name__}: {_one_line(error)})"
        ) from error
    if bad is not None:
        raise DataError(f"not a Keras model file: {path} (corrupt member {bad!r})")
    check_keras_file(path)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - any failure is the file's fault here
        raise DataError(
            f"could not load the Keras model {path}: {type(error).__name__}: "
            f"{_one_line(error)}"
        ) from error
    if not isinstance(model, keras.Model):
        raise DataError(f"not a Keras model file: {path} (holds a {type(model).__name__})")
    return model


def load_images(paths, image_size, num_channels):
    """Reads PNG/JPEG files into a (B, H, W, C) float32 array of [0, 255] pixels.

    Each image is converted to the model's channels (1: grayscale "L",
    3: "RGB") and resized to (H, W) with bilinear interpolation; transparency
    is composited onto white, 16-bit images scaled, EXIF orientation applied
    (`keras_vit.data.image_file.read_image`).

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a file is not an image, or `num_channels` is not 1 or 3.
    """
    height, width = image_size
    if num_channels not in (1, 3):
        raise ArgumentError(
            "Received an invalid value for argument `num_channels`, expected 1 "
            f"(grayscale) or 3 (RGB) to read images for. Received: num_channels={num_channels}"
        )
    arrays = []
    for path in paths:
        path = pathlib.Path(path)
        if path.is_dir():
            raise DataError(f"not an image: {path} is a directory")
        if not path.is_file():
            raise DataNotFound(f"image file not found: {path}")
        array = read_image(path, num_channels, (height, width))
        arrays.append(array.reshape(height, width, num_channels))
    return np.stack(arrays)


def predict_images(model, paths, top=5, class_names=None, invert="auto", background=None,
                   batch_size=32):
    """Classifies image files with `model`.

    Args:
        model: a Keras classifier taking (B, H, W, C) pixels in [0, 255] (a
            keras-vit model normalises inside), or a path to a `.keras` file.
        paths: image file paths (PNG, JPEG, anything PIL reads).
        top: how many classes to report per image (at most K). Defaults to 5.
        class_names: names of the K classes, or None: the model's own
            (`config.class_names`, e.g. ImageNet's for a converted ImageNet
            classifier), else their indices. Defaults to None.
        invert: "auto", True or False: whether to replace pixels x by
            255 - x before predicting. "auto" inverts an image whose polarity
            is the opposite of the training data's (`background`): for a
            model trained on light strokes on dark (the digits), an image
            whose border is brighter than its centre (`has_light_background`)
            is inverted. Defaults to "auto".
        background: "dark", "light" or None: the training images'
            background. None reads it from the run beside a model file
            (`background_for`), else leaves images as they are under "auto".
            Defaults to None.
        batch_size: images per forward pass. Defaults to 32.

    Returns:
        One dict per image: {"path": str, "inverted": bool, "predictions":
        [{"class": index, "name": str, "probability": float}, ...]}, most
        probable first.

    Example:

    >>> keras_vit.evaluation.predict_images("weights/digits/model.keras",
    ...                                     ["seven.png"], top=3)
    """
    if invert not in ("auto", True, False):
        raise ArgumentError(
            "Received an invalid value for argument `invert`, expected 'auto', True "
            f"or False. Received: invert={invert!r}"
        )
    if background not in (None, "dark", "light"):
        raise ArgumentError(
            "Received an invalid value for argument `background`, expected None, "
            f"'dark' or 'light'. Received: background={background!r}"
        )
    if isinstance(model, (str, pathlib.Path)):
        path, model = model, load_model(model)
        if background is None:
            background = background_for(path, model)
    elif background is None:
        background = getattr(getattr(model, "config", None), "background", None)
    top = check_positive_int("top", top)
    paths = [str(p) for p in paths]
    if not paths:
        raise ArgumentError("Received an invalid value for argument `paths`: no image files given.")
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or None in shape:
        raise ArgumentError(
            "Received an invalid value for argument `model`, expected an input "
            f"of fixed shape (H, W, C). Received: input shape {shape}"
        )
    images, inverted = invert_images(load_images(paths, shape[:2], shape[2]), invert, background)
    images = _normalise_if_needed(model, images)
    outputs = np.concatenate(
        [np.asarray(model.predict_on_batch(images[i : i + batch_size]), dtype=np.float64)
         for i in range(0, len(images), batch_size)]
    )
    if outputs.ndim != 2:
        raise ArgumentError(
            "Received an invalid value for argument `model`, expected a classifier "
            f"with outputs (B, K). Received: outputs of shape {outputs.shape}"
        )
    probabilities = outputs if _outputs_probabilities(model) else _softmax(outputs)
    num_classes = probabilities.shape[1]
    if class_names is None:  # the names a converted classifier records
        class_names = getattr(getattr(model, "config", None), "class_names", None)
    if class_names is not None and len(class_names) != num_classes:
        raise ArgumentError(
            "Received an invalid value for argument `class_names`, expected "
            f"{num_classes} names (the model's classes). Received: {len(class_names)}"
        )
    results = []
    for path, p, flipped in zip(paths, probabilities, inverted):
        order = np.argsort(-p, kind="stable")[: min(top, num_classes)]
        results.append({
            "path": path,
            "inverted": bool(flipped),
            "predictions": [
                {
                    "class": int(k),
                    "name": str(class_names[k]) if class_names is not None else str(k),
                    "probability": float(p[k]),
                }
                for k in order
            ],
        })
    return results


def invert_images(images, invert="auto", background=None):
    """`(images, inverted)`: (B, H, W, C) pixels with 255 - x where `inverted[i]`,
    the rule of `predict_images` (and `keras-vit visualize`): `invert` True or False
    for every image; "auto" inverts an image whose polarity (`has_light_background`)
    is not the training data's `background` ("dark", "light"; None: none inverted)."""
    if invert == "auto":
        inverted = [background is not None and has_light_background(image) != (background == "light")
                    for image in images]
    else:
        inverted = [bool(invert)] * len(images)
    return np.where(np.asarray(inverted)[:, None, None, None], 255.0 - images, images), inverted


def record_background(model, background):
    """Records the training images' `background` ("dark", "light" or None) in a keras_vit
    model's config (`ViTConfig.background`), so its `.keras` file carries the polarity
    predict and visualize invert by. It changes no weight or layer: the config is
    replaced by its copy with that field, what `get_config` then saves."""
    model.config = model.config.replace(background=background)
    return model


def has_light_background(image):
    """Whether an (H, W, C) image's border is brighter than its centre.

    The border is the outer ring, 1/8 of each side wide (at least one pixel);
    the centre, the middle half of each side. Pen on paper reads True, the
    digits data (light strokes on black) False.
    """
    gray = np.asarray(image, dtype=np.float64).mean(axis=-1)  # (H, W)
    height, width = gray.shape
    ring_h, ring_w = max(height // 8, 1), max(width // 8, 1)
    border = np.ones_like(gray, dtype=bool)
    border[ring_h : height - ring_h, ring_w : width - ring_w] = False
    centre = gray[height // 4 : height - height // 4, width // 4 : width - width // 4]
    return bool(gray[border].mean() > centre.mean())


def background_for(model_path, model=None):
    """The background ("dark", "light") of the images a model was trained on, or None.

    The loaded `model`'s own record (`config.background`, what train and finetune
    save), else, for a model saved before that was recorded, `metrics.json` in the
    model's folder (what `keras-vit train` writes): its "background" if recorded, else
    "dark" for the data sets of `DARK_BACKGROUND_DATA` (the digits among them).
    """
    recorded = getattr(getattr(model, "config", None), "background", None)
    if recorded is not None:
        return recorded
    path = pathlib.Path(model_path).resolve().parent / "metrics.json"
    try:
        metrics = json.loads(path.read_text())
        config = metrics.get("config", {})
    except (ValueError, OSError, AttributeError):
        return None
    recorded = metrics.get("background", config.get("background"))
    if recorded in ("dark", "light"):
        return recorded
    data = str(config.get("data", "")).split(":")[0].split("[")[0].lower()
    return "dark" if data in DARK_BACKGROUND_DATA else None


def class_names_for(model_path):
    """Class names saved beside a model by `keras-vit train`, or None.

    Looks for "class_names" in `metrics.json` or a `class_names.json` list
    in the model's folder.
    """
    folder = pathlib.Path(model_path).resolve().parent
    for name, key in (("class_names.json", None), ("metrics.json", "class_names")):
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text())
        except (ValueError, OSError):
            continue
        names = data.get(key) if key and isinstance(data, dict) else data
        if isinstance(names, list) and names:
            return [str(n) for n in names]
    return None


def _normalise_if_needed(model, images):
    """A keras-vit model built with include_preprocessing=False wants normalised input."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "include_preprocessing", True):
        return images
    mean = np.asarray(config.normalization_mean, dtype=np.float32)
    std = np.asarray(config.normalization_std, dtype=np.float32)
    return (images / 255.0 - mean) / std


def _outputs_probabilities(model):
    import keras

    activation = getattr(model.layers[-1], "activation", None)
    return activation is keras.activations.softmax or getattr(
        model.layers[-1], "__class__", None
    ) is keras.layers.Softmax


def _softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def _one_line(error):
    text = " ".join(str(error).split())
    return text[:200] + ("..." if len(text) > 200 else "")
