// Every way a call can fail, as a code the page can branch on and a sentence a
// caller can read. The sentences are shown as they are: keep them plain.

export type ErrorCode =
  | "origin_not_allowed"
  | "character_not_found"
  | "concurrency_limit_reached"
  | "validation_error"
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

export class WidgetError extends Error {
  readonly code: ErrorCode;
  /** HTTP status of the token server's answer, when there was one. */
  readonly status?: number;
  /** Seconds to wait before trying again (429), when known. */
  readonly retryAfterSeconds?: number;
  /** The token server's own message (for logs; the UI shows `message`). */
  readonly serverMessage?: string;

  constructor(
    code: ErrorCode,
    message: string,
    extra: { status?: number; retryAfterSeconds?: number; serverMessage?: string } = {},
  ) {
    super(message);
    this.name = "OsharaWidgetError";
    this.code = code;
    this.status = extra.status;
    this.retryAfterSeconds = extra.retryAfterSeconds;
    this.serverMessage = extra.serverMessage;
  }
}

export function busyMessage(seconds: number | undefined): string {
  if (seconds === undefined) return "All agents are busy. Try again in a moment.";
  const n = Math.max(1, Math.ceil(seconds));
  return `All agents are busy. Try again in ${n} second${n === 1 ? "" : "s"}.`;
}

/** The WidgetError for an error answer of POST /v1/sessions. */
export function sessionError(
  status: number,
  code: string | undefined,
  serverMessage: string | undefined,
  retryAfterSeconds: number | undefined,
): WidgetError {
  const extra = { status, retryAfterSeconds, serverMessage };
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
    return new WidgetError(
      "validation_error",
      "This call couldn't start because the site sent settings the agent doesn't accept.",
      extra,
    );
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
