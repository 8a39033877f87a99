"""Turn-taking a user trusts: commit delay, false cut-offs and false interruptions.

The job's voice pipeline in-process (bench.voice_support: real Silero VAD and `v1-mini`
end-of-turn model, the Deepgram stand-in with its final 250 ms after the end of
speech, the LLM and voice-service stand-ins), fed a labelled set of espeak-ng speech
in real time, played back in real time:

- finished sentences: the commit delay, from the frame holding the last voiced sample
  entering the session to the user's turn being added to the conversation;
- sentences with a 400-900 ms pause in the middle ("I'd like to order ... a large
  pizza"): a false cut-off is a turn committed with the first half alone;
- back-channels ("mm-hm", "okay", "right", ...) spoken 0.5-1.5 s into a long reply: a
  false interruption is that reply ending interrupted.

Every configuration runs in the same run, in a session with stand-ins of its own: the
baseline (what sessions ran with before the character's `turn:` block), the chosen
defaults and, in the full run, a trade-off either side of them, one after the other.
`--quick` runs a few trials of the baseline and the defaults at once. The VAD's own
end-of-speech estimate is printed beside the commit delay: about 80 ms after the energy
stops on an idle machine; when it is far off, the VAD fell behind real time and the
timings of that run are not to be trusted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from livekit.agents import utils

from agent.providers import load_local_models
from bench.common import cli, pct, save, save_plot, table
from bench.voice_support import (
    POLL,
    SAMPLE_RATE,
    VoiceSession,
    character_configs,
    make_providers,
    open_session,
    provider_settings,
    quiet_logs,
    serve_providers,
    speech_end,
)
from contract.model import TurnConfig
from testkit.audio.speech import silence, speak
from testkit.standins.openai_standin import TextReply, ToolCallReply, last_user_text
from testkit.waiting import within

GOAL_COMMIT_P50_MS = 350.0
GOAL_CUT_OFFS = 0.02
GOAL_INTERRUPTIONS = 0.05

# What every voice session ran with before the `turn:` block: Silero's own 0.55 s, the
# streaming end-of-turn defaults (0.3 / 2.5 s) and livekit's interruption defaults.
BASELINE = TurnConfig(
    min_silence_seconds=0.55,
    min_delay_seconds=0.3,
    max_delay_seconds=2.5,
    interrupt_min_speech_seconds=0.5,
    interrupt_min_words=0,
)
CHOSEN = TurnConfig()  # the defaults of the character format's `turn:` block
# The full run also measures the trade-offs either side of the defaults: a shorter VAD
# silence (answers sooner, cuts off more pauses; the default before the quiet-machine
# run of docs/benchmarks.md 2b), and that with a shorter hold.
ALTERNATIVES = {
    "silence 0.3 s": CHOSEN.model_copy(update={"min_silence_seconds": 0.3}),
    "silence 0.3 s, hold 1.2 s": CHOSEN.model_copy(
        update={"min_silence_seconds": 0.3, "max_delay_seconds": 1.2}
    ),
}

FINISHED = (
    "My order has not arrived yet.",
    "I want to cancel my subscription.",
    "Can you tell me when you open tomorrow?",
    "The delivery was late again.",
    "I would like a refund please.",
    "What is the status of my order?",
    "My card was charged twice.",
    "Thanks, that is all for today.",
    "I need to change my address.",
    "Is there a vegetarian option?",
)
PAUSED = (
    ("I'd like to order", "a large pizza."),
    ("My order number is", "four five six."),
    ("Can you send it to", "my office instead?"),
    ("I was wondering if", "you deliver on Sundays."),
    ("The problem is that", "the app keeps crashing."),
    ("Could I get", "two more drinks with that?"),
)
PAUSES = (0.4, 0.55, 0.7, 0.9)
BACKCHANNELS = ("mm-hm", "okay", "right", "uh-huh", "yeah")
ASK_LONG = "Tell me about the menu."
LONG_REPLY = "We have three pizzas today: a margherita, a pepperoni, and one with peppers and olives."
SHORT_REPLY = "Sure, I can help with that."


def script(body: dict[str, Any]) -> TextReply | ToolCallReply:
    """The LLM: a long reply to the menu question (back-channels go over it), short otherwise."""
    return TextReply(LONG_REPLY if "menu" in last_user_text(body).lower() else SHORT_REPLY)


def voiced(text: str) -> tuple[np.ndarray, np.ndarray]:
    """espeak's `text` without its trailing silence, and without its leading silence,
    so that a pause put between two halves is the pause the VAD hears."""
    pcm = speak(text, SAMPLE_RATE)
    win = SAMPLE_RATE // 100
    start = next((i for i in range(0, len(pcm), win) if speech_end(pcm[: i + win], SAMPLE_RATE)), 0)
    return pcm[: speech_end(pcm, SAMPLE_RATE)], pcm[start:]


def turn_yaml(turn: TurnConfig) -> str:
    lines = [f"  {k}: {v}" for k, v in turn.model_dump().items()]
    return "turn:\n" + "\n".join(lines) + "\n"


@dataclass
class Item:
    at: float
    role: str
    text: str
    interrupted: bool
    end_of_turn_delay: float | None = None
    decided_at: float | None = None
    """When the pipeline decided the turn was over: its end of speech plus its end-of-turn
    delay (monotonic). `at` is when the turn reached the conversation, after the event loop
    got to it."""


@dataclass
class Probe:
    """One session of one configuration, with the conversation's items stamped."""

    vs: VoiceSession
    stt: Any
    items: list[Item] = field(default_factory=list)

    def expect(self, transcripts: list[str]) -> None:
        """The stand-in's next finals, whatever the last trial left unheard."""
        self.stt.transcripts[len(self.stt.finals) :] = transcripts

    def _deciding(self) -> bool:
        """An end of turn is being decided (the endpointing wait is running)."""
        activity = self.vs.conversation.session._activity
        recognition = activity._audio_recognition if activity is not None else None
        task = recognition._end_of_turn_task if recognition is not None else None
        return task is not None and not task.done()

    async def idle(self, seconds: float = 15.0) -> None:
        """Until the agent has been listening, saying nothing and deciding nothing, for 0.7 s."""
        deadline = time.monotonic() + seconds
        session = self.vs.conversation.session
        quiet_since = None
        while time.monotonic() < deadline:
            if (
                session.agent_state == "listening"
                and session.user_state == "listening"
                and not self._deciding()
            ):
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= 0.7:
                    return
            else:
                quiet_since = None
            await asyncio.sleep(0.02)

    def after(self, mark: int, role: str) -> list[Item]:
        return [i for i in self.items[mark:] if i.role == role]


