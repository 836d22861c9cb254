"""Position-embedding resizes built from keras.ops, for sizes known only at call time.

The same 1-D weights as `keras_vit.surgery.interpolation_matrix` (the NumPy
reference each resize is tested against), computed from an output length
that may be a symbolic tensor: under TensorFlow's `tf.function` Keras traces
with `reduce_retracing`, which relaxes the image shape to None after a few
sizes, so the grid (and every matrix) must come from `ops.shape`, not NumPy.
Each matrix is a dense (out, in) weight table; a 2-D resize of a (gh, gw, D)
grid is `A_h @ grid @ A_w^T`.
"""

from keras import ops

RESAMPLE_METHODS = ("linear", "bicubic")


def _positions(out_size, dtype):
    return ops.cast(ops.arange(out_size), dtype)  # (out,) = 0, 1, ..., out-1


def _at_least(x, bound):
    """max(x, bound) keeping x's dtype (ops.maximum casts float64 to float32 on torch)."""
    return ops.where(x < bound, ops.full_like(x, bound), x)


def _keys_cubic(x, a):
    """Keys' cubic convolution kernel, elementwise (zero beyond |x| = 2)."""
    x = ops.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return ops.where(x < 1.0, near, ops.where(x < 2.0, far, ops.zeros_like(x)))


def resample_matrix(in_size, out_size, method="linear", antialias=False, dtype="float32"):
    """The (out_size, in_size) weights of a 1-D resize, with keras.ops.

    Args:
        in_size: int, the stored length (static).
        out_size: int or scalar tensor, the length wanted (may be symbolic).
        method: "linear" (scipy `zoom(order=1)`, corners aligned) or
            "bicubic" (torch `F.interpolate`, align_corners=False). Defaults
            to "linear".
        antialias: bool, torch's antialiased bicubic (a = -0.5, support
            stretched by in/out when down-sampling, rows normalised).
            Defaults to False.
        dtype: the matrix dtype. Defaults to "float32".

    Returns:
        Tensor (out_size, in_size).
    """
    j = ops.cast(ops.arange(in_size), dtype)[None, :]  # (1, in)
    i = _positions(out_size, dtype)[:, None]  # (out, 1)
    n_in = float(in_size)
    n_out = ops.cast(out_size, dtype)
    if method == "linear":
        # Output i samples x = i * (in-1)/(out-1) (x = 0 when out = 1).
        step = (n_in - 1.0) / _at_least(n_out - 1.0, 1.0)
        x = i * step
        x = ops.where(x > n_in - 1.0, ops.full_like(x, n_in - 1.0), x)
        return _at_least(1.0 - ops.abs(x - j), 0.0)  # (out, in)
    scale = n_in / n_out
    if antialias:
        # torch's window [int(c - support + .5), int(c + support + .5)) holds
        # every j where the kernel is non-zero, so all j with zeros elsewhere
        # give the same weights, borders included (tested to 1e-6).
        stretch = _at_least(scale, 1.0)
        center = (i + 0.5) * scale
        w = _keys_cubic((j + 0.5 - center) / stretch, -0.5)  # (out, in)
        return w / ops.sum(w, axis=1, keepdims=True)
    # Plain bicubic: x = (i + .5) in/out - .5, 4 taps floor(x)-1 .. +2, a = -0.75,
    # indices clamped to the border (the clamped taps add up on the edge).
    a = -0.75
    x = (i[:, 0] + 0.5) * scale - 0.5  # (out,)
    x0 = ops.floor(x)
    t = x - x0
    out = None
    for k in (-1, 0, 1, 2):
        weight = _keys_cubic(t - float(k), a)  # distance from tap floor(x)+k
        index = ops.clip(ops.cast(x0, "int32") + k, 0, in_size - 1)
        term = weight[:, None] * ops.one_hot(index, in_size, dtype=dtype)
        out = term if out is None else out + term
    return out  # (out, in)


def resample_grid(grid, new_hw, method="linear", antialias=False):
    """Resizes a (gh, gw, D) grid to (nh, nw, D): A_h @ grid @ A_w^T per channel."""
    gh, gw = grid.shape[0], grid.shape[1]
    rows = resample_matrix(gh, new_hw[0], method, antialias, grid.dtype)  # (nh, gh)
    cols = resample_matrix(gw, new_hw[1], method, antialias, grid.dtype)  # (nw, gw)
    return ops.einsum("ih,jw,hwd->ijd", rows, cols, grid)  # (nh, nw, D)


def sincos_2d_ops(grid_hw, width, dtype="float32", temperature=10000.0):
    """`position_embedding.sincos_2d_embedding` for a grid that may be symbolic."""
    quarter = width // 4
    omega = ops.cast(ops.arange(quarter), "float32") / float(max(quarter - 1, 1))
    omega = 1.0 / ops.power(temperature, omega)  # (D/4,)
    gh, gw = grid_hw
    y = _positions(gh, "float32")[:, None] * ops.ones((1, gw))  # (gh, gw)
    x = ops.ones((gh, 1)) * _positions(gw, "float32")[None, :]
    y = ops.reshape(y, (-1, 1)) * omega[None]  # (gh*gw, D/4)
    x = ops.reshape(x, (-1, 1)) * omega[None]
    pe = ops.concatenate([ops.sin(x), ops.cos(x), ops.sin(y), ops.cos(y)], axis=1)
    return ops.cast(pe, dtype)  # (gh*gw, D)
