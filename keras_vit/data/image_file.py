"""One image file as pixels in [0, 255], whatever PIL mode it was saved in."""

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from keras_vit.errors import DataError

# A transparent pixel becomes this (paint apps and canvases save a drawing on a
# transparent background; paper is white). A model trained on light strokes on
# dark then reads the drawing after predict's auto-invert.
ALPHA_BACKGROUND = 255
# Pillow's decompression-bomb limit (about 89 M pixels) stays; a larger image is refused.
MODES = {1: "L", 3: "RGB"}


def read_image(path, num_channels, size=None):
    """(H, W, num_channels) float32 pixels in [0, 255] of an image file, resized
    to `size` (height, width) with bilinear interpolation when given.

    EXIF orientation is applied; 16- and 32-bit images are scaled to 0-255
    (not clipped); transparency is composited onto white (ALPHA_BACKGROUND).

    Raises:
        DataError: one line naming the file when it is not a readable image.
    """
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            image = _to_8bit(image)
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (ALPHA_BACKGROUND,) * 3 + (255,))
                image = Image.alpha_composite(background, rgba)
            image = image.convert(MODES[num_channels])
            if size is not None:
                image = image.resize((size[1], size[0]), Image.BILINEAR)
            array = np.asarray(image, dtype=np.float32)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
            Image.DecompressionBombError) as error:
        reason = str(error).splitlines()[0][:160] if str(error) else ""
        raise DataError(
            f"not an image: {path} (expected PNG or JPEG; {type(error).__name__}: {reason})"
        ) from error
    return array.reshape(array.shape[0], array.shape[1], num_channels)


def _to_8bit(image):
    """16-bit ("I;16") and 32-bit ("I", "F") images scaled to 8 bits by their range."""
    if image.mode not in ("I", "I;16", "I;16B", "I;16L", "F"):
        return image
    array = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or array.max(initial=0) <= 65535 else array.max()
    if image.mode == "F" and array.max(initial=0) <= 1.0:
        top = 1.0
    return Image.fromarray(np.clip(array / top * 255.0, 0, 255).round().astype(np.uint8), "L")