async def open_probe(turn: TurnConfig, local: Any, root: Path) -> tuple[Probe, Callable[[], Awaitable[None]]]:
    providers = make_providers([])
    providers.llm.script = script
    providers.tts.max_seconds = 6.0
    serving = serve_providers(providers)
    await serving.__aenter__()
    config, dispatch, settings = character_configs(root, None, extra_yaml=turn_yaml(turn))
    assert config.turn == turn
    vs = await open_session(config, dispatch, provider_settings(settings, providers), local, speed=1.0)
    probe = Probe(vs=vs, stt=providers.stt)
    offset = time.time() - time.monotonic()

    def on_item(ev: Any) -> None:
        item = ev.item
        role = getattr(item, "role", None)
        if role in ("user", "assistant"):
            metrics = dict(item.metrics or {}) if role == "user" else {}
            stopped, eot = metrics.get("stopped_speaking_at"), metrics.get("end_of_turn_delay")
            probe.items.append(
                Item(
                    at=time.monotonic(),
                    role=role,
                    text=item.text_content or "",
                    interrupted=bool(getattr(item, "interrupted", False)),
                    end_of_turn_delay=eot,
                    decided_at=stopped + eot - offset if stopped and eot is not None else None,
                )
            )

    vs.conversation.session.on("conversation_item_added", on_item)

    async def close() -> None:
        await vs.aclose()
        await serving.__aexit__(None, None, None)

    return probe, close


# ---------------------------------------------------------------------- the three kinds of trial


async def finished_trials(probe: Probe, n: int, turn: TurnConfig) -> list[dict[str, Any]]:
    rows = []
    probe.vs.speaker.speed = 4.0  # nothing talks over these replies: play them fast
    for i in range(n):
        sentence = FINISHED[i % len(FINISHED)]
        probe.expect([sentence])
        mark = len(probe.items)
        t_end = await probe.vs.mic.say(sentence, pause_after=0.1)
        await within(lambda m=mark: bool(probe.after(m, "user")), turn.max_delay_seconds + 3, interval=POLL)
        users = probe.after(mark, "user")
        row: dict[str, Any] = {"sentence": sentence, "committed": bool(users)}
        if users:
            eot, decided = users[0].end_of_turn_delay, users[0].decided_at
            row["commit_ms"] = (decided - t_end) * 1000 if decided is not None else None
            row["added_ms"] = (users[0].at - t_end) * 1000
            if decided is not None and eot is not None:
                # where the VAD put the end of speech: ~80 ms on an idle machine, more when it lags
                row["vad_end_ms"] = (decided - eot - t_end) * 1000
            row["end_of_turn_delay_ms"] = eot * 1000 if eot is not None else None
            row["held"] = eot is not None and eot >= turn.max_delay_seconds - 0.05
        rows.append(row)
        await probe.idle()
    return rows


