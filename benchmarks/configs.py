"""What is benchmarked: the configurations (models, batch sizes) and the rows (runners).

Standard library only: the driver, the report and `keras-vit benchmark --help`
import it without any framework.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """One benchmarked configuration (the model and how it is run).

    Args:
        name: label in the table.
        mode: "train" (compile + fit) or "inference" (predict).
        image_size, patch_size, hidden_size, num_layers, num_heads, mlp_dim,
            num_classes: the ViT.
        batch_size: images per step.
        steps: steps (batches) per timed repetition.
        warmup_steps: untimed steps after building (tracing, compilation).
        dtype: "float32" or "bfloat16" (mixed precision: bf16 compute,
            float32 weights, softmax and LayerNorm).
        remat: recompute each block in the backward pass (keras_vit:
            `finetune_kit.remat_scope`; timm: `set_grad_checkpointing`).
        frameworks: the frameworks that run it (None: every row asked for).
    """

    name: str
    mode: str
    image_size: int
    patch_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    mlp_dim: int
    num_classes: int
    batch_size: int
    steps: int
    warmup_steps: int = 1
    dtype: str = "float32"
    remat: bool = False
    frameworks: tuple = None

    def forward_flops(self):
        """Multiply-add FLOPs (2 per MAC) of one image's forward pass.

        Counts every matrix product: the patch embedding, per block q/k/v,
        the two attention products, the output projection and the MLP, and
        the head. Element-wise work (LayerNorm, GELU, softmax) is left out,
        as in the usual MFU accounting (PaLM, appendix B).
        """
        n = (self.image_size // self.patch_size) ** 2
        t, d, m = n + 1, self.hidden_size, self.mlp_dim
        patch = 2 * n * (self.patch_size**2 * 3) * d
        block = 2 * t * d * 3 * d + 2 * 2 * t * t * d + 2 * t * d * d + 2 * 2 * t * d * m
        return patch + self.num_layers * block + 2 * d * self.num_classes

    def step_flops(self):
        """FLOPs of one image in this mode: forward, or forward + backward (3x)."""
        return self.forward_flops() * (3 if self.mode == "train" else 1)


@dataclasses.dataclass(frozen=True)
class Runner:
    """One row of the table: a framework, its backend and how it compiles.

    Args:
        framework: "keras_vit", "keras_hub", "zeromodels" or "timm".
        backend: Keras backend ("tensorflow", "jax", "torch"), or "torch" for timm.
        jit_compile: for Keras, the `jit_compile` passed to `compile` ("auto"
            is what a user gets); for timm, "compile" wraps the model in
            `torch.compile`, anything else runs eagerly.
        python: the interpreter that runs the worker. Defaults to this one.
    """

    framework: str
    backend: str = "tensorflow"
    jit_compile: str = "auto"
    python: str = None

    @property
    def label(self):
        if self.framework == "timm":
            return "timm (torch.compile)" if self.jit_compile == "compile" else "timm (eager)"
        jit = "" if self.jit_compile == "auto" else f", jit_compile={self.jit_compile}"
        return f"{self.framework} ({self.backend}{jit})"


FRAMEWORKS = ("keras_vit", "keras_hub", "zeromodels", "timm")

CPU_CONFIGS = (
    # CIFAR-sized training: 32x32, patch 4, width 192, depth 6, heads 3, MLP 768.
    BenchConfig("CIFAR-sized training", "train", 32, 4, 192, 6, 3, 768, 10,
                batch_size=128, steps=3, warmup_steps=2),
    # ViT-B/16 at 224, predict.
    BenchConfig("ViT-B/16 inference @224", "inference", 224, 16, 768, 12, 12, 3072, 1000,
                batch_size=8, steps=2, warmup_steps=1),
)
GPU_CONFIGS = (
    BenchConfig("ViT-B/16 training @224, bf16", "train", 224, 16, 768, 12, 12, 3072, 1000,
                batch_size=256, steps=10, warmup_steps=3, dtype="bfloat16"),
    BenchConfig("ViT-B/16 inference @224, bf16", "inference", 224, 16, 768, 12, 12, 3072,
                1000, batch_size=512, steps=10, warmup_steps=2, dtype="bfloat16"),
    # Rematerialisation: the same L/16 step with and without recomputing each block
    # (keras-hub has no remat for its ViT, so these two compare keras_vit with timm).
    BenchConfig("ViT-L/16 training @224, bf16", "train", 224, 16, 1024, 24, 16, 4096, 1000,
                batch_size=128, steps=5, warmup_steps=2, dtype="bfloat16",
                frameworks=("keras_vit", "timm")),
    BenchConfig("ViT-L/16 training @224, bf16, remat", "train", 224, 16, 1024, 24, 16, 4096,
                1000, batch_size=128, steps=5, warmup_steps=2, dtype="bfloat16", remat=True,
                frameworks=("keras_vit", "timm")),
)


def default_runners(device="cpu", pythons=None):
    """The rows benchmarked by default on a "cpu" or a "gpu"."""
    pythons = pythons or {}
    py = pythons.get
    if device == "gpu":
        return [
            Runner("keras_vit", "jax", python=py("keras_vit")),
            # torch.compile inside Keras' trainer: may reach the kernels timm's
            # compiled row uses (issue 19 lead 4)
            Runner("keras_vit", "torch", "True", python=py("keras_vit")),
            Runner("keras_hub", "jax", python=py("keras_hub")),
            Runner("timm", "torch", "eager", python=py("timm")),
            Runner("timm", "torch", "compile", python=py("timm")),
        ]
    return [
        Runner("keras_vit", "tensorflow", python=py("keras_vit")),
        Runner("keras_vit", "jax", python=py("keras_vit")),
        Runner("keras_hub", "tensorflow", python=py("keras_hub")),
        Runner("keras_hub", "tensorflow", "True", python=py("keras_hub")),
        # another Keras 3 ViT; Keras' "auto" leaves XLA off on a CPU (issue 19 lead 5)
        Runner("zeromodels", "tensorflow", python=py("zeromodels")),
        Runner("timm", "torch", "eager", python=py("timm")),
    ]


def quick_configs(configs):
    """Fewer steps per repetition, for `--quick`."""
    return tuple(
        dataclasses.replace(c, steps=max(1, c.steps // 2), warmup_steps=1) for c in configs
    )


def dry_run_configs(configs):
    """The same code paths at a toy size, to check a mode on a machine that lacks it."""
    return tuple(
        dataclasses.replace(
            c, image_size=32, patch_size=8, hidden_size=32, num_layers=2, num_heads=2,
            mlp_dim=64, num_classes=10, batch_size=4, steps=1, warmup_steps=1,
        )
        for c in configs
    )

