// The call as the page and the view see it from the first moment, while its code
// (livekit-client and call.ts: the chunk widget/call.<hash>.js) is imported only when
// a call is first started, or the pointer or focus first reaches the widget. Until
// then it is an idle call; once loaded, every getter and method is the real Call's,
// and the real Call emits on this object's `events`, so listeners added before the
// load hear everything.
//
// Anything the view or the page uses on a call goes through here: add it to both.
import type { AgentState, Call, CallEvents, CallMode, CallState, FormField, TranscriptEntry } from "./call";
import type * as CallCode from "./call-entry";
import { Emitter } from "./emitter";
import { callCodeUnavailable } from "./errors";
import type { GrantSource } from "./grant";
import type { SessionRequest } from "./session-api";

export type { CallCode };

/**
 * Imports the chunk at `url` once for the page, however many widgets it has. A failed
 * import is tried again on the next call, under a new fragment: browsers remember a
 * failed module by its URL, and the HTTP cache ignores the fragment.
 */
export function callCodeLoader(
  url: string,
  importModule: (url: string) => Promise<unknown> = (u) => import(u),
): () => Promise<typeof CallCode> {
  let loading: Promise<typeof CallCode> | null = null;
  let failures = 0;
  return () => {
    loading ??= (importModule(failures ? `${url}#retry-${failures}` : url) as Promise<typeof CallCode>).catch(
      (err: unknown) => {
        failures++;
        loading = null;
        throw err;
      },
    );
    return loading;
  };
}

export class DeferredCall {
  readonly events = new Emitter<CallEvents>();
  private call?: Call;
  private loading?: Promise<Call>;
  /** A start waiting for the code; a second start while it waits joins it. */
  private starting?: Promise<void>;
  /** Bumped by end(): a start still waiting for the code then does nothing. */
  private run = 0;
  private failed = false;

  constructor(
    private readonly audioHost: () => Node,
    private readonly load: () => Promise<typeof CallCode>,
    private readonly options: { debug: boolean; url: string },
  ) {}

  get state(): CallState {
    return this.call?.state ?? (this.failed ? "error" : "idle");
  }

  get agentState(): AgentState | null {
    return this.call?.agentState ?? null;
  }

  get muted(): boolean {
    return this.call?.muted ?? false;
  }

  get mode(): CallMode {
    return this.call?.mode ?? "voice";
  }

  get active(): boolean {
    return this.call?.active ?? false;
  }

  get transcript(): TranscriptEntry[] {
    return this.call?.transcript ?? [];
  }

  get answers(): Record<string, unknown> {
    return this.call?.answers ?? {};
  }

  get fields(): FormField[] {
    return this.call?.fields ?? [];
  }

  /** The real call, importing its code first if need be. */
  ready(): Promise<Call> {
    this.loading ??= this.load().then(
      (code) => (this.call ??= code.createCall(this.audioHost, this.events, { debug: this.options.debug })),
      (err: unknown) => {
        this.loading = undefined;
        throw err;
      },
    );
    return this.loading;
  }

  /** Import the code ahead of a start; a failure is left for the start to report. */
  prefetch(): void {
    this.ready().catch(() => undefined);
  }

  start(server: string, request: SessionRequest, grant?: GrantSource): Promise<void> {
    if (this.call) return this.call.start(server, request, grant);
    this.starting ??= this.startOnceLoaded(server, request, grant).finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async startOnceLoaded(server: string, request: SessionRequest, grant?: GrantSource): Promise<void> {
    const run = this.run;
    let call: Call;
    try {
      call = await this.ready();
    } catch {
      if (run === this.run) this.fail();
      return;
    }
    if (run === this.run) await call.start(server, request, grant);
  }

  /** The code did not arrive: the same error, in the same shape, as a failed call. */
  private fail(): void {
    const err = callCodeUnavailable(this.options.url);
    this.failed = true;
    this.events.emit("state", { state: "error", agentState: null, muted: false, mode: this.mode });
    if (err.developerMessage) console.warn(err.developerMessage);
    this.events.emit("error", { code: err.code, message: err.message, retryable: err.retryable });
  }

  end(reason?: Parameters<Call["end"]>[0]): void {
    this.run++;
    this.call?.end(reason);
  }

  setMuted(muted: boolean): void {
    this.call?.setMuted(muted);
  }

  /** A typed turn; false (nothing sent) before a call is connected. */
  send(text: string): Promise<boolean> {
    return this.call?.send(text) ?? Promise.resolve(false);
  }

  enableAudio(): Promise<void> {
    return this.call?.enableAudio() ?? Promise.resolve();
  }
}
