"""The character format: shipped files, bad files, origins, templates, voice models."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract import DEFAULT_CHARACTERS_DIR, CharacterFileError, load_character, load_characters
from contract.model import TurnConfig
from contract.origins import origin_allowed, parse_origin, validate_origin_pattern
from contract.session_config import SessionConfig
from contract.templates import MissingVariables, RenderedTooLong, render
from contract.voice_models import VoiceModelError, resolve_voice_model

pytestmark = pytest.mark.unit


def test_every_shipped_character_loads():
    characters = load_characters(DEFAULT_CHARACTERS_DIR)
    assert {"support-bot", "receptionist", "intake"} <= set(characters)
    for character in characters.values():
        assert character.active
        assert "http://localhost:*" in character.allowed_origins
    assert characters["intake"].form is not None
    # none is exploitable as shipped: a page alone cannot steer the prompt, the voice or the tools
    for character in characters.values():
        assert not {"system_prompt", "reference_audio_url", "mcp_headers"} & set(character.browser_overrides)
    assert characters["receptionist"].voice_model == "chatterbox-multilingual-v1"
    # each is analysed after its calls: a summary, fields and at least one success question
    for character in characters.values():
        assert character.analysis is not None and character.analysis.summary.enabled
        assert character.analysis.fields and character.analysis.success


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ("analysis: {summary: false}", "needs a summary, a field or a success criterion"),
        ("analysis: {fields: [{name: a}, {name: a}]}", "duplicate analysis field names: a"),
        ("analysis: {success: [{name: ok}]}", "Field required"),
        ("analysis: {fields: [{name: c, type: choice}]}", "needs a non-empty 'choices'"),
        ("analysis: {summary: {instruction: hi, tone: dry}}", "Extra inputs"),
    ],
)
def test_a_bad_analysis_block_is_refused(tmp_path, block, words):
    path = write(tmp_path, "bad", f"slug: bad\nname: B\nsystem_prompt: hi\n{block}\n")
    with pytest.raises(CharacterFileError) as err:
        load_character(path)
    assert words in str(err.value)


def test_an_analysis_summary_is_on_off_or_an_instruction(tmp_path):
    on = load_character(
        write(tmp_path, "switched", "slug: switched\nname: B\nsystem_prompt: hi\nanalysis: {summary: true}\n")
    )
    assert on.analysis is not None and on.analysis.summary.enabled and not on.analysis.summary.instruction
    told = load_character(
        write(
            tmp_path,
            "told",
            "slug: told\nname: B\nsystem_prompt: hi\nanalysis: {summary: {instruction: Brief.}}\n",
        )
    )
    assert told.analysis is not None and told.analysis.summary.instruction == "Brief."


def write(tmp_path: Path, slug: str, text: str) -> Path:
    path = tmp_path / f"{slug}.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("slug: bad\nname: B\nsystem_prompt: hi\nlanguage: klingonese\n", "language", "BCP-47"),
        ("slug: bad\nname: B\nsystem_prompt: hi\nvoice_model: nope\n", "voice_model", "unknown voice model"),
        ("slug: bad\nname: B\nsystem_prompt: hi\ncolour: blue\n", "colour", "Extra inputs"),
        ("slug: bad\nname: B\n", "system_prompt", "Field required"),
        (
            "slug: bad\nname: B\nsystem_prompt: hi\nallowed_origins: ['https://x.com/path']\n",
            "allowed_origins.0",
            "",
        ),
        (
            "slug: bad\nname: B\nsystem_prompt: hi\nmax_concurrent_sessions: 0\n",
            "max_concurrent_sessions",
            "",
        ),
        ("slug: bad\nname: B\nsystem_prompt: hi\nlocked_fields: [agent]\n", "locked_fields.0", ""),
        ("slug: bad\nname: B\nsystem_prompt: hi\nbrowser_overrides: [grant]\n", "browser_overrides.0", ""),
        (
            "slug: bad\nname: B\nsystem_prompt: hi\nlocked_fields: [greeting]\nbrowser_overrides: [greeting]\n",
            "(file)",
            "both locked and in browser_overrides: greeting",
        ),
        (
            "slug: bad\nname: B\nsystem_prompt: hi\nform:\n  fields:\n    - {name: c, type: choice}\n",
            "form.fields.0",
            "choices",
        ),
        (
            "slug: bad\nname: B\nsystem_prompt: hi\nmcp_servers:\n  - {name: a, url: 'not a url'}\n",
            "mcp_servers.0.url",
            "",
        ),
        (
            "slug: bad\nname: B\nsystem_prompt: hi\nvoice_model: chatterbox-turbo-v1\nlanguage: cy\n",
            "(file)",
            "no voice model can speak",
        ),
        ("slug: other\nname: B\nsystem_prompt: hi\n", "slug", "must match the file name"),
        ("slug: bad\nname: [unclosed\n", "(file)", "YAML"),
        ("- just\n- a list\n", "(file)", "mapping"),
    ],
)
def test_a_bad_file_names_the_file_the_field_and_the_fault(tmp_path, text, field, words):
    path = write(tmp_path, "bad", text)
    with pytest.raises(CharacterFileError) as info:
        load_character(path)
    message = str(info.value)
    assert str(path) in message
    assert field in message
    assert words in message


def test_duplicate_slugs_across_yaml_and_yml(tmp_path):
    write(tmp_path, "twin", "slug: twin\nname: T\nsystem_prompt: hi\n")
    (tmp_path / "twin.yml").write_text("slug: twin\nname: T\nsystem_prompt: hi\n")
    with pytest.raises(CharacterFileError, match="defined twice"):
        load_characters(tmp_path)


def test_missing_directory():
    with pytest.raises(FileNotFoundError):
        load_characters(Path("/nonexistent/characters"))


@pytest.mark.parametrize(
    ("origin", "patterns", "allowed"),
    [
        ("https://example.com", ["https://example.com"], True),
        ("https://EXAMPLE.com:443", ["https://example.com"], True),
        ("https://example.com:444", ["https://example.com"], False),
        ("http://localhost:1234", ["http://localhost:*"], True),
        ("https://localhost:1234", ["http://localhost:*"], False),
        ("https://a.example.com", ["https://*.example.com"], True),
        ("https://example.com", ["https://*.example.com"], False),
        ("https://badexample.com", ["https://*.example.com"], False),
        ("https://a.b.example.com", ["https://*.example.com"], True),
        ("https://.example.com", ["https://*.example.com"], False),
        ("https://..example.com", ["https://*.example.com"], False),
        ("https://a..example.com", ["https://*.example.com"], False),
        ("https://.a.example.com", ["https://*.example.com"], False),
        ("https://a%2e.example.com", ["https://*.example.com"], False),
        ("http://[::1]:8080", ["http://[::1]:*"], True),
        ("https://anything.test", ["*"], True),
    ],
)
def test_origin_patterns(origin, patterns, allowed):
    parsed = parse_origin(origin)
    assert parsed is not None
    assert origin_allowed(parsed, [validate_origin_pattern(p) for p in patterns]) is allowed


@pytest.mark.parametrize("value", ["null", "file:///x", "https://a.com/path", "https://user@a.com", ""])
def test_unparseable_origins(value):
    assert parse_origin(value) is None


def test_templates():
    meta = {"name": "Ana", "user": {"plan": "pro", "n": 3}, "flag": True}
    assert render("Hi {{name}} on {{ user.plan }} x{{user.n}} {{flag}}", meta) == "Hi Ana on pro x3 true"
    assert render("Hi {{nick|friend}}", meta) == "Hi friend"
    with pytest.raises(MissingVariables) as info:
        render("{{b}} {{a}} {{a}} {{c|ok}}", meta)
    assert info.value.names == ["a", "b"]
    with pytest.raises(RenderedTooLong):
        render("{{big}}" * 100, {"big": "x" * 1000}, max_length=40_000)


def test_voice_model_resolution():
    assert (
        resolve_voice_model(requested=None, default="chatterbox-en-v1", language="en-US").name
        == "chatterbox-en-v1"
    )
    assert (
        resolve_voice_model(requested=None, default="chatterbox-en-v1", language="ja").name
        == "chatterbox-multilingual-v1"
    )
    assert (
        resolve_voice_model(requested=None, default="chatterbox-en-v1", language=None).name
        == "chatterbox-en-v1"
    )
    with pytest.raises(VoiceModelError, match="cannot speak"):
        resolve_voice_model(requested="chatterbox-turbo-v1", default="chatterbox-en-v1", language="fr")
    with pytest.raises(VoiceModelError, match="no voice model"):
        resolve_voice_model(requested=None, default="chatterbox-en-v1", language="cy")
    with pytest.raises(VoiceModelError, match="unknown"):
        resolve_voice_model(requested="x", default="chatterbox-en-v1", language=None)


# ---------------------------------------------------------------------- the turn: block

TURN_BASE = "slug: c\nname: C\nsystem_prompt: hi\n"
TURN = (
    "turn:\n  min_silence_seconds: 0.25\n  min_delay_seconds: 0.2\n  max_delay_seconds: 1.5\n"
    "  interrupt_min_speech_seconds: 0.4\n  interrupt_min_words: 3\n"
)


def turn_character(tmp_path: Path, text: str):
    return load_character(write(tmp_path, "c", TURN_BASE + text))


def test_a_character_without_a_turn_block_gets_the_measured_defaults(tmp_path):
    turn = turn_character(tmp_path, "").turn
    assert turn == TurnConfig()
    assert (turn.min_silence_seconds, turn.min_delay_seconds, turn.max_delay_seconds) == (0.55, 0.3, 2.5)
    assert (turn.interrupt_min_speech_seconds, turn.interrupt_min_words) == (0.5, 2)


def test_the_turn_block_travels_in_the_room_metadata(tmp_path):
    char = turn_character(tmp_path, TURN)
    config = SessionConfig.for_character(
        "ses_turn",
        char,
        language="en-US",
        system_prompt="hi",
        greeting="",
        voice_model="chatterbox-en-v1",
        reference_audio_url=None,
        metadata={},
    )
    assert config.turn == char.turn
    assert SessionConfig.from_json(config.to_json()).turn.interrupt_min_words == 3


@pytest.mark.parametrize(
    ("block", "field", "words"),
    [
        # livekit-agents refuses a VAD silence under 0.25 s beside the end-of-turn model
        ("turn: {min_silence_seconds: 0.2}", "turn.min_silence_seconds", "greater than or equal to 0.25"),
        ("turn: {min_silence_seconds: 3}", "turn.min_silence_seconds", "less than or equal to 2"),
        ("turn: {min_delay_seconds: -0.1}", "turn.min_delay_seconds", ""),
        ("turn: {max_delay_seconds: 11}", "turn.max_delay_seconds", ""),
        ("turn: {min_delay_seconds: 2, max_delay_seconds: 1}", "turn", "must not be below"),
        ("turn: {interrupt_min_speech_seconds: 0}", "turn.interrupt_min_speech_seconds", ""),
        ("turn: {interrupt_min_words: -1}", "turn.interrupt_min_words", ""),
        ("turn: {interrupt_min_words: 11}", "turn.interrupt_min_words", ""),
        ("turn: {interrupt_min_words: 1.5}", "turn.interrupt_min_words", ""),
        ("turn: {min_silence: 0.3}", "turn.min_silence", "Extra inputs"),
        ("turn: {min_delay_seconds: soon}", "turn.min_delay_seconds", ""),
    ],
)
def test_a_bad_turn_block_names_the_field(tmp_path, block, field, words):
    with pytest.raises(CharacterFileError) as info:
        turn_character(tmp_path, block + "\n")
    assert field in str(info.value)
    assert words in str(info.value)
