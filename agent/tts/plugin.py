"""The agent's TTS: a livekit-agents `tts.TTS` that streams PCM from the voice service.

A thin async client. The service owns the model; this class posts the text and
pushes the PCM it streams back into LiveKit audio frames as it arrives. livekit's
`ChunkedStream` reports time to first byte (TTSMetrics.ttfb) from the first frame.

Failures map to livekit's API error family, which its retry logic understands:

    APIError
     ├── APIConnectionError   the service could not be reached, or the stream broke
     ├── APITimeoutError      no answer within the connect or request time limit
     └── APIStatusError       the service answered with an error status (4xx: not retried)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

import aiohttp
from livekit.agents import (
    APIConnectionError,
    APIConnectOptions,
    APIStatusError,
    APITimeoutError,
    tts,
    utils,
)
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import is_given

from contract.model import VoiceSettings
from contract.voice_models import DEFAULT_VOICE_MODEL
from voice_service.protocol import (
    NUM_CHANNELS,
    SAMPLE_RATE,
    SAMPLE_RATE_HEADER,
    SPEECH_PATH,
    VOICE_FALLBACK_HEADER,
    SpeechRequest,
)

from .log import logger

_ERROR_BODY_LIMIT = 4096


@dataclass
class _TTSOptions:
    base_url: str
    voice_model: str
    language: str | None
    reference_audio_url: str | None
    voice: VoiceSettings
    request_timeout: float


class TTS(tts.TTS):
    """Chatterbox speech from an Oshara voice service (`python -m voice_service serve`).

    Args:
        base_url: The service, e.g. "http://127.0.0.1:8091" (CHATTERBOX_URL, or
            what `EmbeddedVoiceService.start()` returns).
        voice_model: A name from contract.voice_models.VOICE_MODELS.
        language: BCP-47 tag of the session; the multilingual model speaks it.
        reference_audio_url: A clip to clone the voice from; refused clips fall back to
            the model's default voice (see `voice_fallback`).
        voice: Exaggeration, CFG weight and temperature.
        http_session: An aiohttp session to use; by default livekit's per-job session.
        request_timeout: Seconds a whole utterance may take to stream.
    """

    def __init__(
        self,
        *,
        base_url: str,
        voice_model: str = DEFAULT_VOICE_MODEL,
        language: str | None = None,
        reference_audio_url: str | None = None,
        voice: VoiceSettings | None = None,
        http_session: aiohttp.ClientSession | None = None,
        request_timeout: float = 60.0,
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=SAMPLE_RATE,
            num_channels=NUM_CHANNELS,
        )
        self._opts = _TTSOptions(
            base_url=base_url.rstrip("/"),
            voice_model=voice_model,
            language=language,
            reference_audio_url=reference_audio_url,
            voice=voice or VoiceSettings(),
            request_timeout=request_timeout,
        )
        self._session = http_session
        self._voice_fallback: str | None = None

    @property
    def model(self) -> str:
        """The voice model name."""
        return self._opts.voice_model

    @property
    def provider(self) -> str:
        """The provider name livekit reports in metrics."""
        return "chatterbox"

    @property
    def voice_fallback(self) -> str | None:
        """Why the last utterance used the default voice instead of the reference clip, if it did."""
        return self._voice_fallback

    def update_options(
        self,
        *,
        voice_model: NotGivenOr[str] = NOT_GIVEN,
        language: NotGivenOr[str | None] = NOT_GIVEN,
        reference_audio_url: NotGivenOr[str | None] = NOT_GIVEN,
        voice: NotGivenOr[VoiceSettings] = NOT_GIVEN,
    ) -> None:
        """Change options for the next utterances."""
        if is_given(voice_model):
            self._opts.voice_model = voice_model
        if is_given(language):
            self._opts.language = language
        if is_given(reference_audio_url):
            self._opts.reference_audio_url = reference_audio_url
        if is_given(voice):
            self._opts.voice = voice

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        """Speak `text`; audio frames stream as the service produces each sentence."""
        return ChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = utils.http_context.http_session()
        return self._session

    def _note_fallback(self, reason: str | None) -> None:
        if reason and reason != self._voice_fallback:
            logger.warning("voice service used the default voice", extra={"reason": reason})
        self._voice_fallback = reason


class ChunkedStream(tts.ChunkedStream):
    """One utterance streamed from the voice service."""

    def __init__(self, *, tts: TTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._tts: TTS = tts
        self._opts = replace(tts._opts)

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        opts = self._opts
        payload = SpeechRequest.model_construct(
            text=self._input_text,
            voice_model=opts.voice_model,
            language=opts.language,
            reference_audio_url=opts.reference_audio_url,
            voice=opts.voice,
        ).model_dump(mode="json")
        try:
            async with self._tts._ensure_session().post(
                f"{opts.base_url}{SPEECH_PATH}",
                json=payload,
                timeout=aiohttp.ClientTimeout(
                    total=opts.request_timeout, sock_connect=self._conn_options.timeout
                ),
            ) as resp:
                if resp.status != 200:
                    body = (await resp.content.read(_ERROR_BODY_LIMIT)).decode("utf-8", "replace")
                    raise APIStatusError(
                        "voice service refused the request",
                        status_code=resp.status,
                        request_id=None,
                        body=body,
                    )
                self._tts._note_fallback(resp.headers.get(VOICE_FALLBACK_HEADER))
                output_emitter.initialize(
                    request_id=utils.shortuuid(),
                    sample_rate=int(resp.headers.get(SAMPLE_RATE_HEADER, SAMPLE_RATE)),
                    num_channels=NUM_CHANNELS,
                    mime_type="audio/pcm",
                )
                try:
                    async for data, _ in resp.content.iter_chunks():
                        output_emitter.push(data)
                except asyncio.CancelledError:
                    # livekit cancelled (the user interrupted): drop the connection so the
                    # service stops synthesising at its next sentence.
                    resp.close()
                    raise
                output_emitter.flush()
        except TimeoutError:
            raise APITimeoutError() from None
        except aiohttp.ClientResponseError as exc:
            raise APIStatusError(exc.message, status_code=exc.status, request_id=None, body=None) from None
        except APIStatusError:
            raise
        except Exception as exc:
            raise APIConnectionError() from exc
