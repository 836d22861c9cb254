"""The layer names keras_vit.models.names declares are the ones a built model has."""
import keras

from keras_vit.models import ViT, names


def test_declared_names_are_the_built_models_layers():
    model = ViT(image_size=(16, 24), patch_size=8, hidden_size=16, num_layers=2, num_heads=2,
                mlp_dim=32, num_classes=3, representation_size=8)
    built = {layer.name for layer in model.layers}
    declared = [names.IMAGES, names.PATCHES, names.PATCH_EMBEDDING, names.PATCH_ENCODER,
                names.ENCODER_NORM, names.POOLING, names.PRE_LOGITS, names.HEAD,
                names.block_name(0), names.block_name(1)]
    missing = [name for name in declared if name not in built]
    assert not missing, f"declared but not built: {missing}; built: {sorted(built)}"
    assert names.block_name(2) not in built
    assert isinstance(model.get_layer(names.HEAD), keras.layers.Dense)


def test_consumers_name_the_models_parts_through_models_names():
    # Few-shot features, MPP, the fine-tuning kit, surgery and the analysis cut the graph
    # by the names models/names.py declares, not by literals of their own. (The checkpoint
    # converters still spell weight paths out: see the issue notes.)
    import pathlib
    import re

    import keras_vit

    root = pathlib.Path(keras_vit.__file__).parent
    literal = re.compile(r"get_layer\(\s*[\"']|[\"']transformer_block_")
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(("models/", "layers/", "checkpoints/")):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if literal.search(line):
                found.append(f"{rel}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
