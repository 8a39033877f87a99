// What the call does with the agent's transcript streams and form answers.
// Private methods are driven directly: there is no LiveKit server to publish them.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { Call, type ErrorEvent, type FormEvent, type TranscriptEntry } from "../src/call";
import { WidgetError } from "../src/errors";
import { type GrantSource, grantFrom } from "../src/grant";
import type { SessionRequest, StartedSession } from "../src/session-api";

interface Internals {
  readTranscription(reader: unknown, speaker: "agent" | "user", current: () => boolean): Promise<void>;
  readRoomMetadata(raw: string | undefined): void;
  applyFormMessage(text: string): void;
  requestSession(
    server: string,
    request: SessionRequest,
    grant: GrantSource | undefined,
    signal: AbortSignal,
  ): Promise<StartedSession>;
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
  assert.deepEqual(call.transcript, [{ id: "SG_a", speaker: "agent", text: "Hello there.", final: true, source: "voice" }]);
});

test("user interim streams replace each other within a segment until the final one", async () => {
  const { call } = newCall();
  const read = (attrs: Record<string, string>, text: string) =>
    internals(call).readTranscription(reader(`S${text.length}`, attrs, [text]), "user", () => true);
  await read({ "lk.segment_id": "SG_u", "lk.transcription_final": "false" }, "where is");
  assert.deepEqual(call.transcript[0], { id: "SG_u", speaker: "user", text: "where is", final: false, source: "voice" });
  await read({ "lk.segment_id": "SG_u", "lk.transcription_final": "false" }, "where is my order");
  await read({ "lk.segment_id": "SG_u", "lk.transcription_final": "true" }, "Where is my order?");
  // A late interim result does not undo the final text.
  await read({ "lk.segment_id": "SG_u", "lk.transcription_final": "false" }, "where is my");
  assert.deepEqual(call.transcript, [{ id: "SG_u", speaker: "user", text: "Where is my order?", final: true, source: "voice" }]);
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

const GRANT = "eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiJvbmNlIn0.c2lnbmF0dXJl";
const STARTED = { token: "lk-token", livekit_url: "wss://lk", session_id: "s1" };

const realFetch = globalThis.fetch;
afterEach(() => {
  globalThis.fetch = realFetch;
});

/** A fake network: the site's grant URL and the token server, each answering as told. */
function network(grantAnswer: () => Response, sessionAnswer: () => Response) {
  const sent: { url: string; init?: RequestInit }[] = [];
  globalThis.fetch = async (url, init) => {
    sent.push({ url: String(url), init });
    return String(url).endsWith("/v1/sessions") ? sessionAnswer() : grantAnswer();
  };
  return sent;
}

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status });

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

test("the grant is fetched first and sent to the token server beside the call's fields", async () => {
  const sent = network(
    () => json(200, { grant: GRANT }),
    () => json(201, STARTED),
  );
  const { call } = newCall();
  const request = { agent: "support-bot", language: "en-US", origin_url: "https://shop.example.com/help" };
  const started = await internals(call).requestSession(
    "https://calls.example.com",
    request,
    grantFrom("/my/grant", "https://shop.example.com/help"),
    new AbortController().signal,
  );
  assert.equal(started.token, "lk-token");
  assert.deepEqual(
    sent.map((r) => [r.init?.method, r.url]),
    [
      ["POST", "https://shop.example.com/my/grant"],
      ["POST", "https://calls.example.com/v1/sessions"],
    ],
  );
  assert.deepEqual(JSON.parse(String(sent[1].init?.body)), { ...request, grant: GRANT });
  // The request the widget holds for "Try again" does not keep the grant.
  assert.equal("grant" in request, false);
});

test("without a grant source the body has no grant field", async () => {
  const sent = network(
    () => json(500, {}),
    () => json(201, STARTED),
  );
  const { call } = newCall();
  await internals(call).requestSession("http://ts", { agent: "a" }, undefined, new AbortController().signal);
  assert.equal(sent.length, 1);
  assert.deepEqual(JSON.parse(String(sent[0].init?.body)), { agent: "a" });
});

test("when the site gives no grant, nothing is sent to the token server", async () => {
  for (const grantAnswer of [
    () => json(403, { error: "not logged in" }),
    () => json(200, { token: GRANT }),
    () => new Response("<html>", { status: 200 }),
  ]) {
    const sent = network(grantAnswer, () => json(201, STARTED));
    const { call } = newCall();
    await assert.rejects(
      internals(call).requestSession(
        "http://ts",
        { agent: "a" },
        grantFrom("https://shop.example.com/g", "https://shop.example.com/"),
        new AbortController().signal,
      ),
      (err: unknown) => err instanceof WidgetError && err.code === "grant_unavailable",
    );
    assert.deepEqual(
      sent.map((r) => r.url),
      ["https://shop.example.com/g"],
    );
  }
});

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

test("the grant is never written to the console or put in an error event", async () => {
  const refusals = [
    [401, "invalid_grant"],
    [401, "grant_expired"],
    [403, "grant_used"],
    [403, "grant_not_for_character"],
    [403, "override_not_allowed"],
    [500, "server_error"],
  ] as const;
  const events: ErrorEvent[] = [];
  const written = await consoleDuring(async () => {
    for (const [status, code] of refusals) {
      network(
        () => json(200, { grant: GRANT }),
        () => json(status, { error: { code, message: "refused", details: { fields: ["system_prompt"] } } }),
      );
      const { call } = newCall();
      call.events.on("error", (e) => events.push(e));
      try {
        await internals(call).requestSession(
          "http://ts",
          { agent: "a" },
          grantFrom("/g", "https://shop.example.com/"),
          new AbortController().signal,
        );
        assert.fail("the session started");
      } catch (err) {
        assert.ok(err instanceof WidgetError);
        assert.ok(!JSON.stringify({ ...err, message: err.message, stack: err.stack }).includes(GRANT));
        internals(call).fail(err);
      }
    }
  });
  assert.equal(events.length, refusals.length);
  assert.ok(written.length >= 3, "the site owner is told about the refusals they can fix");
  assert.ok(!JSON.stringify([events, written]).includes(GRANT));
  // Nor a cut-off piece of it: its first characters are what a truncated log line would keep.
  assert.ok(!JSON.stringify([events, written]).includes(GRANT.slice(0, 20)));
});
