"""Training: the paper's pre-training and fine-tuning recipes, schedules, callbacks.

`keras_vit.training.train(...)` and `finetune(...)` are what `keras-vit train`
and `keras-vit finetune` call. Importing this package imports Keras only;
tensorflow is imported by the data pipeline when a run starts.
"""

from keras_vit.training.callbacks import ResumableCheckpoint, TrainingDiverged
from keras_vit.training.distribution import (
    model_parallel_distribution,
    process_group_from_env,
    vit_layout_map,
)
from keras_vit.training.recipes import (
    DIGITS_MODEL,
    DIGITS_RECIPE,
    FINETUNE_FIELDS,
    FINETUNE_RECIPE,
    PRETRAIN_RECIPE,
    RECIPES,
    SMALL_IMAGES_RECIPE,
    Recipe,
    default_recipe,
    finetune_plan,
    get_recipe,
    make_optimizer,
    recipe_fields,
    finetuning_optimizer,
    make_schedule,
    pretraining_optimizer,
    schedule_steps,
    small_images_model,
)
from keras_vit.training.runs import (
    Run,
    check_output_dir,
    config_differences,
    default_output_dir,
    recorded_config,
    resolve_jit_compile,
)
from keras_vit.training.schedules import WarmupDecay, warmup_decay
from keras_vit.training.train import (
    build_model,
    finetune,
    load_for_finetuning,
    test_metrics,
    train,
)
