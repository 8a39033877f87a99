"""Where each voice model's weights live, and the command that fetches them."""

from __future__ import annotations

from pathlib import Path

from contract.voice_models import VOICE_MODELS, VoiceModel

# The files each chatterbox class's from_local() reads (chatterbox-tts 0.1.7), as
# huggingface_hub allow_patterns.
ENGINE_FILES: dict[str, list[str]] = {
    "tts": ["ve.safetensors", "t3_cfg.safetensors", "s3gen.safetensors", "tokenizer.json", "conds.pt"],
    "multilingual": [
        "ve.pt",
        "t3_mtl23ls_v2.safetensors",
        "s3gen.pt",
        "grapheme_mtl_merged_expanded_v1.json",
        "conds.pt",
        "Cangjie5_TC.json",
    ],
    "turbo": ["*.safetensors", "*.json", "*.txt", "*.pt", "*.model"],
}
DOWNLOAD_HINT = "python -m voice_service download {name}  (or: python -m agent download-files)"


class ModelNotFoundError(RuntimeError):
    """A voice model's weights are not on this machine."""


def download(names: list[str], cache_dir: Path) -> dict[str, Path]:
    """Fetch the weights of `names` from the Hugging Face hub into `cache_dir`.

    Returns:
        Each model's local snapshot directory.
    """
    from huggingface_hub import snapshot_download

    paths: dict[str, Path] = {}
    for name in names:
        model = VOICE_MODELS[name]
        paths[name] = Path(
            snapshot_download(
                repo_id=model.hf_repo, allow_patterns=ENGINE_FILES[model.engine], cache_dir=cache_dir
            )
        )
    return paths


def locate(model: VoiceModel, *, model_dir: Path | None, cache_dir: Path) -> Path:
    """The directory holding `model`'s weights, without touching the network.

    With `model_dir` set, that is `model_dir/<name>`; otherwise the snapshot that
    `download` left in `cache_dir`.

    Raises:
        ModelNotFoundError: the weights are missing; the message names the command that fetches them.
    """
    hint = DOWNLOAD_HINT.format(name=model.name)
    if model_dir is not None:
        path = model_dir / model.name
        if not path.is_dir():
            raise ModelNotFoundError(
                f"voice model {model.name!r} not found in CHATTERBOX_MODEL_DIR: no directory {path}; "
                f"fetch it with `{hint}` or copy its files there"
            )
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(
                repo_id=model.hf_repo,
                allow_patterns=ENGINE_FILES[model.engine],
                cache_dir=cache_dir,
                local_files_only=True,
            )
        )
    except LocalEntryNotFoundError:
        raise ModelNotFoundError(
            f"voice model {model.name!r} is not downloaded into {cache_dir}; fetch it with `{hint}`"
        ) from None
