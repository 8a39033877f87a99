// The loader's call: idle and import-free until used, then the real call behind it,
// with the page's listeners kept, and a failed import said as a network error and
// tried again on the next start.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Call, CallEvents } from "../src/call";
import { type CallCode, callCodeLoader, DeferredCall } from "../src/deferred-call";
import type { Emitter } from "../src/emitter";
import { WidgetError } from "../src/errors";
import type { SessionRequest } from "../src/session-api";

const URL = "https://calls.example.com/widget/call.ABCDEFGH.js";
const REQUEST: SessionRequest = { agent: "support-bot" };

/** Call code whose calls record their starts and emit what a real start would. */
function fakeCode() {
  const created: { events: Emitter<CallEvents>; debug: boolean }[] = [];
  const starts: SessionRequest[] = [];
  const code = {
    createCall(_host: () => Node, events: Emitter<CallEvents>, options: { debug: boolean }) {
      created.push({ events, debug: options.debug });
      const call = {
        state: "idle",
        agentState: null,
        muted: false,
        active: false,
        transcript: [],
        answers: {},
        fields: [],
        async start(_server: string, request: SessionRequest) {
          starts.push(request);
          call.state = "requesting_microphone";
          events.emit("state", { state: "requesting_microphone", agentState: null, muted: false, mode: "voice" });
        },
        end() {},
      };
      return call as unknown as Call;
    },
  } as unknown as typeof CallCode;
  return { code, created, starts };
}

/** A loader that resolves (or fails) when the test says. */
function controlledLoad() {
  const pending: { resolve: (c: typeof CallCode) => void; reject: (e: unknown) => void }[] = [];
  const load = () => new Promise<typeof CallCode>((resolve, reject) => pending.push({ resolve, reject }));
  return { load, pending };
}

const host = () => ({}) as Node;

test("nothing is imported until a call is started, and an unused call reads as idle", () => {
  const { load, pending } = controlledLoad();
  const call = new DeferredCall(host, load, { debug: false, url: URL });
  assert.equal(pending.length, 0);
  assert.equal(call.state, "idle");
  assert.equal(call.active, false);
  assert.deepEqual(call.transcript, []);
  call.setMuted(true);
  call.end();
  assert.equal(pending.length, 0);
});

test("a start imports the code once and the page's earlier listeners hear the real call", async () => {
  const { load, pending } = controlledLoad();
  const { code, created, starts } = fakeCode();
  const call = new DeferredCall(host, load, { debug: true, url: URL });
  const states: string[] = [];
  call.events.on("state", ({ state }) => states.push(state));

  const first = call.start("https://calls.example.com", REQUEST);
  const second = call.start("https://calls.example.com", { agent: "twice" }); // a double click
  call.prefetch();
  assert.equal(pending.length, 1);
  pending[0].resolve(code);
  await Promise.all([first, second]);

  assert.deepEqual(starts, [REQUEST]);
  assert.equal(created.length, 1);
  assert.equal(created[0].events, call.events);
  assert.equal(created[0].debug, true);
  assert.deepEqual(states, ["requesting_microphone"]);
  assert.equal(call.state, "requesting_microphone");
});

test("end() while the code is on its way cancels the start", async () => {
  const { load, pending } = controlledLoad();
  const { code, starts } = fakeCode();
  const call = new DeferredCall(host, load, { debug: false, url: URL });
  const started = call.start("https://calls.example.com", REQUEST);
  call.end();
  pending[0].resolve(code);
  await started;
  assert.deepEqual(starts, []);
});

test("code that does not arrive is a retryable network error, and the next start imports again", async (t) => {
  const warned = t.mock.method(console, "warn", () => undefined);
  const { load, pending } = controlledLoad();
  const { code, starts } = fakeCode();
  const call = new DeferredCall(host, load, { debug: false, url: URL });
  const seen: [string, unknown][] = [];
  for (const name of ["state", "error"] as const) call.events.on(name, (payload) => seen.push([name, payload]));

  const failed = call.start("https://calls.example.com", REQUEST);
  pending[0].reject(new TypeError("Failed to fetch dynamically imported module"));
  await failed;
  assert.equal(call.state, "error");
  assert.deepEqual(seen, [
    ["state", { state: "error", agentState: null, muted: false, mode: "voice" }],
    [
      "error",
      {
        code: "network_error",
        message:
          "Can't reach the call service. Check your internet connection and try again. " +
          "If this keeps happening, this site may not be set up to use this agent.",
        retryable: true,
      },
    ],
  ]);
  assert.match(String(warned.mock.calls[0].arguments[0]), /could not load the call code from .*call\.ABCDEFGH\.js/);

  const again = call.start("https://calls.example.com", REQUEST);
  assert.equal(pending.length, 2);
  pending[1].resolve(code);
  await again;
  assert.deepEqual(starts, [REQUEST]);
});

test("the chunk is imported once per page; after a failure, again under a fresh fragment", async () => {
  const asked: string[] = [];
  let fail = true;
  const load = callCodeLoader(URL, async (url) => {
    asked.push(url);
    if (fail) throw new TypeError("Failed to fetch dynamically imported module");
    return fakeCode().code;
  });
  await assert.rejects(load());
  fail = false;
  const [a, b] = await Promise.all([load(), load()]);
  assert.equal(a, b);
  await load();
  assert.deepEqual(asked, [URL, `${URL}#retry-1`]);
});

test("a WidgetError from the other bundle's copy of errors.ts is still a WidgetError", () => {
  // What the loader's grant.ts throws inside the chunk's call: same brand, another class.
  const fromTheLoader = Object.defineProperty(new Error("no grant"), Symbol.for("oshara.WidgetError"), {
    value: true,
  });
  assert.ok(fromTheLoader instanceof WidgetError);
  assert.ok(new WidgetError("network_error", "offline") instanceof WidgetError);
  assert.ok(!(new Error("plain") instanceof WidgetError));
  assert.ok(!(null instanceof WidgetError));
});
