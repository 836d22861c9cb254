"""`keras-vit summary`."""



def add_summary(sub):
    p = sub.add_parser("summary", help="Print a model's layers and parameter count.")
    p.add_argument("--model", default="B/16", help="variant name, e.g. Ti/16, B/16")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--num-classes", type=int, default=1000)

    def run(args):
        import keras_vit

        keras_vit.ViT(
            args.model, image_size=args.image_size, num_classes=args.num_classes
        ).summary()
        return 0

    p.set_defaults(run=run)
