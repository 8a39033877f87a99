// Talk or type: a text-only call never asks for the microphone, typed turns go out on
// lk.chat and into the transcript, and the script tag and start() choose the mode.
// The room is a fake (there is no LiveKit server here) with the calls the widget makes.
import "./fake-page";
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { CHAT_TOPIC, MAX_TYPED_CHARS } from "../src/agent-contract";
import { Call, type StateEvent, type TranscriptEntry } from "../src/call";
import type { SessionRequest } from "../src/session-api";
import { OsharaWidget, optionsFromScript } from "../src/widget";

interface Internals {
  newRoom(): unknown;
  openMicrophone(): Promise<unknown>;
  readTranscription(reader: unknown, speaker: "agent" | "user", current: () => boolean): Promise<void>;
}

const internals = (call: Call) => call as unknown as Internals;

/** A room that records what the call publishes and sends. */
function fakeRoom() {
  const record = { published: [] as unknown[], sent: [] as { text: string; topic?: string }[], startAudio: 0 };
  const room = {
    metadata: JSON.stringify({ character_name: "Sam", mode: "text" }),
    remoteParticipants: new Map(),
    canPlaybackAudio: true,
    failSend: false,
    localParticipant: {
      identity: "user-1",
      trackPublications: new Map(),
      publishTrack: async (track: unknown) => {
        record.published.push(track);
      },
      sendText: async (text: string, options?: { topic?: string }) => {
        if (room.failSend) throw new Error("data channel closed");
        record.sent.push({ text, topic: options?.topic });
        return { id: `T${record.sent.length}` };
      },
    },
    on: () => room,
    registerTextStreamHandler: () => undefined,
    removeAllListeners: () => room,
    connect: async () => undefined,
    disconnect: async () => undefined,
    startAudio: async () => {
      record.startAudio++;
    },
  };
  return { room, record };
}

const realFetch = globalThis.fetch;
afterEach(() => {
  globalThis.fetch = realFetch;
});

/** The token server: answers 201 with `mode`, recording the bodies it was sent. */
function tokenServer(mode: "voice" | "text") {
  const bodies: SessionRequest[] = [];
  globalThis.fetch = async (_url, init) => {
    bodies.push(JSON.parse(String(init?.body)));
    const started = { token: "lk-token", livekit_url: "wss://lk", session_id: "s1", mode };
    return new Response(JSON.stringify(started), { status: 201 });
  };
  return bodies;
}

/** A call on a fake room whose microphone is counted, never opened. */
function newCall() {
  const call = new Call(() => ({ appendChild: () => undefined }) as unknown as Node);
  const { room, record } = fakeRoom();
  const mic = { opened: 0, stopped: 0 };
  internals(call).newRoom = () => room;
  internals(call).openMicrophone = async () => {
    mic.opened++;
    return { stop: () => mic.stopped++ };
  };
  const states: StateEvent[] = [];
  const transcript: TranscriptEntry[] = [];
  call.events.on("state", (e) => states.push(e));
  call.events.on("transcript", ({ entry }) => transcript.push(entry));
  return { call, room, record, mic, states, transcript };
}

test("a text-only call joins without the microphone and publishes nothing", async () => {
  const bodies = tokenServer("text");
  let asked = 0;
  const saved = Object.getOwnPropertyDescriptor(globalThis, "navigator");
  Object.defineProperty(globalThis, "navigator", {
    configurable: true,
    value: { mediaDevices: { getUserMedia: async () => asked++ } },
  });
  try {
    const { call, record, mic, states } = newCall();
    await call.start("https://calls.example.com", { agent: "support-bot", mode: "text" });
    assert.equal(call.state, "connected");
    assert.equal(call.mode, "text");
    assert.deepEqual([mic.opened, asked], [0, 0]);
    assert.deepEqual(record.published, []);
    assert.equal(record.startAudio, 0); // no agent audio to play, so no autoplay prompt either
    assert.ok(!states.some((s) => s.state === "requesting_microphone"));
    assert.ok(states.every((s) => s.mode === "text"));
    assert.equal(bodies[0].mode, "text");
  } finally {
    if (saved) Object.defineProperty(globalThis, "navigator", saved);
    else delete (globalThis as { navigator?: unknown }).navigator;
  }
});

