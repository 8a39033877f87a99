// Where a call's session grant comes from: the script tag, create(), start(), and
// the panel's "Try again". The call itself is replaced: it needs a microphone.
import "./fake-page";
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { WidgetError } from "../src/errors";
import type { GrantSource } from "../src/grant";
import type { SessionRequest } from "../src/session-api";
import { OsharaWidget, optionsFromScript, type WidgetOptions } from "../src/widget";

interface Start {
  server: string;
  body: SessionRequest;
  grant?: GrantSource;
}

/** A headless widget whose call records how it was started. */
function widget(options: Partial<WidgetOptions> = {}) {
  const w = new OsharaWidget({ agent: "support-bot", server: "https://calls.example.com", headless: true, ...options });
  const starts: Start[] = [];
  (w as unknown as { call: { start: (...args: unknown[]) => Promise<void> } }).call.start = async (
    server,
    body,
    grant,
  ) => {
    starts.push({ server, body, grant } as Start);
  };
  const again = () => (w as unknown as { again(): Promise<void> }).again();
  return { w, starts, again };
}

const realFetch = globalThis.fetch;
afterEach(() => {
  globalThis.fetch = realFetch;
});

/** The site's grant URL, minting grant-1, grant-2, … and recording what was asked. */
function grantEndpoint() {
  const asked: string[] = [];
  globalThis.fetch = async (url) => {
    asked.push(String(url));
    return new Response(JSON.stringify({ grant: `grant-${asked.length}` }), { status: 200 });
  };
  return asked;
}

const grantOf = (start: Start) => start.grant?.(new AbortController().signal);

test("data-grant-url becomes grantUrl, beside the other attributes", () => {
  const tag = { dataset: { agent: "support-bot", grantUrl: "/my/grant/endpoint", language: "en-US" } };
  const options = optionsFromScript(tag as unknown as HTMLScriptElement);
  assert.equal(options?.grantUrl, "/my/grant/endpoint");
  assert.equal(options?.language, "en-US");
  const without = optionsFromScript({ dataset: { agent: "support-bot" } } as unknown as HTMLScriptElement);
  assert.equal(without?.grantUrl, undefined);
  assert.equal("grantUrl" in (without ?? {}), false);
});

test("with a grant URL every start fetches a fresh grant from it, resolved against the page", async () => {
  const asked = grantEndpoint();
  const { w, starts, again } = widget({ grantUrl: "/my/grant/endpoint", language: "en-US" });
  await w.start();
  await again();
  await w.start({ metadata: { plan: "gold" } });
  assert.equal(starts.length, 3);
  // The grant is not in the body the widget keeps: the call asks for it at its moment.
  for (const s of starts) assert.equal(s.body.grant, undefined);
  assert.deepEqual(starts[0].body, {
    agent: "support-bot",
    origin_url: "https://shop.example.com/account/help",
    language: "en-US",
  });
  assert.equal(starts[0].server, "https://calls.example.com");
  assert.deepEqual(await Promise.all(starts.map(grantOf)), ["grant-1", "grant-2", "grant-3"]);
  assert.deepEqual(asked, Array(3).fill("https://shop.example.com/my/grant/endpoint"));
});

test("a grant given to start() wins over the grant URL, for that start only", async () => {
  const asked = grantEndpoint();
  const { w, starts, again } = widget({ grantUrl: "/my/grant/endpoint" });
  await w.start({ grant: "from-the-page", language: "de-DE" });
  assert.equal(await grantOf(starts[0]), "from-the-page");
  assert.deepEqual(asked, []);
  // "Try again" repeats the overrides but never the spent grant: it fetches a new one.
  await again();
  assert.equal(starts[1].body.language, "de-DE");
  assert.equal(await grantOf(starts[1]), "grant-1");
  assert.deepEqual(asked, ["https://shop.example.com/my/grant/endpoint"]);
});

test("without a grant URL, a spent grant is not resent and the retry says why", async () => {
  const asked = grantEndpoint();
  const { w, starts, again } = widget();
  await w.start({ grant: "from-the-page", metadata: { a: 1 } });
  await again();
  assert.equal(starts[1].body.metadata?.a, 1);
  await assert.rejects(
    grantOf(starts[1]) as Promise<string>,
    (err: unknown) => err instanceof WidgetError && err.code === "grant_unavailable" && !err.retryable,
  );
  // A start() without a grant, with no grant URL, is an ordinary browser start.
  await w.start();
  assert.equal(starts[2].grant, undefined);
  await again();
  assert.equal(starts[3].grant, undefined);
  assert.deepEqual(asked, []);
});

test("a grant is never a create() option, and a grant URL must be one", () => {
  assert.throws(
    () => new OsharaWidget({ agent: "a", headless: true, grant: "g" } as unknown as WidgetOptions),
    (err: unknown) => err instanceof WidgetError && err.code === "configuration_error" && !err.message.includes('"g"'),
  );
  for (const grantUrl of ["", "javascript:void 0", "http://[::1"]) {
    assert.throws(
      () => new OsharaWidget({ agent: "a", headless: true, grantUrl }),
      (err: unknown) => err instanceof WidgetError && err.code === "configuration_error",
      grantUrl,
    );
  }
});

test("Oshara.create takes grantUrl like data-grant-url", async () => {
  const Oshara = (globalThis as unknown as { Oshara: { create(o: WidgetOptions): OsharaWidget } }).Oshara;
  const created = Oshara.create({ agent: "support-bot", headless: true, grantUrl: "https://shop.example.com/g" });
  assert.equal(created.options.grantUrl, "https://shop.example.com/g");
});
