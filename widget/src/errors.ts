// Every way a call can fail, as a code the page can branch on and a sentence a
// caller can read. The sentences are shown as they are: keep them plain.

export type ErrorCode =
  | "origin_not_allowed"
  | "character_not_found"
  | "concurrency_limit_reached"
  | "validation_error"
  | "override_not_allowed"
  | "grant_unavailable"
  | "invalid_grant"
  | "grant_expired"
  | "grant_used"
  | "grant_not_for_character"
  | "livekit_unavailable"
  | "server_error"
  | "network_error"
  | "voice_server_unreachable"
  | "voice_server_refused"
  | "microphone_denied"
  | "microphone_unavailable"
  | "insecure_context"
  | "connection_lost"
  | "configuration_error";

/**
 * Whether starting again can fix the failure by itself: the panel offers "Try again"
 * only then. A retry fetches a fresh session grant, so a grant that expired or was
 * used is retryable; a grant the token server will never accept is not.
 */
const RETRYABLE: Record<ErrorCode, boolean> = {
  origin_not_allowed: false,
  character_not_found: false,
  concurrency_limit_reached: true,
  validation_error: false,
  override_not_allowed: false,
  grant_unavailable: true,
  invalid_grant: false,
  grant_expired: true,
  grant_used: true,
  grant_not_for_character: false,
  livekit_unavailable: true,
  server_error: true,
  network_error: true,
  voice_server_unreachable: true,
  voice_server_refused: true,
  microphone_denied: true,
  microphone_unavailable: true,
  insecure_context: false,
  connection_lost: true,
  configuration_error: false,
};

export interface WidgetErrorExtra {
  status?: number;
  retryAfterSeconds?: number;
  serverMessage?: string;
  /** Overrides the code's own retryability. */
  retryable?: boolean;
  developerMessage?: string;
}

// widget.js and the call chunk each carry a copy of this module, and a grant the
// loader fetches may fail inside the chunk's call: `instanceof` must know both copies.
const BRAND = Symbol.for("oshara.WidgetError");

export class WidgetError extends Error {
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && BRAND in value;
  }

  readonly code: ErrorCode;
  /** HTTP status of the token server's answer, when there was one. */
  readonly status?: number;
  /** Seconds to wait before trying again (429), when known. */
  readonly retryAfterSeconds?: number;
  /** The token server's own message (for logs; the UI shows `message`). */
  readonly serverMessage?: string;
  /** Whether starting again may succeed (see RETRYABLE). */
  readonly retryable: boolean;
  /**
   * What the site's developer must fix, for the console (the caller reads `message`).
   * Never holds a credential: no grant, token or header value.
   */
  readonly developerMessage?: string;

  constructor(code: ErrorCode, message: string, extra: WidgetErrorExtra = {}) {
    super(message);
    Object.defineProperty(this, BRAND, { value: true });
    this.name = "OsharaWidgetError";
    this.code = code;
    this.status = extra.status;
    this.retryAfterSeconds = extra.retryAfterSeconds;
    this.serverMessage = extra.serverMessage;
    this.retryable = extra.retryable ?? RETRYABLE[code];
    this.developerMessage = extra.developerMessage;
  }
}

export function busyMessage(seconds: number | undefined): string {
  if (seconds === undefined) return "All agents are busy. Try again in a moment.";
  const n = Math.max(1, Math.ceil(seconds));
  return `All agents are busy. Try again in ${n} second${n === 1 ? "" : "s"}.`;
}

const SETTINGS_REFUSED = "This call couldn't start because the site sent settings the agent doesn't accept.";
const GRANT_SPENT = "The permission to start this call has expired or was already used. Please try again.";
const GRANT_REFUSED = "This call couldn't start because the site's permission for it wasn't accepted.";
const MAX_NAMED_FIELDS = 20;

/** `details.fields` of an override_not_allowed answer, as field names fit for a console line. */
function refusedFields(details: Record<string, unknown> | undefined): string {
  const fields = Array.isArray(details?.fields) ? details.fields : [];
  const names = fields
    .filter((f): f is string => typeof f === "string" && /^[A-Za-z0-9_.-]{1,64}$/.test(f))
    .slice(0, MAX_NAMED_FIELDS);
  return names.length ? names.join(", ") : "(not named)";
}

