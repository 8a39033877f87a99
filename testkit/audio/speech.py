"""Spoken test sentences from espeak-ng, as int16 PCM at any sample rate."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from livekit import rtc
from scipy.signal import resample_poly

ESPEAK = shutil.which("espeak-ng")


@functools.cache
def speak(text: str, sample_rate: int = 16_000) -> np.ndarray:
    """`text` spoken by espeak-ng, mono int16 at `sample_rate`."""
    if ESPEAK is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run([ESPEAK, "-s", "160", "-w", str(wav), text], check=True)  # noqa: S603
        audio, rate = soundfile.read(wav, dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if rate != sample_rate:
        g = gcd(rate, sample_rate)
        audio = resample_poly(audio, sample_rate // g, rate // g)
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


def frames(pcm: np.ndarray, sample_rate: int, frame_ms: int = 20) -> list[rtc.AudioFrame]:
    """`pcm` cut into `frame_ms` audio frames (the last one padded with silence)."""
    step = sample_rate * frame_ms // 1000
    padded = np.concatenate([pcm, np.zeros((-len(pcm)) % step, dtype=np.int16)])
    return [
        rtc.AudioFrame(
            data=padded[i : i + step].tobytes(),
            sample_rate=sample_rate,
            num_channels=1,
            samples_per_channel=step,
        )
        for i in range(0, len(padded), step)
    ]


def silence(seconds: float, sample_rate: int) -> np.ndarray:
    """`seconds` of digital silence."""
    return np.zeros(int(seconds * sample_rate), dtype=np.int16)
