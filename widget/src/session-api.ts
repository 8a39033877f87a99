// POST /v1/sessions on the token server, with every failure turned into a WidgetError.
import { networkError, sessionError, WidgetError } from "./errors";
import { fetchWithin } from "./fetch-within";

/** The request body of POST /v1/sessions (see docs/widget.md). */
export interface SessionRequest {
  agent: string;
  /** "text": typed turns only, and no microphone; the character must offer it. */
  mode?: "voice" | "text";
  language?: string;
  system_prompt?: string;
  greeting?: string;
  voice_model?: string;
  reference_audio_url?: string;
  mcp_headers?: Record<string, string>;
  metadata?: Record<string, unknown>;
  origin_url?: string;
  /** A session grant from the site's backend (see grant.ts): a credential, never logged. */
  grant?: string;
}

/** The 201 answer of POST /v1/sessions: how to join the session's room. */
export interface StartedSession {
  token: string;
  livekit_url: string;
  room_name: string;
  participant_identity: string;
  session_id: string;
  expires_in_seconds: number;
  character_slug: string;
  /** How the session talks, as the token server decided (the character's default when none was asked for). */
  mode?: "voice" | "text";
  system_prompt?: string;
  greeting?: string;
}

const REQUEST_TIMEOUT_MS = 20_000;

/** Seconds from a Retry-After header: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const when = Date.parse(trimmed);
  return Number.isNaN(when) ? undefined : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

export async function startSession(
  server: string,
  body: SessionRequest,
  signal: AbortSignal,
): Promise<StartedSession> {
  let response: Response;
  try {
    response = await fetchWithin(
      `${server}/v1/sessions`,
      {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        cache: "no-store",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      },
      signal,
      REQUEST_TIMEOUT_MS,
    );
  } catch {
    // CORS refusals, DNS failures, refused connections and timeouts all land here:
    // the browser tells a page no more than that.
    throw networkError();
  }

  let payload: unknown = undefined;
  try {
    payload = await response.json();
  } catch {
    payload = undefined;
  }
  if (response.status === 201 || response.status === 200) {
    const session = payload as Partial<StartedSession> | undefined;
    if (!session || typeof session.token !== "string" || typeof session.livekit_url !== "string") {
      throw new WidgetError("server_error", "Something went wrong on our side. Please try again.", {
        status: response.status,
        serverMessage: "the session answer has no token or livekit_url",
      });
    }
    return session as StartedSession;
  }
  const error = (payload as { error?: { code?: string; message?: string; details?: Record<string, unknown> } })
    ?.error;
  let retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
  const detailed = error?.details?.retry_after_seconds;
  if (retryAfter === undefined && typeof detailed === "number") retryAfter = detailed;
  const details = error?.details && typeof error.details === "object" ? error.details : undefined;
  throw sessionError(response.status, error?.code, error?.message, retryAfter, details);
}