/** The WidgetError for an error answer of POST /v1/sessions. */
export function sessionError(
  status: number,
  code: string | undefined,
  serverMessage: string | undefined,
  retryAfterSeconds: number | undefined,
  details?: Record<string, unknown>,
): WidgetError {
  const extra = { status, retryAfterSeconds, serverMessage };
  // Session-grant and browser-override refusals are told apart by their code.
  switch (code) {
    case "override_not_allowed":
      return new WidgetError("override_not_allowed", SETTINGS_REFUSED, {
        ...extra,
        developerMessage:
          `Oshara: the token server refused fields this page may not set: ${refusedFields(details)}. ` +
          "Put them in a session grant from your backend, or list them in the character's browser_overrides.",
      });
    case "grant_expired":
    case "grant_used":
      return new WidgetError(code, GRANT_SPENT, extra);
    case "invalid_grant":
      return new WidgetError("invalid_grant", GRANT_REFUSED, {
        ...extra,
        developerMessage:
          "Oshara: the token server refused the session grant (invalid_grant). " +
          "Check how your backend signs it; the token server's answer (network panel) says why.",
      });
    case "grant_not_for_character":
      return new WidgetError("grant_not_for_character", GRANT_REFUSED, {
        ...extra,
        developerMessage:
          "Oshara: the session grant names another character than the widget's agent " +
          "(grant_not_for_character).",
      });
  }
  if (status === 403 && (code === undefined || code === "origin_not_allowed")) {
    return new WidgetError("origin_not_allowed", "This site isn't allowed to use this agent.", extra);
  }
  if (status === 404) {
    return new WidgetError(
      "character_not_found",
      "This agent doesn't exist or has been switched off.",
      extra,
    );
  }
  if (status === 429) {
    return new WidgetError("concurrency_limit_reached", busyMessage(retryAfterSeconds), extra);
  }
  if (status === 403 || status === 422 || status === 400 || status === 413) {
    // A locked field or a bad override: the site's setup, not the caller, is at fault.
    return new WidgetError("validation_error", SETTINGS_REFUSED, extra);
  }
  if (status === 502 || status === 503 || status === 504) {
    return new WidgetError(
      "livekit_unavailable",
      "The voice service is unavailable right now. Please try again in a minute.",
      extra,
    );
  }
  return new WidgetError("server_error", "Something went wrong on our side. Please try again.", extra);
}

/**
 * The site's grant URL gave no usable session grant, or a grant given to start() was
 * not one. `developerMessage` says which; it never quotes the grant.
 */
export const grantUnavailable = (developerMessage: string, retryable = true): WidgetError =>
  new WidgetError(
    "grant_unavailable",
    retryable
      ? "This site could not give permission to start the call. Please try again."
      : "This site could not give permission to start the call.",
    { developerMessage, retryable },
  );

export const networkError = (): WidgetError =>
  new WidgetError(
    "network_error",
    "Can't reach the call service. Check your internet connection and try again. " +
      "If this keeps happening, this site may not be set up to use this agent.",
  );

export const voiceServerUnreachable = (): WidgetError =>
  new WidgetError(
    "voice_server_unreachable",
    "Can't reach the voice server. Check your internet connection and try again.",
  );

export const voiceServerRefused = (): WidgetError =>
  new WidgetError("voice_server_refused", "The voice server turned this call away. Please try again.");

export const connectionLost = (): WidgetError =>
  new WidgetError("connection_lost", "The call was cut off: the connection to the voice server was lost.");

/** The WidgetError for a failed getUserMedia. */
export function microphoneError(err: unknown): WidgetError {
  const name = err instanceof Error || err instanceof DOMException ? err.name : "";
  if (name === "NotFoundError" || name === "OverconstrainedError") {
    return new WidgetError(
      "microphone_unavailable",
      "No microphone was found. Connect one and try again.",
    );
  }
  if (name === "NotReadableError" || name === "AbortError") {
    return new WidgetError(
      "microphone_unavailable",
      "Your microphone is in use by another app or couldn't be started. Close that app and try again.",
    );
  }
  return new WidgetError(
    "microphone_denied",
    "Microphone access was blocked. To talk with the agent, allow the microphone for this site " +
      "(the icon in the address bar or your browser settings), then try again.",
  );
}

export const insecureContext = (): WidgetError =>
  new WidgetError(
    "insecure_context",
    "Voice calls need a secure (https) page to use the microphone.",
  );

/** The call's code (widget/call.<hash>.js) did not load: offline, or the page's CSP refused it. */
export const callCodeUnavailable = (url: string): WidgetError =>
  new WidgetError("network_error", networkError().message, {
    developerMessage:
      `Oshara: could not load the call code from ${url}. ` +
      "If the page has a Content-Security-Policy, its script-src must allow the token server's origin.",
  });
