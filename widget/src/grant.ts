// Session grants, as the widget gets them: given to start() by the page, or fetched
// from the site's own grant URL (data-grant-url) just before each start. A grant is a
// credential that works once: it is never cached, reused, logged, put in the DOM or
// quoted in an error message.
import { grantUnavailable, WidgetError } from "./errors";
import { fetchWithin } from "./fetch-within";

/** The longest grant the token server reads (MAX_GRANT_CHARS in token_server/schemas.py). */
export const MAX_GRANT_CHARS = 8192;
const GRANT_TIMEOUT_MS = 10_000;

/** Gives a grant for one session start; rejects with a WidgetError. */
export type GrantSource = (signal: AbortSignal) => Promise<string>;

/** Why `value` cannot be a grant, in words that do not quote it; null when it can. */
function grantProblem(value: unknown): string | null {
  if (value === undefined || value === null) return "is missing";
  if (typeof value !== "string") return "is not a string";
  if (!value) return "is empty";
  if (value.length > MAX_GRANT_CHARS) return `is over ${MAX_GRANT_CHARS} characters`;
  return null;
}

/**
 * The absolute http(s) URL of a grant URL. A relative one resolves against `base`,
 * the page's base URL (not the script's): the endpoint is the site's own.
 */
export function resolveGrantUrl(url: unknown, base: string): string {
  let resolved: URL | undefined;
  try {
    resolved = typeof url === "string" && url.trim() ? new URL(url, base) : undefined;
  } catch {
    resolved = undefined;
  }
  if (!resolved || (resolved.protocol !== "https:" && resolved.protocol !== "http:")) {
    throw new WidgetError(
      "configuration_error",
      "Oshara: the grant URL must be an http(s) URL, absolute or relative to the page.",
    );
  }
  return resolved.href;
}

/** The grant the page passed to start(), for that one start. */
export function givenGrant(value: unknown): GrantSource {
  return async () => {
    const problem = grantProblem(value);
    if (problem) throw grantUnavailable(`Oshara: the grant passed to start() ${problem}.`, false);
    return value as string;
  };
}

/** A grant given to start() has been used: without a grant URL there is no other. */
export function spentGrant(): GrantSource {
  return async () => {
    throw grantUnavailable(
      "Oshara: a grant passed to start() works once, so there is none to try again with. " +
        "Set data-grant-url (or create({grantUrl})) to let the widget fetch a fresh one.",
      false,
    );
  };
}

/** A fresh grant from the site's grant URL, fetched anew each time (`base`: see resolveGrantUrl). */
export function grantFrom(url: string, base: string): GrantSource {
  return (signal) => fetchGrant(resolveGrantUrl(url, base), signal);
}

/** POST `url` and read `{"grant": "<token>"}` from its 2xx JSON answer. */
export async function fetchGrant(url: string, signal: AbortSignal): Promise<string> {
  let response: Response;
  try {
    response = await fetchWithin(
      url,
      {
        method: "POST",
        // The site's endpoint knows its user by the site's own cookie: "same-origin"
        // sends it when the endpoint is on the page's origin, and to nobody else.
        credentials: "same-origin",
        // Every grant works once: none may come from, or go into, the HTTP cache.
        cache: "no-store",
        headers: { Accept: "application/json" },
      },
      signal,
      GRANT_TIMEOUT_MS,
    );
  } catch {
    throw grantUnavailable("Oshara: the grant URL could not be reached (network error, CORS refusal or timeout).");
  }
  if (!response.ok) {
    throw grantUnavailable(
      `Oshara: the grant URL answered HTTP ${response.status}; expected a 2xx JSON answer {"grant": "<token>"}.`,
    );
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  const grant = body && typeof body === "object" ? (body as { grant?: unknown }).grant : undefined;
  const problem = grantProblem(grant);
  if (problem) {
    throw grantUnavailable(`Oshara: the grant URL's answer is not {"grant": "<token>"}: its grant ${problem}.`);
  }
  return grant as string;
}
