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
