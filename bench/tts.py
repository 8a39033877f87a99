"""Voice service benchmark: time to first audio byte, real-time factor, cloning, concurrency.

    python -m bench.tts                       # tiny random model on CPU: our service's overhead
    python -m bench.tts --model-dir /models --device cuda --models chatterbox-en-v1,chatterbox-turbo-v1

With the tiny model (the default: the tests' own, made once into .tools/tiny-chatterbox/) the
numbers that matter are the overhead columns: the service's time to first byte minus the
engine's own time for that first chunk, measured inside the same request (goal < 10 ms).
With real weights on a GPU, TTFB is the real thing (goal on an H100: < 300 ms for a
short sentence with a cached voice). Results go to bench/results/tts.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from voice_service.engine import VoiceEngine
from voice_service.service import create_app
from voice_service.settings import ServiceSettings

TEXTS = {
    "short": "Hello, how can I help you today?",
    "medium": "Thanks for calling. I can check your order, change the delivery address, "
    "or answer questions about our return policy.",
    "long": " ".join(
        [
            "Let me walk you through the whole process step by step.",
            "First, open the settings page and choose the account tab.",
            "Then pick the plan that suits you, and confirm with the button at the bottom.",
            "You will get an email within a few minutes with the details.",
            "If anything looks wrong, reply to that email and we will fix it the same day.",
        ]
    ),
}
RESULTS = Path(__file__).resolve().parent / "results" / "tts.json"


class FirstChunkTimer:
    """Wraps engine.synthesize to record how long each request's first chunk took in the engine."""

    def __init__(self, engine: VoiceEngine) -> None:
        self.engine = engine
        self.original = engine.synthesize
        self.durations: list[float] = []
        engine.synthesize = self  # type: ignore[method-assign]

    async def __call__(self, text: str, **kwargs: Any) -> bytes:
        started = time.perf_counter()
        pcm = await self.original(text, **kwargs)
        self.durations.append(time.perf_counter() - started)
        return pcm


async def one_request(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], sample_rate: int
) -> dict[str, float]:
    started = time.perf_counter()
    async with http.post(f"{url}/v1/speech", json=body) as resp:
        resp.raise_for_status()
        first = await resp.content.readany()
        ttfb = time.perf_counter() - started
        rest = await resp.read()
    total = time.perf_counter() - started
    audio_s = (len(first) + len(rest)) / 2 / sample_rate
    return {
        "ttfb_ms": ttfb * 1000,
        "total_s": total,
        "audio_s": audio_s,
        "rtf": total / audio_s if audio_s else 0,
    }


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "n": len(ordered),
    }


async def bench_model(
    name: str,
    engine: VoiceEngine,
    settings: ServiceSettings,
    reps: int,
    levels: list[int],
    *,
    texts: dict[str, str] = TEXTS,
    voices: bool = True,
) -> dict[str, Any]:
    clips = web.Application()
    from testkit.tts.clips import clip_bytes

    async def clip(request: web.Request) -> web.Response:
        return web.Response(
            body=clip_bytes(8.0, pitch=float(request.match_info["hz"])), content_type="audio/wav"
        )

    clips.router.add_get("/{hz}.wav", clip)
    clip_runner = web.AppRunner(clips)
    await clip_runner.setup()
    clip_site = web.TCPSite(clip_runner, "127.0.0.1", 0)
    await clip_site.start()
    clip_port = clip_runner.addresses[0][1]

    runner = web.AppRunner(create_app(settings, engines={name: engine}))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    timer = FirstChunkTimer(engine)
    result: dict[str, Any] = {"device": engine.device, "sentences": {}, "voice": {}, "concurrency": {}}
    sr = engine.sample_rate
    try:
        async with aiohttp.ClientSession() as http:
            await one_request(http, url, {"text": "Warm up.", "voice_model": name}, sr)
            overhead: list[float] = []
            for label, text in texts.items():
                runs = []
                for _ in range(reps):
                    timer.durations.clear()
                    run = await one_request(http, url, {"text": text, "voice_model": name}, sr)
                    run["engine_first_chunk_ms"] = timer.durations[0] * 1000
                    overhead.append(run["ttfb_ms"] - run["engine_first_chunk_ms"])
                    runs.append(run)
                result["sentences"][label] = {
                    "ttfb_ms": summary([r["ttfb_ms"] for r in runs]),
                    "engine_first_chunk_ms": summary([r["engine_first_chunk_ms"] for r in runs]),
                    "rtf": summary([r["rtf"] for r in runs]),
                }
            result["service_overhead_ms"] = summary(overhead)

            for kind in ("cold", "cached") if voices else ():
                runs = []
                for i in range(reps):
                    # A new pitch is a new clip (new content hash): cold. The same one again: cached.
                    hz = 100 + i * 7 if kind == "cold" else 100
                    body = {
                        "text": TEXTS["short"],
                        "voice_model": name,
                        "reference_audio_url": f"http://127.0.0.1:{clip_port}/{hz}.wav",
                    }
                    runs.append(await one_request(http, url, body, sr))
                result["voice"][kind] = {"ttfb_ms": summary([r["ttfb_ms"] for r in runs])}

            for level in levels:
                body = {"text": TEXTS["short"], "voice_model": name}
                started = time.perf_counter()
                runs = await asyncio.gather(*(one_request(http, url, body, sr) for _ in range(level)))
                wall = time.perf_counter() - started
                audio = sum(r["audio_s"] for r in runs)
                result["concurrency"][str(level)] = {
                    "ttfb_ms": summary([r["ttfb_ms"] for r in runs]),
                    "aggregate_rtf": wall / audio if audio else 0,
                }
    finally:
        engine.synthesize = timer.original  # type: ignore[method-assign]
        await runner.cleanup()
        await clip_runner.cleanup()
    return result


