"""Hub names: `hf://owner/name` (or `hf://owner/name@revision`), a timm or HF repo on
the Hugging Face Hub, resolved into huggingface_hub's own cache.

Only the files a conversion reads are fetched, one by one with
`hf_hub_download`: config.json first (an architecture keras_vit does not build
is refused by name before any weights come down), then model.safetensors and,
where the repo has one, preprocessor_config.json. Never `pytorch_model.bin` or
any other pickle. Each file comes down once into the cache (`HF_HUB_CACHE`,
`~/.cache/huggingface/hub` by default); with `HF_HUB_OFFLINE=1` the cached
snapshot is used with no network.

huggingface_hub is an optional dependency (the `hub` extra).
"""

import os
import re

from keras_vit.checkpoints import hf
from keras_vit.checkpoints.port import CheckpointError, read_json

PREFIX = "hf://"
_NAME = re.compile(r"^hf://([A-Za-z0-9][\w.-]*/[\w.-]+)(?:@([\w./-]+))?$")
WEIGHTS = "model.safetensors"
# timm builders whose models are timm's `VisionTransformer` (what timm.py reads).
TIMM_ARCHITECTURES = ("vit_", "deit_", "deit3_")
INSTALL = 'pip install ".[hub]"'


def is_hub_name(source):
    return isinstance(source, str) and source.startswith(PREFIX)


def parse(source):
    """"hf://owner/name@rev" -> ("owner/name", "rev" or None)."""
    match = _NAME.match(source)
    if not match:
        raise CheckpointError(
            f"{source!r} is not a hub name: expected hf://OWNER/NAME or "
            "hf://OWNER/NAME@REVISION, e.g. hf://google/vit-base-patch16-224.")
    return match.group(1), match.group(2)


def _hub():
    try:  # optional and heavy: only hf:// names need it
        import huggingface_hub
        import huggingface_hub.errors
    except ImportError as error:
        raise CheckpointError(
            f"hf:// names need huggingface_hub, which is not installed: {INSTALL} "
            "in the keras-vit checkout (or pip install huggingface_hub).") from error
    return huggingface_hub


def check_architecture(config, source):
    """Refuses by name a repo whose config.json is not an architecture keras_vit reads."""
    if "architecture" in config:  # a timm hub folder
        arch = str(config["architecture"])
        if not arch.startswith(TIMM_ARCHITECTURES):
            raise CheckpointError(
                f"{source}: timm architecture {arch!r} is not a timm VisionTransformer "
                f"(keras_vit reads {', '.join(a + '*' for a in TIMM_ARCHITECTURES)}).")
        return "timm"
    model_type = config.get("model_type")
    if model_type in hf.MODEL_TYPES:
        return "hf"
    if model_type in hf.REFUSED:  # a family refused by name, with its reason
        raise CheckpointError(
            f"{source}: model_type {model_type!r} is not supported: {hf.REFUSED[model_type]}.")
    raise CheckpointError(
        f"{source}: config.json has model_type {model_type!r} (architectures "
        f"{config.get('architectures')}); keras_vit reads HF model_type "
        f"{', '.join(map(repr, hf.MODEL_TYPES))} or timm ViT repos.")


def download(source):
    """The local snapshot folder of `source` ("hf://owner/name[@rev]") in the hub cache."""
    repo_id, revision = parse(source)
    hub = _hub()
    errors = hub.errors

    def fetch(filename):
        return hub.hf_hub_download(repo_id, filename, revision=revision,
                                   library_name="keras-vit")

    try:
        config_path = fetch("config.json")
        check_architecture(read_json(config_path, "hub config"), source)
        try:
            fetch(WEIGHTS)
        except errors.EntryNotFoundError as error:
            known = hub.try_to_load_from_cache(repo_id, WEIGHTS, revision=revision)
            if isinstance(error, errors.LocalEntryNotFoundError) and known is None:
                raise  # not cached and offline (a subclass of EntryNotFoundError)
            raise CheckpointError(
                f"{source} has no {WEIGHTS}: keras_vit reads single-file safetensors "
                "only (never pytorch_model.bin or other pickles; sharded weights are "
                "not supported). Where the repo's safetensors conversion is an open pull "
                f"request, name its revision: hf://{repo_id}@refs/pr/N.") from error
        try:
            fetch("preprocessor_config.json")
        except errors.EntryNotFoundError:  # absent (or absent from an offline cache)
            pass
    except errors.GatedRepoError as error:
        raise CheckpointError(
            f"{source} is a gated repo: accept its terms on huggingface.co and log in "
            "(hf auth login), then try again.") from error
    except errors.RepositoryNotFoundError as error:
        raise CheckpointError(
            f"{source}: no such repo on the Hugging Face Hub (or it is private).") from error
    except errors.RevisionNotFoundError as error:
        raise CheckpointError(f"{source}: no revision {revision!r} in {repo_id}.") from error
    except errors.LocalEntryNotFoundError as error:
        raise CheckpointError(
            f"{source} is not in the hub cache and cannot be downloaded (offline, "
            "HF_HUB_OFFLINE=1, or no network): download it once with network.") from error
    except errors.EntryNotFoundError as error:
        raise CheckpointError(f"{source} has no config.json (not a timm or HF repo).") from error
    except (errors.HfHubHTTPError, OSError) as error:
        if isinstance(error, CheckpointError):
            raise
        first = str(error).splitlines()[0] if str(error) else ""
        raise CheckpointError(
            f"could not download {source} ({type(error).__name__}: {first[:200]}).") from error
    return os.path.dirname(config_path)
