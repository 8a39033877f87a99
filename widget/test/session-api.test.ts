// POST /v1/sessions answers, and every failure, as the caller will read them.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { microphoneError, WidgetError } from "../src/errors";
import { parseRetryAfter, startSession } from "../src/session-api";

const realFetch = globalThis.fetch;
afterEach(() => {
  globalThis.fetch = realFetch;
});

function answer(status: number, body: unknown, headers: Record<string, string> = {}) {
  globalThis.fetch = async () =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "Content-Type": "application/json", ...headers },
    });
}

async function failure(): Promise<WidgetError> {
  try {
    await startSession("http://ts", { agent: "a" }, new AbortController().signal);
  } catch (err) {
    assert.ok(err instanceof WidgetError);
    return err;
  }
  throw new Error("startSession did not fail");
}

test("a 201 is returned as the grant", async () => {
  let sent: RequestInit | undefined;
  globalThis.fetch = async (_url, init) => {
    sent = init;
    return new Response(JSON.stringify({ token: "t", livekit_url: "wss://lk" }), { status: 201 });
  };
  const grant = await startSession("http://ts", { agent: "a", origin_url: "http://page/" }, new AbortController().signal);
  assert.equal(grant.token, "t");
  assert.equal(sent?.method, "POST");
  assert.equal(sent?.credentials, "omit");
  assert.deepEqual(JSON.parse(String(sent?.body)), { agent: "a", origin_url: "http://page/" });
});

test("403, 404, 429 and 502 read as plain words", async () => {
  answer(403, { error: { code: "origin_not_allowed", message: "m", details: null } });
  assert.equal((await failure()).message, "This site isn't allowed to use this agent.");
  answer(403, { error: { code: "field_locked", message: "m", details: null } });
  assert.equal((await failure()).code, "validation_error");
  answer(404, { error: { code: "character_not_found", message: "m", details: null } });
  assert.equal((await failure()).message, "This agent doesn't exist or has been switched off.");
  answer(429, { error: { code: "concurrency_limit_reached", details: { retry_after_seconds: 9 } } }, {
    "Retry-After": "17",
  });
  const busy = await failure();
  assert.equal(busy.message, "All agents are busy. Try again in 17 seconds.");
  assert.equal(busy.retryAfterSeconds, 17);
  answer(429, { error: { code: "concurrency_limit_reached", details: { retry_after_seconds: 1 } } });
  assert.equal((await failure()).message, "All agents are busy. Try again in 1 second.");
  answer(502, { error: { code: "livekit_unavailable" } });
  assert.equal((await failure()).code, "livekit_unavailable");
  answer(500, "oops");
  assert.equal((await failure()).code, "server_error");
  answer(201, { token: "no url" });
  assert.equal((await failure()).code, "server_error");
});

test("no answer at all is a network error", async () => {
  globalThis.fetch = async () => {
    throw new TypeError("Failed to fetch");
  };
  assert.equal((await failure()).code, "network_error");
});

test("Retry-After as seconds or as an HTTP date", () => {
  assert.equal(parseRetryAfter("30"), 30);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  const inTenSeconds = new Date(Date.now() + 10_000).toUTCString();
  const seconds = parseRetryAfter(inTenSeconds);
  assert.ok(seconds !== undefined && seconds >= 9 && seconds <= 11);
});

test("microphone failures are told apart", () => {
  assert.equal(microphoneError(new DOMException("x", "NotAllowedError")).code, "microphone_denied");
  assert.equal(microphoneError(new DOMException("x", "NotFoundError")).code, "microphone_unavailable");
  assert.equal(microphoneError(new DOMException("x", "NotReadableError")).code, "microphone_unavailable");
});
