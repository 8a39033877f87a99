"""Settings, weight locations and the clear error for a missing model (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.voice_models import VOICE_MODELS
from voice_service.settings import ServiceSettings
from voice_service.weights import ModelNotFoundError, locate

pytestmark = pytest.mark.unit


def test_settings_read_comma_separated_lists_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATTERBOX_MODELS", "chatterbox-en-v1, chatterbox-turbo-v1")
    monkeypatch.setenv("CHATTERBOX_REFERENCE_ALLOWED_HOSTS", "clips.test")
    monkeypatch.setenv("CHATTERBOX_DEVICE", "cuda")
    settings = ServiceSettings(_env_file=None)
    assert settings.models == ["chatterbox-en-v1", "chatterbox-turbo-v1"]
    assert settings.reference_allowed_hosts == ["clips.test"]
    assert settings.device == "cuda"


def test_production_defaults_allow_no_private_hosts() -> None:
    settings = ServiceSettings(_env_file=None)
    assert settings.reference_allowed_hosts == []
    assert settings.reference_timeout_s == 10
    assert settings.reference_max_bytes == 10 * 1024 * 1024
    assert settings.reference_max_redirects == 3


def test_unknown_models_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATTERBOX_MODELS", "chatterbox-en-v2")
    with pytest.raises(ValueError, match="unknown voice models"):
        ServiceSettings(_env_file=None)


def test_a_missing_model_dir_names_the_download_command(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"python -m voice_service download chatterbox-en-v1"):
        locate(VOICE_MODELS["chatterbox-en-v1"], model_dir=tmp_path, cache_dir=tmp_path)


def test_a_model_missing_from_the_cache_names_the_download_command(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="download-files"):
        locate(VOICE_MODELS["chatterbox-turbo-v1"], model_dir=None, cache_dir=tmp_path)


def test_a_model_dir_entry_is_found(tmp_path: Path) -> None:
    (tmp_path / "chatterbox-en-v1").mkdir()
    assert locate(VOICE_MODELS["chatterbox-en-v1"], model_dir=tmp_path, cache_dir=tmp_path) == (
        tmp_path / "chatterbox-en-v1"
    )


class RecordingModel:
    """Stands in for a chatterbox model object: records what generate() was given."""

    sr = 24_000

    def __init__(self) -> None:
        from types import SimpleNamespace

        self.conds = SimpleNamespace(t3="default-t3", gen={"default": True})
        self.calls: list[tuple[str, dict, object]] = []

    def generate(self, text: str, **kwargs: object) -> object:
        import torch

        self.calls.append((text, kwargs, self.conds))
        return torch.zeros(1, 480)


@pytest.mark.filterwarnings("ignore:`LoRACompatibleLinear` is deprecated:FutureWarning")
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("chatterbox-en-v1", {"temperature": 0.7, "exaggeration": 0.9, "cfg_weight": 0.3}),
        ("chatterbox-turbo-v1", {"temperature": 0.7, "exaggeration": 0.0, "cfg_weight": 0.0}),
        (
            "chatterbox-multilingual-v1",
            {"temperature": 0.7, "exaggeration": 0.9, "cfg_weight": 0.3, "language_id": "pt"},
        ),
    ],
)
async def test_each_engine_gets_the_arguments_its_class_takes(name: str, expected: dict) -> None:
    from contract.model import VoiceSettings
    from voice_service.engine import VoiceEngine

    model = RecordingModel()
    engine = VoiceEngine(VOICE_MODELS[name], model, device="cpu")
    try:
        voice = VoiceSettings(exaggeration=0.9, cfg_weight=0.3, temperature=0.7)
        pcm = await engine.synthesize("Olá.", conditionals=None, voice=voice, language="pt")
        assert len(pcm) == 960
        _, kwargs, conds = model.calls[0]
        assert kwargs == expected
        # The default voice was set for the call, as a copy the call may change freely.
        assert type(conds).__name__ == "Conditionals"
        assert conds.t3 == "default-t3"
        assert engine.queue_depth == 0
        assert engine.stats.utterances == 1
    finally:
        engine.close()
