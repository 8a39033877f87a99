// What the call does with the agent's transcript streams and form answers.
// Private methods are driven directly: there is no LiveKit server to publish them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Call, type ErrorEvent, type FormEvent, type TranscriptEntry } from "../src/call";
import { WidgetError } from "../src/errors";

interface Internals {
  readTranscription(reader: unknown, speaker: "agent" | "user", current: () => boolean): Promise<void>;
  readRoomMetadata(raw: string | undefined): void;
  applyFormMessage(text: string): void;
  fail(err: WidgetError): void;
}

const internals = (call: Call) => call as unknown as Internals;

function reader(id: string, attributes: Record<string, string>, chunks: string[]) {
  return {
    info: { id, attributes, topic: "lk.transcription" },
    async *[Symbol.asyncIterator]() {
      for (const chunk of chunks) yield chunk;
    },
  };
}

function newCall() {
  const call = new Call(() => ({ appendChild: () => undefined }) as unknown as Node);
  const transcripts: TranscriptEntry[] = [];
  const forms: FormEvent[] = [];
  call.events.on("transcript", ({ entry }) => transcripts.push({ ...entry }));
  call.events.on("form", (event) => forms.push(event));
  return { call, transcripts, forms };
}

test("agent text arrives as deltas in one stream and is final when the stream ends", async () => {
  const { call, transcripts } = newCall();
  const stream = reader("S1", { "lk.segment_id": "SG_a", "lk.transcription_final": "false" }, ["Hel", "lo there."]);
  await internals(call).readTranscription(stream, "agent", () => true);
  assert.deepEqual(
    transcripts.map((e) => [e.text, e.final]),
    [
      ["Hel", false],
      ["Hello there.", false],
      ["Hello there.", true],
    ],
  );
  assert.deepEqual(call.transcript, [{ id: "SG_a", speaker: "agent", text: "Hello there.", final: true }]);
});

test("user interim streams replace each other within a segment until the final one", async () => {
  const { call } = newCall();
  const read = (attrs: Record<string, string>, text: string) =>
    internals(call).readTranscription(reader(`S${text.length}`, attrs, [text]), "user", () => true);
  await read({ "lk.segment_id": "SG_u", "lk.transcription_final": "false" }, "where is");
  assert.deepEqual(call.transcript[0], { id: "SG_u", speaker: "user", text: "where is", final: false });
  await read({ "lk.segment_id": "SG_u", "lk.transcription_final": "false" }, "where is my order");
  await read({ "lk.segment_id": "SG_u", "lk.transcription_final": "true" }, "Where is my order?");
  // A late interim result does not undo the final text.
  await read({ "lk.segment_id": "SG_u", "lk.transcription_final": "false" }, "where is my");
  assert.deepEqual(call.transcript, [{ id: "SG_u", speaker: "user", text: "Where is my order?", final: true }]);
});

test("segments keep the order they started in; blank text and stale calls are ignored", async () => {
  const { call, transcripts } = newCall();
  const t = internals(call);
  await t.readTranscription(reader("1", { "lk.segment_id": "A" }, ["Hi."]), "agent", () => true);
  await t.readTranscription(reader("2", { "lk.segment_id": "B" }, ["  "]), "user", () => true);
  await t.readTranscription(reader("3", { "lk.segment_id": "C" }, ["Hello."]), "user", () => true);
  await t.readTranscription(reader("4", { "lk.segment_id": "D" }, ["Old call"]), "agent", () => false);
  assert.deepEqual(
    call.transcript.map((e) => [e.id, e.speaker, e.text]),
    [
      ["A", "agent", "Hi."],
      ["C", "user", "Hello."],
    ],
  );
  assert.ok(transcripts.every((e) => e.text.trim()));
});

test("form fields come from the room metadata and answers from oshara.form messages", () => {
  const { call, forms } = newCall();
  const t = internals(call);
  t.readRoomMetadata(
    JSON.stringify({
      character_name: "Riley",
      form: {
        fields: [
          { name: "full_name", description: "Full name.", required: true },
          { name: "visit_reason", required: false },
        ],
      },
    }),
  );
  assert.deepEqual(
    call.fields.map((f) => [f.name, f.label, f.required]),
    [
      ["full_name", "Full name", true],
      ["visit_reason", "Visit reason", false],
    ],
  );
  t.applyFormMessage('{"field": "full_name", "value": "Ada Lovelace"}');
  t.applyFormMessage('{"field": "date_of_birth", "value": "1815-12-10"}');
  t.applyFormMessage("not json");
  t.applyFormMessage('{"value": "no field"}');
  assert.deepEqual(call.answers, { full_name: "Ada Lovelace", date_of_birth: "1815-12-10" });
  assert.equal(call.fields.at(-1)?.name, "date_of_birth");
  t.applyFormMessage('{"field": "full_name", "value": null}');
  assert.deepEqual(call.answers, { date_of_birth: "1815-12-10" });
  const last = forms.at(-1);
  assert.equal(last?.field, "full_name");
  assert.equal(last?.value, null);
  // Metadata without a form, or not JSON, changes nothing.
  t.readRoomMetadata("{");
  t.readRoomMetadata(JSON.stringify({ character_name: "Riley" }));
  assert.equal(call.fields.length, 3);
});

/** Everything written to the console while `run` runs. */
async function consoleDuring(run: () => Promise<void>): Promise<string[]> {
  const written: string[] = [];
  const methods = ["log", "info", "warn", "error", "debug", "trace"] as const;
  const saved = methods.map((m) => console[m]);
  for (const m of methods) console[m] = (...args: unknown[]) => written.push(args.map(String).join(" "));
  try {
    await run();
  } finally {
    methods.forEach((m, i) => {
      console[m] = saved[i];
    });
  }
  return written;
}

test("a failed call says whether to try again, and tells the site owner in the console", async () => {
  const { call } = newCall();
  const errors: ErrorEvent[] = [];
  call.events.on("error", (e) => errors.push(e));
  const written = await consoleDuring(async () => {
    internals(call).fail(new WidgetError("grant_used", "spent", { status: 403 }));
    internals(call).fail(new WidgetError("invalid_grant", "refused", { status: 401, developerMessage: "fix the key" }));
  });
  assert.deepEqual(errors, [
    { code: "grant_used", message: "spent", retryable: true, status: 403 },
    { code: "invalid_grant", message: "refused", retryable: false, status: 401 },
  ]);
  assert.deepEqual(written, ["fix the key"]);
  assert.equal(call.state, "error");
});