test("a voice call whose character only types lets the microphone go", async () => {
  tokenServer("text");
  const { call, record, mic } = newCall();
  await call.start("https://calls.example.com", { agent: "text-only-bot" });
  assert.equal(call.state, "connected");
  assert.equal(call.mode, "text");
  assert.deepEqual([mic.opened, mic.stopped], [1, 1]);
  assert.deepEqual(record.published, []);
});

test("a voice call publishes the microphone and plays the agent", async () => {
  tokenServer("voice");
  const { call, record, mic } = newCall();
  await call.start("https://calls.example.com", { agent: "support-bot" });
  assert.equal(call.mode, "voice");
  assert.equal(mic.opened, 1);
  assert.equal(record.published.length, 1);
  assert.equal(record.startAudio, 1);
});

test("a typed turn goes out on lk.chat and into the transcript as typed", async () => {
  tokenServer("voice");
  const { call, record, transcript } = newCall();
  await call.start("https://calls.example.com", { agent: "support-bot" });
  assert.equal(await call.send("  Where is my order?  "), true);
  assert.deepEqual(record.sent, [{ text: "Where is my order?", topic: CHAT_TOPIC }]);
  assert.equal(CHAT_TOPIC, "lk.chat");
  assert.deepEqual(transcript.at(-1), {
    id: "typed-1",
    speaker: "user",
    text: "Where is my order?",
    final: true,
    source: "text",
  });
  // what the agent says back in a voice call was spoken
  const stream = {
    info: { id: "S1", attributes: { "lk.segment_id": "SG_1" }, topic: "lk.transcription" },
    async *[Symbol.asyncIterator]() {
      yield "It shipped yesterday.";
    },
  };
  await internals(call).readTranscription(stream, "agent", () => true);
  assert.deepEqual(
    call.transcript.map((e) => [e.speaker, e.source]),
    [
      ["user", "text"],
      ["agent", "voice"],
    ],
  );
});

test("blank, over-long, unconnected and failed turns are not sent and not shown", async () => {
  tokenServer("text");
  const { call, room, record, transcript } = newCall();
  assert.equal(await call.send("before the call"), false);
  await call.start("https://calls.example.com", { agent: "support-bot", mode: "text" });
  assert.equal(await call.send("   "), false);
  assert.equal(await call.send("x".repeat(MAX_TYPED_CHARS + 1)), false);
  // the limit counts characters, not UTF-16 units: 2,000 emoji are fine
  assert.equal(await call.send("🙂".repeat(MAX_TYPED_CHARS)), true);
  room.failSend = true;
  assert.equal(await call.send("lost"), false);
  call.end();
  assert.equal(await call.send("after the call"), false);
  assert.deepEqual(
    record.sent.map((s) => [...s.text].length),
    [MAX_TYPED_CHARS],
  );
  assert.equal(transcript.length, 1);
  // in a text-only call the agent's lines are text too
  assert.equal(transcript[0].source, "text");
});

test("data-mode and start({mode}) choose the mode; a bad data-mode is ignored with a warning", async () => {
  const tag = (dataset: Record<string, string>) => ({ dataset }) as unknown as HTMLScriptElement;
  assert.equal(optionsFromScript(tag({ agent: "a", mode: "text" }))?.mode, "text");
  assert.equal(optionsFromScript(tag({ agent: "a" }))?.mode, undefined);
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (message: string) => warned.push(message);
  try {
    assert.equal(optionsFromScript(tag({ agent: "a", mode: "video" }))?.mode, undefined);
  } finally {
    console.warn = warn;
  }
  assert.equal(warned.length, 1);

  const w = new OsharaWidget({ agent: "a", server: "https://calls.example.com", headless: true, mode: "text" });
  const bodies: SessionRequest[] = [];
  (w as unknown as { call: { start: (s: string, body: SessionRequest) => Promise<void> } }).call.start = async (
    _server,
    body,
  ) => {
    bodies.push(body);
  };
  await w.start();
  await w.start({ mode: "voice" });
  assert.deepEqual(
    bodies.map((b) => b.mode),
    ["text", "voice"],
  );
  // no call, nothing sent
  assert.equal(await w.send("hello"), false);
});