async def paused_trials(probe: Probe, n: int, turn: TurnConfig) -> list[dict[str, Any]]:
    rows = []
    probe.vs.speaker.speed = 4.0
    for i in range(n):
        first, second = PAUSED[i % len(PAUSED)]
        pause = PAUSES[(i // len(PAUSED) + i) % len(PAUSES)]
        speech = np.concatenate([voiced(first)[0], silence(pause, SAMPLE_RATE), voiced(second)[1]])
        probe.expect([first, second])
        mark = len(probe.items)
        await probe.vs.mic.play(speech, pause_after=0.1)
        await within(lambda m=mark: bool(probe.after(m, "user")), turn.max_delay_seconds + 3, interval=POLL)
        await probe.idle()
        users = probe.after(mark, "user")
        last_word = second.rstrip(".?!").split()[-1].lower()
        cut = bool(users) and last_word not in users[0].text.lower()
        rows.append(
            {
                "first": first,
                "pause_s": pause,
                "committed": bool(users),
                "cut_off": cut,
                "user_turns": [u.text for u in users],
            }
        )
    return rows


async def backchannel_trials(probe: Probe, n: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    probe.vs.speaker.speed = 1.0  # the back-channel goes over the reply as it plays
    for i in range(n):
        word = BACKCHANNELS[i % len(BACKCHANNELS)]
        probe.expect([ASK_LONG, word])
        mark = len(probe.items)
        frames_before = len(probe.vs.speaker.first_frames)
        await probe.vs.mic.say(ASK_LONG, pause_after=0.0)
        if not await within(lambda n=frames_before: len(probe.vs.speaker.first_frames) > n, 8, interval=POLL):
            rows.append({"word": word, "reply": False})
            await probe.idle()
            continue
        offset = rng.uniform(0.5, 1.5)
        await asyncio.sleep(offset)
        await probe.vs.mic.say(word, pause_after=0.1)
        await probe.idle(20)
        replies = probe.after(mark, "assistant")
        long_reply = next((r for r in replies if r.text.startswith(LONG_REPLY[:20])), None)
        rows.append(
            {
                "word": word,
                "reply": long_reply is not None,
                "offset_s": offset,
                "interrupted": bool(long_reply and long_reply.interrupted),
                "answered": any(u.text.strip().lower().startswith(word) for u in probe.after(mark, "user")),
            }
        )
    return rows


# ---------------------------------------------------------------------- one configuration


def share(rows: list[dict[str, Any]], key: str) -> float:
    return sum(bool(r.get(key)) for r in rows) / len(rows) if rows else float("nan")


async def run_config(name: str, turn: TurnConfig, local: Any, counts: tuple[int, int, int]) -> dict[str, Any]:
    n_finished, n_paused, n_back = counts
    with tempfile.TemporaryDirectory() as tmp:
        probe, close = await open_probe(turn, local, Path(tmp))
        try:
            await asyncio.sleep(0.5)
            f_rows = await finished_trials(probe, n_finished, turn)
            p_rows = await paused_trials(probe, n_paused, turn)
            b_rows = await backchannel_trials(probe, n_back, random.Random(7))
        finally:
            await close()
    commits = [r["commit_ms"] for r in f_rows if r.get("commit_ms") is not None]
    b_valid = [r for r in b_rows if r["reply"]]
    p_valid = [r for r in p_rows if r["committed"]]
    return {
        "name": name,
        "turn": turn.model_dump(),
        "commit_p50_ms": statistics.median(commits) if commits else float("nan"),
        "commit_p95_ms": pct(commits, 95),
        "vad_end_p50_ms": statistics.median(lags)
        if (lags := [r["vad_end_ms"] for r in f_rows if "vad_end_ms" in r])
        else float("nan"),
        "held_by_eot_model": sum(bool(r.get("held")) for r in f_rows),
        "finished_not_committed": sum(not r["committed"] for r in f_rows),
        "cut_offs": share(p_valid, "cut_off"),
        "cut_off_n": len(p_valid),
        "interruptions": share(b_valid, "interrupted"),
        "interruption_n": len(b_valid),
        "backchannels_answered": share(b_valid, "answered"),
        "finished": f_rows,
        "paused": p_rows,
        "backchannels": b_rows,
    }


def met(result: dict[str, Any]) -> dict[str, bool]:
    return {
        "commit_p50": result["commit_p50_ms"] <= GOAL_COMMIT_P50_MS,
        "cut_offs": result["cut_offs"] <= GOAL_CUT_OFFS,
        "interruptions": result["interruptions"] <= GOAL_INTERRUPTIONS,
    }


async def run(quick: bool) -> dict:
    counts = (2, 2, 1) if quick else (16, 40, 12)
    local = load_local_models()
    configs = {"baseline (before turn:)": BASELINE, "chosen defaults": CHOSEN}
    if not quick:
        configs.update(ALTERNATIVES)
    async with utils.http_context.open():
        if quick:  # both at once, to stay short
            results = list(
                await asyncio.gather(*(run_config(n, t, local, counts) for n, t in configs.items()))
            )
        else:  # one after the other: a session that lags behind real time misjudges every timing
            results = [await run_config(n, t, local, counts) for n, t in configs.items()]
    print(
        table(
            [
                "settings",
                "silence s",
                "min/max delay s",
                "interrupt s / words",
                "commit p50 ms",
                "p95 ms",
                "VAD end p50 ms",
                "held",
                "cut-offs",
                "false interruptions",
                "back-channels answered",
            ],
            [
                [
                    r["name"],
                    f"{r['turn']['min_silence_seconds']:g}",
                    f"{r['turn']['min_delay_seconds']:g} / {r['turn']['max_delay_seconds']:g}",
                    f"{r['turn']['interrupt_min_speech_seconds']:g} / {r['turn']['interrupt_min_words']}",
                    f"{r['commit_p50_ms']:.0f}",
                    f"{r['commit_p95_ms']:.0f}",
                    f"{r['vad_end_p50_ms']:.0f}",
                    f"{r['held_by_eot_model']}/{len(r['finished'])}",
                    f"{r['cut_offs']:.1%} of {r['cut_off_n']}",
                    f"{r['interruptions']:.1%} of {r['interruption_n']}",
                    f"{r['backchannels_answered']:.1%}",
                ]
                for r in results
            ],
        )
    )
    for r in results:
        goals = met(r)
        print(
            f"{r['name']}: commit p50 <= {GOAL_COMMIT_P50_MS:.0f} ms "
            f"{'met' if goals['commit_p50'] else 'NOT met'}; cut-offs <= {GOAL_CUT_OFFS:.0%} "
            f"{'met' if goals['cut_offs'] else 'NOT met'}; false interruptions <= "
            f"{GOAL_INTERRUPTIONS:.0%} {'met' if goals['interruptions'] else 'NOT met'}"
        )
        r["goals_met"] = goals
    print(f"the VAD fell behind real time {VAD_BEHIND.behind} times (load on the machine)")
    result = {"quick": quick, "configs": results, "vad_behind_warnings": VAD_BEHIND.behind}
    save("turn_taking", result)
    plot(results)
    return result


def plot(results: list[dict[str, Any]]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for r in results:
        commits = [f["commit_ms"] for f in r["finished"] if f.get("commit_ms") is not None]
        left.hist(commits, bins=20, alpha=0.6, label=r["name"])
    left.axvline(GOAL_COMMIT_P50_MS, color="green", linestyle="--", label="goal: p50")
    left.set_xlabel("commit delay after a finished sentence, ms")
    left.set_ylabel("sentences")
    left.legend()
    kinds = [
        ("cut_offs", "false cut-offs", GOAL_CUT_OFFS),
        ("interruptions", "false interruptions", GOAL_INTERRUPTIONS),
    ]
    width = 0.8 / len(results)
    for i, r in enumerate(results):
        right.bar(
            [k + i * width for k in range(len(kinds))],
            [100 * r[key] for key, _, _ in kinds],
            width,
            label=r["name"],
        )
    for k, (_, _, goal) in enumerate(kinds):
        right.hlines(
            100 * goal, k - width / 2, k + width * (len(results) - 0.5), colors="green", linestyles="--"
        )
    right.set_xticks(
        [k + width * (len(results) - 1) / 2 for k in range(len(kinds))], [label for _, label, _ in kinds]
    )
    right.set_ylabel("% of trials (goal dashed)")
    right.legend()
    fig.suptitle("Turn-taking: baseline against the chosen defaults")
    fig.tight_layout()
    save_plot(fig, "turn_taking")


class _Count(logging.Handler):
    """Counts the VAD's "slower than realtime" warnings: the machine's load, seen by the VAD."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.behind = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "slower than realtime" in str(record.msg):
            self.behind += 1


VAD_BEHIND = _Count()


def main() -> None:
    quiet_logs()
    # an interrupted reply closes its TTS request mid-stream; aiohttp logs that with a traceback
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    logging.getLogger("livekit.plugins.silero").addHandler(VAD_BEHIND)
    cli(run, __doc__)


if __name__ == "__main__":
    main()
