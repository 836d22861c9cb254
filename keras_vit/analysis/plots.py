"""Figures of what a ViT learns, as in the paper's fig. 6-7 (matplotlib).

Each function returns a `matplotlib.figure.Figure` and, given `path`, saves
it as a PNG. Figures are made without pyplot (no global state, no window:
the Agg canvas), so they work on servers and never change a user's backend.
"""

import numpy as np
from matplotlib.figure import Figure

from keras_vit.errors import ArgumentError


def plot_attention_rollout(image, rollout, path=None, title=None):
    """The input image beside the rollout map laid over it (paper fig. 6).

    Args:
        image: (H, W, C) pixels in [0, 255] (C of 1 or 3).
        rollout: (gh, gw) map, e.g. one row of `attention_rollout`.
        path: where to save a PNG, or None. Defaults to None.
        title: a title, or None. Defaults to None.

    Returns:
        The figure.
    """
    image = _displayable(image)
    rollout = np.asarray(rollout, dtype=np.float64)
    mask = rollout / rollout.max() if rollout.max() > 0 else rollout
    height, width = image.shape[:2]
    fig = Figure(figsize=(6, 3.2))
    left, right = fig.subplots(1, 2)
    for ax in (left, right):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, extent=(0, width, height, 0))
        ax.set_xticks([])
        ax.set_yticks([])
    left.set_title("input")
    overlay = right.imshow(
        mask, cmap="jet", alpha=0.5, interpolation="bilinear", extent=(0, width, height, 0)
    )
    right.set_title("attention rollout")
    fig.colorbar(overlay, ax=right, fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def plot_attention_maps(image, maps, grid_size, num_prefix_tokens, layer=-1, path=None):
    """What the class token (or, without one, the average patch) attends to, per head.

    Args:
        image: (H, W, C) pixels in [0, 255].
        maps: (layers, heads, T, T) attention weights of one image (one
            batch entry of `attention_maps`).
        grid_size: (gh, gw), the model's patch grid.
        num_prefix_tokens: the model's `config.num_prefix_tokens`; with 0
            the mean over patch queries is shown.
        layer: which block. Defaults to -1 (the last).
        path: where to save a PNG, or None. Defaults to None.

    Returns:
        The figure.
    """
    image = _displayable(image)
    maps = np.asarray(maps)
    num_layers, heads = maps.shape[:2]
    layer = range(num_layers)[layer]
    p = num_prefix_tokens
    gh, gw = grid_size
    rows = maps[layer, :, 0, p:] if p else maps[layer, :, p:, p:].mean(axis=1)  # (heads, N)
    height, width = image.shape[:2]
    columns = min(heads, 6)
    lines = -(-heads // columns)
    fig = Figure(figsize=(2.2 * columns, 2.3 * lines + 0.4))
    axes = np.atleast_1d(fig.subplots(lines, columns)).reshape(-1)
    for h, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if h >= heads:
            ax.set_axis_off()
            continue
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, extent=(0, width, height, 0))
        ax.imshow(rows[h].reshape(gh, gw), cmap="jet", alpha=0.5,
                  extent=(0, width, height, 0))
        ax.set_title(f"head {h}", fontsize=9)
    query = "class token" if p else "mean patch query"
    fig.suptitle(f"attention of the {query}, block {layer}")
    return _finish(fig, path)


def plot_mean_attention_distance(distances, path=None, image_size=None, uniform=None):
    """Mean attention distance per head against block depth (paper fig. 7 right).

    Args:
        distances: (layers, heads) in pixels, from `mean_attention_distance`.
        path: where to save a PNG, or None. Defaults to None.
        image_size: (H, W) to state in the axis label, or None. Defaults to None.
        uniform: the distance uniform attention would give (the grid's mean
            pairwise patch distance), drawn as a dashed line, or None.
            Defaults to None.

    Returns:
        The figure.
    """
    distances = np.asarray(distances, dtype=np.float64)
    num_layers, heads = distances.shape
    fig = Figure(figsize=(4.5, 3.6))
    ax = fig.subplots()
    for h in range(heads):
        ax.scatter(np.arange(num_layers), distances[:, h], s=18, label=f"head {h}")
    ax.plot(np.arange(num_layers), distances.mean(axis=1), color="black", lw=1,
            label="mean over heads")
    if uniform is not None:
        ax.axhline(uniform, color="gray", ls="--", lw=1, label="uniform attention")
    ax.set_xlabel("network depth (block)")
    ax.set_xticks(np.arange(num_layers))
    unit = "pixels" if image_size is None else f"pixels of {image_size[0]}x{image_size[1]}"
    ax.set_ylabel(f"mean attention distance ({unit})")
    top = max(float(distances.max()), uniform or 0.0)
    ax.set_ylim(0, 1.15 * top if top > 0 else 1.0)
    if heads <= 16:
        ax.legend(fontsize=6, loc="lower right", ncol=2)
    return _finish(fig, path)


def plot_position_embedding_similarity(similarity, path=None):
    """Each patch's position-embedding similarity map, on the patch grid (paper fig. 7 centre).

    Args:
        similarity: (gh, gw, gh, gw) cosines from
            `position_embedding_similarity`.
        path: where to save a PNG, or None. Defaults to None.

    Returns:
        The figure.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    gh, gw = similarity.shape[:2]
    mosaic = np.full((gh * (gh + 1) - 1, gw * (gw + 1) - 1), np.nan)
    for i in range(gh):
        for j in range(gw):
            r, c = i * (gh + 1), j * (gw + 1)
            mosaic[r : r + gh, c : c + gw] = similarity[i, j]
    fig = Figure(figsize=(5, 4.4 * gh / gw + 0.3))
    ax = fig.subplots()
    shown = ax.imshow(mosaic, cmap="viridis", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([(j + 0.5) * (gw + 1) - 1 for j in range(gw)], labels=range(1, gw + 1))
    ax.set_yticks([(i + 0.5) * (gh + 1) - 1 for i in range(gh)], labels=range(1, gh + 1))
    ax.set_xlabel("input patch column")
    ax.set_ylabel("input patch row")
    ax.set_title("position embedding similarity")
    fig.colorbar(shown, ax=ax, label="cosine similarity", fraction=0.046, pad=0.04)
    return _finish(fig, path)


def plot_embedding_filters(filters, path=None, columns=7):
    """The principal components of the patch-embedding filters (paper fig. 7 left).

    Each component is rescaled to [0, 1] on its own; 1 or 3 channels show as
    gray or RGB, other counts as their mean over channels.

    Args:
        filters: (n, P, P, C) from `embedding_filters`.
        path: where to save a PNG, or None. Defaults to None.
        columns: components per row. Defaults to 7 (the paper's 4 x 7).

    Returns:
        The figure.
    """
    filters = np.asarray(filters, dtype=np.float64)
    n = len(filters)
    columns = min(columns, n)
    lines = -(-n // columns)
    fig = Figure(figsize=(1.1 * columns, 1.1 * lines + 0.5))
    axes = np.atleast_1d(fig.subplots(lines, columns)).reshape(-1)
    for k, ax in enumerate(axes):
        ax.set_axis_off()
        if k >= n:
            continue
        f = filters[k]
        if f.shape[-1] not in (1, 3):
            f = f.mean(axis=-1, keepdims=True)
        f = (f - f.min()) / (np.ptp(f) or 1.0)
        ax.imshow(f[..., 0] if f.shape[-1] == 1 else f, cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
    fig.suptitle("RGB embedding filters (first principal components)"
                 if filters.shape[-1] == 3 else "embedding filters (first principal components)")
    return _finish(fig, path)


def _displayable(image):
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ArgumentError(
            "Received an invalid value for argument `image`, expected (H, W, 1) or "
            f"(H, W, 3) pixels. Received: image.shape={image.shape}"
        )
    image = np.clip(image / 255.0, 0.0, 1.0)
    return image[..., 0] if image.shape[-1] == 1 else image


def _finish(fig, path):
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, format="png", dpi=120)
    return fig
