"""All the figures of section 4.5 for one model and some images, into one folder
with an index.html (what `keras-vit visualize` writes)."""

import html
import json
import os
import pathlib
import shutil
import tempfile

import numpy as np

from keras_vit.analysis.attention import (
    attention_maps,
    attention_rollout,
    mean_attention_distance,
    patch_distances,
)
from keras_vit.analysis.embeddings import embedding_filters, position_embedding_similarity
from keras_vit.analysis.plots import (
    plot_attention_maps,
    plot_attention_rollout,
    plot_embedding_filters,
    plot_mean_attention_distance,
    plot_position_embedding_similarity,
)
from keras_vit.errors import ArgumentError, RunFolderError
from keras_vit.models.feature_extractor import vit_config_and_blocks


def visualize(model, images, output_dir, names=None, overwrite=False):
    """Writes the paper's fig. 6-7 for `model` on `images` as PNGs plus an index.html.

    Per image: the attention rollout over the image and the last block's
    attention per head. For the model: mean attention distance per head and
    block, position-embedding similarity (if it has an absolute one) and the
    patch-embedding filters' principal components (not for a hybrid, whose
    patch embedding is a 1x1 projection). The numbers behind them go to
    `analysis.json`. Everything is computed first and written to a temporary
    folder beside `output_dir`, then moved in: an error leaves nothing
    half-written.

    Args:
        model: a `keras_vit.VisionTransformer`.
        images: (B, H, W, C) pixels the model takes.
        output_dir: folder to write into; it must not exist or be empty
            unless `overwrite`.
        names: a label per image (e.g. its file name), or None. Defaults
            to None.
        overwrite: replace the files of an earlier run in a non-empty
            `output_dir` (other files are left alone). Defaults to False.

    Returns:
        The summary dict written to `analysis.json`.
    """
    config, _ = vit_config_and_blocks(model)
    output_dir = pathlib.Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise RunFolderError(f"output directory {output_dir} exists and is not a directory")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise RunFolderError(
            f"output directory {output_dir} is not empty; pass --overwrite "
            "(overwrite=True) to replace the figures in it"
        )
    images = np.asarray(images, dtype=np.float32)
    names = [f"image {i}" for i in range(len(images))] if names is None else list(names)
    if len(names) != len(images):
        raise ArgumentError(
            f"Received an invalid value for argument `names`, expected {len(images)} "
            f"names (one per image). Received: {len(names)}"
        )

    maps = attention_maps(model, images)  # (L, B, heads, T, T)
    rollout = attention_rollout(model, images)  # (B, gh, gw)
    distances = mean_attention_distance(model, images)  # (L, heads)
    pixels = config.patch_size * config.stem_stride
    uniform = float(patch_distances(config.grid_size, pixels).mean())
    summary = {
        "model": model.name,
        "images": names,
        "grid_size": list(config.grid_size),
        "num_prefix_tokens": config.num_prefix_tokens,
        "mean_attention_distance_pixels": distances.round(4).tolist(),
        "mean_attention_distance_first_block": round(float(distances[0].mean()), 4),
        "mean_attention_distance_last_block": round(float(distances[-1].mean()), 4),
        "mean_attention_distance_uniform": round(uniform, 4),
    }
    figures = []  # (file name, caption, figure)
    for i, image in enumerate(images):
        figures.append((f"rollout_{i:02d}.png", f"Attention rollout: {names[i]}",
                        plot_attention_rollout(image, rollout[i], title=names[i])))
        figures.append((
            f"attention_{i:02d}.png", f"Last block's attention per head: {names[i]}",
            plot_attention_maps(image, maps[:, i], config.grid_size, config.num_prefix_tokens),
        ))
    figures.append((
        "mean_attention_distance.png",
        "Mean attention distance per head against depth (first block "
        f"{summary['mean_attention_distance_first_block']:.2f} px, last block "
        f"{summary['mean_attention_distance_last_block']:.2f} px, mean over heads; "
        f"uniform attention would give {uniform:.2f} px)",
        plot_mean_attention_distance(distances, image_size=config.image_hw, uniform=uniform),
    ))
    if config.position_embedding in ("relative", "none"):
        summary["position_embedding_similarity"] = None
    else:
        similarity = position_embedding_similarity(model)
        summary["position_embedding_similarity"] = similarity_by_distance(similarity)
        s = summary["position_embedding_similarity"]
        figures.append((
            "position_embedding_similarity.png",
            "Cosine similarity of position embeddings (neighbouring patches "
            f"{s['neighbours']:.3f}, distant patches {s['distant']:.3f})",
            plot_position_embedding_similarity(similarity),
        ))
    if config.hybrid_layers is None:
        n = min(28, config.hidden_size, config.patch_size**2 * config.num_channels)
        figures.append((
            "embedding_filters.png",
            f"First {n} principal components of the patch-embedding filters",
            plot_embedding_filters(embedding_filters(model, n=n)),
        ))
    _write_all(output_dir, figures, summary, overwrite)
    return summary


def similarity_by_distance(similarity):
    """Mean position-embedding cosine of neighbouring vs distant patch pairs.

    Neighbours are pairs one patch apart (left/right/up/down); distant pairs
    are at least half the grid's largest distance apart.

    Args:
        similarity: (gh, gw, gh, gw) from `position_embedding_similarity`.

    Returns:
        {"neighbours": float, "distant": float, "distant_min_patches": float}.
    """
    gh, gw = similarity.shape[:2]
    d = patch_distances((gh, gw), 1)
    s = np.asarray(similarity).reshape(gh * gw, gh * gw)
    cut = d.max() / 2
    return {
        "neighbours": round(float(s[np.isclose(d, 1.0)].mean()), 4),
        "distant": round(float(s[d >= cut].mean()), 4),
        "distant_min_patches": round(float(cut), 4),
    }


def _write_all(output_dir, figures, summary, overwrite):
    parent = output_dir.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=parent))
    try:
        for name, _, fig in figures:
            fig.savefig(staging / name, format="png", dpi=120)
        (staging / "analysis.json").write_text(json.dumps(summary, indent=2) + "\n")
        (staging / "index.html").write_text(_index_html(figures, summary))
        if not output_dir.exists():
            os.rename(staging, output_dir)
            return
        for item in sorted(staging.iterdir()):
            os.replace(item, output_dir / item.name)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _index_html(figures, summary):
    items = "\n".join(
        f'<figure><img src="{html.escape(name)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for name, caption, _ in figures
    )
    title = f"What {html.escape(summary['model'])} learned"
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{title}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "figure{display:inline-block;margin:1em;vertical-align:top}"
        "img{max-width:640px}</style></head><body>\n"
        f"<h1>{title}</h1>\n<p>Paper section 4.5 (fig. 6-7); the numbers are in "
        '<a href="analysis.json">analysis.json</a>.</p>\n'
        f"{items}\n</body></html>\n"
    )
