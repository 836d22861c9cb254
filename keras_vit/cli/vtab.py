"""`keras-vit vtab`."""


def add_vtab(sub):
    p = sub.add_parser(
        "vtab",
        help="VTAB-1k: fine-tune a copy of the model on each of the 19 tasks.",
        description="Runs VTAB-1k as the ViT paper (App. B.1.1): one copy of the model "
        "fine-tuned per task on its 1,000 examples (task_adaptation's train800val200) "
        "with SGD momentum 0.9, cosine decay, clip 1, lr 0.01, 2500 steps of batch 512 "
        "at 384x384, and scored on the task's test split. Writes vtab.md and vtab.json "
        "(per task, the three group means, the overall mean) and tasks/<task>.json; a "
        "rerun skips finished tasks; a task whose data is missing is skipped with what "
        "to download.",
    )
    p.add_argument("--weights", required=True,
                   help="a .keras file, a checkpoint file or a registered checkpoint name")
    p.add_argument("--tasks", default=None,
                   help="comma-separated task names (default: all 19; see keras_vit."
                   "data.VTAB_TASKS)")
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory")
    p.add_argument("--output-dir", default="runs/vtab", help="where results go (runs/vtab)")
    p.add_argument("--steps", type=int, default=2500, help="optimizer steps per task (2500)")
    p.add_argument("--batch-size", type=int, default=512, help="batch size (512)")
    p.add_argument("--learning-rate", type=float, default=0.01, help="peak learning rate (0.01)")
    p.add_argument("--image-size", type=int, default=384,
                   help="resolution; 0 keeps the model's own (384)")
    p.add_argument("--warmup-steps", type=int, default=0, help="linear warmup steps (0)")
    p.add_argument("--accumulation-steps", type=int, default=1,
                   help="make each batch of this many smaller ones, when 512 does not fit (1)")
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)

    def run(args):
        import os

        from keras_vit.evaluation import vtab_markdown
        from keras_vit.vtab import run_vtab

        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
        summary = run_vtab(
            args.weights, tasks=tasks, data_dir=args.data_dir, output_dir=args.output_dir,
            steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
            image_size=args.image_size or None, warmup_steps=args.warmup_steps,
            gradient_accumulation_steps=args.accumulation_steps,
            eval_batch_size=args.eval_batch_size, seed=args.seed,
        )
        print(vtab_markdown(summary, tasks), end="")
        print(f"Written: {os.path.join(args.output_dir, 'vtab.md')} and vtab.json")
        return 0

    p.set_defaults(run=run)
