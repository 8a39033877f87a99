// POST /v1/sessions answers, and every failure, as the caller will read them.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { microphoneError, WidgetError } from "../src/errors";
import { parseRetryAfter, type SessionRequest, startSession } from "../src/session-api";

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

async function failure(body: SessionRequest = { agent: "a" }): Promise<WidgetError> {
  try {
    await startSession("http://ts", body, new AbortController().signal);
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

test("a session grant goes in the body beside agent and the other fields", async () => {
  let sent: RequestInit | undefined;
  globalThis.fetch = async (_url, init) => {
    sent = init;
    return new Response(JSON.stringify({ token: "t", livekit_url: "wss://lk" }), { status: 201 });
  };
  const body = { agent: "support-bot", language: "en-US", grant: "eyJ.x.y" };
  await startSession("http://ts", body, new AbortController().signal);
  assert.deepEqual(JSON.parse(String(sent?.body)), { agent: "support-bot", language: "en-US", grant: "eyJ.x.y" });
  assert.equal(sent?.credentials, "omit");
});

test("grant and browser-override refusals have their own codes, and only spent grants are retryable", async () => {
  const grant = "eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiJzZWNyZXQifQ.c2lnbmF0dXJl";
  const refused = "This call couldn't start because the site's permission for it wasn't accepted.";
  const spent = "The permission to start this call has expired or was already used. Please try again.";
  const cases: [number, string, string, boolean][] = [
    [401, "invalid_grant", refused, false],
    [401, "grant_expired", spent, true],
    [403, "grant_used", spent, true],
    [403, "grant_not_for_character", refused, false],
  ];
  for (const [status, code, message, retryable] of cases) {
    answer(status, { error: { code, message: "the server's words", details: null } });
    const err = await failure({ agent: "a", grant });
    assert.equal(err.code, code);
    assert.equal(err.status, status);
    assert.equal(err.message, message);
    assert.equal(err.retryable, retryable, code);
    for (const text of [err.message, err.developerMessage ?? "", err.serverMessage ?? ""]) {
      assert.ok(!text.includes(grant), `${code} quotes the grant`);
    }
  }
  assert.match((await failure({ agent: "a", grant })).developerMessage ?? "", /grant_not_for_character/);
});

test("override_not_allowed tells the caller plainly and the site owner which fields", async () => {
  answer(403, {
    error: {
      code: "override_not_allowed",
      message: "m",
      details: { fields: ["system_prompt", "reference_audio_url", "<img src=x>", 7] },
    },
  });
  const err = await failure();
  assert.equal(err.code, "override_not_allowed");
  assert.equal(err.message, "This call couldn't start because the site sent settings the agent doesn't accept.");
  assert.equal(err.retryable, false);
  // Only names that look like field names reach the console line.
  assert.match(err.developerMessage ?? "", /may not set: system_prompt, reference_audio_url\. /);
  assert.match(err.developerMessage ?? "", /browser_overrides/);
  answer(403, { error: { code: "override_not_allowed", message: "m", details: null } });
  assert.match((await failure()).developerMessage ?? "", /may not set: \(not named\)/);
});

test("errors a retry cannot fix are not retryable", async () => {
  answer(403, { error: { code: "origin_not_allowed" } });
  assert.equal((await failure()).retryable, false);
  answer(404, { error: { code: "character_not_found" } });
  assert.equal((await failure()).retryable, false);
  answer(422, { error: { code: "validation_error" } });
  assert.equal((await failure()).retryable, false);
  answer(429, { error: { code: "concurrency_limit_reached" } });
  assert.equal((await failure()).retryable, true);
  answer(502, { error: { code: "livekit_unavailable" } });
  assert.equal((await failure()).retryable, true);
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
