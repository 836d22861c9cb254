"""Makes the figures in this folder: paper section 4.5 for the shipped digits model.

Run from the repository root: `python -m weights.digits.analysis.make_figures`
(or with keras-vit installed, `python weights/digits/analysis/make_figures.py`).
Attention statistics are over the 360 held-out test digits (bilinearly upscaled to
16x16 as in training); rollout and per-head attention for the first three of them.
Writes the PNGs and numbers.json beside this script.
"""

import json
import pathlib

import keras
import numpy as np

import keras_vit
from keras_vit import analysis
from keras_vit.data import load_digits_arrays

HERE = pathlib.Path(__file__).resolve().parent
MODEL = HERE.parent / "model.keras"


def main():
    model = keras_vit.evaluation.load_model(MODEL)  # compile=False: inference only
    config = model.config
    images, labels = load_digits_arrays("test")
    images = keras.ops.convert_to_numpy(
        keras.ops.image.resize(images, config.image_hw, interpolation="bilinear")
    )
    distance = analysis.mean_attention_distance(model, images)  # (layers, heads)
    pixels = config.patch_size * config.stem_stride
    uniform = float(analysis.patch_distances(config.grid_size, pixels).mean())
    analysis.plot_mean_attention_distance(
        distance, HERE / "mean_attention_distance.png", config.image_hw, uniform=uniform
    )
    similarity = analysis.position_embedding_similarity(model)
    analysis.plot_position_embedding_similarity(
        similarity, HERE / "position_embedding_similarity.png"
    )
    n = min(28, config.hidden_size, config.patch_size**2 * config.num_channels)
    filters = analysis.embedding_filters(model, n=n)
    analysis.plot_embedding_filters(filters, HERE / "embedding_filters.png")
    shown = images[:3]
    rollout = analysis.attention_rollout(model, shown)
    maps = analysis.attention_maps(model, shown)
    for i, image in enumerate(shown):
        analysis.plot_attention_rollout(
            image, rollout[i], HERE / f"rollout_{i}.png", title=f"test digit {i} (a {labels[i]})"
        )
        analysis.plot_attention_maps(
            image, maps[:, i], config.grid_size, config.num_prefix_tokens,
            path=HERE / f"attention_{i}.png",
        )
    numbers = {
        "images": "the 360 held-out test digits, 16x16",
        "mean_attention_distance_pixels": distance.round(3).tolist(),
        "mean_over_heads_per_block": distance.mean(axis=1).round(3).tolist(),
        "uniform_attention_distance": round(uniform, 3),
        "position_embedding_similarity": analysis.similarity_by_distance(similarity),
    }
    (HERE / "numbers.json").write_text(json.dumps(numbers, indent=2) + "\n")
    print(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
