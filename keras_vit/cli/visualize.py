"""`keras-vit visualize`."""

from keras_vit.cli.common import add_invert_argument, input_path, invert_note, model_or_digits


def add_visualize(sub):
    p = sub.add_parser(
        "visualize",
        help="Write what a ViT learned (attention, position embeddings, filters) as PNGs.",
        description="Writes the paper's section 4.5 figures for IMAGE... into --output-dir: "
        "attention rollout and per-head attention for each image, mean attention distance, "
        "position-embedding similarity, embedding filters, the numbers (analysis.json) and "
        "an index.html showing them. Without --model, uses the digits model in weights/digits/.",
    )
    input_path(p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG)"),
               "image file not found: {}")
    input_path(p.add_argument("--model", default=None,
                              help="a .keras model file (default: the digits model)"),
               "model file not found: {}")
    p.add_argument("--output-dir", required=True, help="folder to write the figures into")
    add_invert_argument(p)
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace the figures of an earlier run in a non-empty --output-dir",
    )

    def run(args):
        import pathlib

        from keras_vit import analysis, evaluation
        from keras_vit.evaluation.predict import background_for, invert_images
        from keras_vit.models.feature_extractor import vit_config_and_blocks

        path = model_or_digits(args.model)
        model = evaluation.load_model(path)
        vit_config_and_blocks(model)  # a ViT with attention layers, or one line saying not
        shape = tuple(model.inputs[0].shape[1:])
        images, inverted = invert_images(
            evaluation.load_images(args.images, shape[:2], shape[2]),
            "auto" if args.invert is None else args.invert, background_for(path, model))
        for name, flipped in zip(args.images, inverted):  # as predict says it
            if flipped:
                print(f"{name}:{invert_note(flipped, args.invert)}")
        summary = analysis.visualize(
            model, images, args.output_dir,
            names=[pathlib.Path(p).name for p in args.images], overwrite=args.overwrite,
        )
        first = summary["mean_attention_distance_first_block"]
        last = summary["mean_attention_distance_last_block"]
        print(f"mean attention distance: first block {first:.2f} px, last block {last:.2f} px")
        if summary["position_embedding_similarity"]:
            s = summary["position_embedding_similarity"]
            print(f"position-embedding cosine: neighbours {s['neighbours']:.3f}, "
                  f"distant {s['distant']:.3f}")
        print(f"wrote {pathlib.Path(args.output_dir) / 'index.html'}")
        return 0

    p.set_defaults(run=run)
