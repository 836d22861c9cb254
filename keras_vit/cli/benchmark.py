"""`keras-vit benchmark`."""



def add_benchmark(sub):
    p = sub.add_parser(
        "benchmark",
        help="Throughput and memory of keras_vit against keras-hub and timm.",
        description="Interleaved, repeated runs of keras_vit and its peers, each in its "
        "own process; prints a markdown table of medians and ratios.",
    )
    from keras_vit.benchmark import add_arguments

    add_arguments(p)

    def run(args):
        from keras_vit.benchmark import main as benchmark_main

        return benchmark_main(args)

    p.set_defaults(run=run)