def print_table(name: str, r: dict[str, Any]) -> None:
    print(f"\n== {name} on {r['device']} ==")
    print(f"{'case':<22}{'TTFB med ms':>13}{'TTFB p95 ms':>13}{'engine 1st ms':>15}{'RTF med':>9}")
    for label, s in r["sentences"].items():
        print(
            f"{label + ' sentence':<22}{s['ttfb_ms']['median']:>13.1f}{s['ttfb_ms']['p95']:>13.1f}"
            f"{s['engine_first_chunk_ms']['median']:>15.1f}{s['rtf']['median']:>9.2f}"
        )
    for kind, s in r["voice"].items():
        print(f"{'voice ' + kind:<22}{s['ttfb_ms']['median']:>13.1f}{s['ttfb_ms']['p95']:>13.1f}")
    for level, s in r["concurrency"].items():
        print(
            f"{'concurrency ' + level:<22}{s['ttfb_ms']['median']:>13.1f}{s['ttfb_ms']['p95']:>13.1f}"
            f"{'':>15}{s['aggregate_rtf']:>9.2f}"
        )
    o = r["service_overhead_ms"]
    print(
        f"service overhead on first byte: median {o['median']:.2f} ms, p95 {o['p95']:.2f} ms (goal < 10 ms)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, help="CHATTERBOX_MODEL_DIR; default: a tiny random model")
    parser.add_argument("--models", default="chatterbox-en-v1", help="comma-separated; tiny: en and turbo")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: 8 for the tiny model")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="make bench-quick: the short sentence once, no cloned voice, one request at a time",
    )
    args = parser.parse_args()
    texts = {"short": TEXTS["short"]} if args.quick else TEXTS
    if args.quick:
        args.reps, args.concurrency = 1, "1"

    model_dir = args.model_dir
    max_new_tokens = args.max_new_tokens
    if model_dir is None:
        from testkit.tts.engine import tiny_model_dir

        # The tests' own tiny models: made once into .tools/tiny-chatterbox/, then shared.
        for name in args.models.split(","):
            model_dir = tiny_model_dir(name)
        max_new_tokens = max_new_tokens or 8
    settings = ServiceSettings(
        _env_file=None,
        model_dir=model_dir,
        models=args.models,
        device=args.device,
        max_new_tokens=max_new_tokens,
        reference_allowed_hosts=["127.0.0.1"],
        conditionals_disk_cache=False,
    )
    levels = [int(n) for n in args.concurrency.split(",")]
    results: dict[str, Any] = {"max_new_tokens": max_new_tokens, "model_dir": str(model_dir), "models": {}}
    for name in settings.models:
        started = time.perf_counter()
        engine = await asyncio.to_thread(VoiceEngine.load, name, settings)
        load_s = time.perf_counter() - started
        try:
            r = await bench_model(
                name, engine, settings, args.reps, levels, texts=texts, voices=not args.quick
            )
        finally:
            engine.close()
        r["load_s"] = load_s
        results["models"][name] = r
        print_table(name, r)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    import warnings

    # Third-party deprecations printed at import and on every call (diffusers, torch); not ours.
    warnings.filterwarnings("ignore", category=FutureWarning)
    asyncio.run(main())
