// Session grants: what the widget asks the site's grant URL, and every way the
// answer can fail to be a grant, without the grant ever showing in a message.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { WidgetError } from "../src/errors";
import { fetchGrant, givenGrant, grantFrom, MAX_GRANT_CHARS, resolveGrantUrl, spentGrant } from "../src/grant";

const GRANT = "eyJhbGciOiJIUzI1NiJ9.eyJhZ2VudCI6InN1cHBvcnQtYm90In0.c2lnbmF0dXJl";
const signal = () => new AbortController().signal;

const realFetch = globalThis.fetch;
afterEach(() => {
  globalThis.fetch = realFetch;
});

function answer(status: number, body: string, contentType = "application/json") {
  const sent: { url: string; init?: RequestInit }[] = [];
  globalThis.fetch = async (url, init) => {
    sent.push({ url: String(url), init });
    return new Response(body, { status, headers: { "Content-Type": contentType } });
  };
  return sent;
}

async function failure(source: Promise<string>): Promise<WidgetError> {
  try {
    await source;
  } catch (err) {
    assert.ok(err instanceof WidgetError);
    return err;
  }
  throw new Error("the grant source did not fail");
}

function assertGrantUnavailable(err: WidgetError, developer: RegExp) {
  assert.equal(err.code, "grant_unavailable");
  assert.equal(err.message, "This site could not give permission to start the call. Please try again.");
  assert.equal(err.retryable, true);
  assert.match(err.developerMessage ?? "", developer);
}

test("the grant URL is POSTed with the site's cookies, asking for JSON, past the cache", async () => {
  const sent = answer(200, JSON.stringify({ grant: GRANT }));
  assert.equal(await fetchGrant("https://shop.example.com/my/grant", signal()), GRANT);
  assert.equal(sent.length, 1);
  const { url, init } = sent[0];
  assert.equal(url, "https://shop.example.com/my/grant");
  assert.equal(init?.method, "POST");
  assert.equal(init?.credentials, "same-origin");
  assert.equal(init?.cache, "no-store");
  assert.deepEqual(init?.headers, { Accept: "application/json" });
  assert.equal(init?.body, undefined);
});

test("any 2xx answer with a string grant will do", async () => {
  answer(201, JSON.stringify({ grant: GRANT, expires_in: 300 }));
  assert.equal(await fetchGrant("https://shop.example.com/g", signal()), GRANT);
  answer(200, JSON.stringify({ grant: "x".repeat(MAX_GRANT_CHARS) }));
  assert.equal((await fetchGrant("https://shop.example.com/g", signal())).length, MAX_GRANT_CHARS);
});

test("a network failure, a non-2xx answer or a body without a string grant is grant_unavailable", async () => {
  globalThis.fetch = async () => {
    throw new TypeError("Failed to fetch");
  };
  assertGrantUnavailable(await failure(fetchGrant("https://shop.example.com/g", signal())), /could not be reached/);

  for (const status of [301, 401, 403, 404, 500]) {
    answer(status, JSON.stringify({ grant: GRANT }));
    const err = await failure(fetchGrant("https://shop.example.com/g", signal()));
    assertGrantUnavailable(err, new RegExp(`answered HTTP ${status};`));
  }

  const bodies: [string, RegExp][] = [
    ["<html>log in first</html>", /its grant is missing/],
    ["null", /its grant is missing/],
    ['["eyJ"]', /its grant is missing/],
    ['{"token": "eyJ"}', /its grant is missing/],
    ['{"grant": 12345}', /its grant is not a string/],
    ['{"grant": {"jws": "eyJ"}}', /its grant is not a string/],
    ['{"grant": ""}', /its grant is empty/],
    [JSON.stringify({ grant: "x".repeat(MAX_GRANT_CHARS + 1) }), /its grant is over 8192 characters/],
  ];
  for (const [body, developer] of bodies) {
    answer(200, body);
    assertGrantUnavailable(await failure(fetchGrant("https://shop.example.com/g", signal())), developer);
  }
});

test("a grant that is too long is refused without being quoted", async () => {
  const long = `${GRANT}.${"A".repeat(MAX_GRANT_CHARS)}`;
  answer(200, JSON.stringify({ grant: long }));
  const err = await failure(fetchGrant("https://shop.example.com/g", signal()));
  for (const text of [err.message, err.developerMessage ?? "", String(err.stack)]) {
    assert.ok(!text.includes(GRANT));
  }
});

test("a cancelled call stops waiting for the grant URL", async () => {
  globalThis.fetch = (_url, init) =>
    new Promise((_resolve, reject) => {
      init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
    });
  const controller = new AbortController();
  const pending = fetchGrant("https://shop.example.com/g", controller.signal);
  controller.abort();
  assert.equal((await failure(pending)).code, "grant_unavailable");
});

test("relative grant URLs resolve against the page, and only http(s) URLs are taken", () => {
  const page = "https://shop.example.com/account/help?topic=orders";
  assert.equal(resolveGrantUrl("/my/grant/endpoint", page), "https://shop.example.com/my/grant/endpoint");
  assert.equal(resolveGrantUrl("grant", page), "https://shop.example.com/account/grant");
  assert.equal(resolveGrantUrl("https://api.shop.example.com/grant", page), "https://api.shop.example.com/grant");
  for (const bad of ["", "  ", "javascript:alert(1)", "data:application/json,{}", "http://[::1", 42, null]) {
    assert.throws(
      () => resolveGrantUrl(bad, page),
      (err: unknown) => err instanceof WidgetError && err.code === "configuration_error",
      String(bad),
    );
  }
});

test("grantFrom resolves the URL when asked, and fetches a fresh grant every time", async () => {
  let n = 0;
  const urls: string[] = [];
  globalThis.fetch = async (url) => {
    urls.push(String(url));
    return new Response(JSON.stringify({ grant: `grant-${++n}` }), { status: 200 });
  };
  const source = grantFrom("/my/grant", "https://shop.example.com/help");
  assert.equal(await source(signal()), "grant-1");
  assert.equal(await source(signal()), "grant-2");
  assert.deepEqual(urls, ["https://shop.example.com/my/grant", "https://shop.example.com/my/grant"]);
});

test("a grant given to start() is checked, and once spent there is none to retry with", async () => {
  assert.equal(await givenGrant(GRANT)(signal()), GRANT);
  for (const [bad, developer] of [
    ["", /passed to start\(\) is empty/],
    [42, /passed to start\(\) is not a string/],
    ["x".repeat(MAX_GRANT_CHARS + 1), /passed to start\(\) is over 8192 characters/],
  ] as [unknown, RegExp][]) {
    const err = await failure(givenGrant(bad)(signal()));
    assert.equal(err.code, "grant_unavailable");
    assert.equal(err.retryable, false);
    assert.equal(err.message, "This site could not give permission to start the call.");
    assert.match(err.developerMessage ?? "", developer);
  }
  const spent = await failure(spentGrant()(signal()));
  assert.equal(spent.code, "grant_unavailable");
  assert.equal(spent.retryable, false);
  assert.match(spent.developerMessage ?? "", /works once.*data-grant-url/);
});
