// The loader, widget.js: reads the <script data-*> tag, mounts the call button, and
// exposes window.Oshara for pages that pass user context or build their own UI. The
// call itself (livekit-client) is the chunk deferred-call.ts imports on first use.
import { FORM_TOPIC, TRANSCRIPTION_TOPIC } from "./agent-contract";
import type { CallEvents } from "./call";
import { callCodeLoader, DeferredCall } from "./deferred-call";
import { WidgetError } from "./errors";
import { type GrantSource, givenGrant, grantFrom, resolveGrantUrl, spentGrant } from "./grant";
import type { SessionRequest } from "./session-api";
import { View } from "./view";

/** Per-session fields of POST /v1/sessions that a page may set (all optional). */
export interface SessionOverrides {
  /** "text": a typed chat, no microphone; "voice" (the default): a call with a text box beside it. */
  mode?: "voice" | "text";
  language?: string;
  system_prompt?: string;
  greeting?: string;
  voice_model?: string;
  reference_audio_url?: string;
  mcp_headers?: Record<string, string>;
  /** Shallow-merged over the widget's own metadata (data-metadata). */
  metadata?: Record<string, unknown>;
  /**
   * A session grant from the site's backend, for this start only (each works once);
   * it wins over `grantUrl`. A credential: the widget never logs or shows it.
   */
  grant?: string;
}

export interface WidgetOptions extends Omit<SessionOverrides, "grant"> {
  /** Character slug. */
  agent: string;
  /** Token server base URL; defaults to the origin widget.js was loaded from. */
  server?: string;
  /** Button text. */
  label?: string;
  /** Element (or CSS selector) to render into; without it the button floats bottom-right. */
  mount?: Element | string | null;
  /** Render nothing: drive the call with start()/end() and your own UI. */
  headless?: boolean;
  /** Show the widget's own call button (default true); false shows only the call panel. */
  button?: boolean;
  /**
   * The site's own endpoint that answers `POST` with `{"grant": "<token>"}`; asked for
   * a fresh session grant before every start. Relative URLs resolve against the page.
   */
  grantUrl?: string;
}

const OVERRIDE_KEYS = [
  "mode",
  "language",
  "system_prompt",
  "greeting",
  "voice_model",
  "reference_audio_url",
  "mcp_headers",
] as const;

const script = document.currentScript as HTMLScriptElement | null;
const scriptOrigin = (() => {
  try {
    return script?.src ? new URL(script.src, location.href).origin : location.origin;
  } catch {
    return location.origin;
  }
})();

const debug = script?.hasAttribute("data-debug") ?? false;
// The chunk sits beside widget.js, wherever that was served from (another origin too).
const callCodeUrl = new URL(__OSHARA_CALL_CHUNK__, script?.src || location.href).href;
const loadCallCode = callCodeLoader(callCodeUrl);

const trimSlash = (url: string) => url.replace(/\/+$/, "");

/** One call button (or headless controller) for one character. */
export class OsharaWidget {
  readonly options: WidgetOptions;
  private readonly call: DeferredCall;
  private view?: View;
  private lastOverrides: SessionOverrides = {};
  /** Whether the last start had a grant from start(): spent now, it is never sent again. */
  private lastGrantGiven = false;

  constructor(options: WidgetOptions) {
    if (!options || typeof options.agent !== "string" || !options.agent) {
      throw new WidgetError("configuration_error", "Oshara: `agent` (a character slug) is required.");
    }
    if ((options as { grant?: unknown }).grant !== undefined) {
      throw new WidgetError(
        "configuration_error",
        "Oshara: create() takes no grant, since each works once: pass it to start(), or set grantUrl.",
      );
    }
    if (options.grantUrl !== undefined) resolveGrantUrl(options.grantUrl, document.baseURI);
    this.options = { ...options };
    this.call = new DeferredCall(() => this.view?.audioHost() ?? document.body, loadCallCode, {
      debug,
      url: callCodeUrl,
    });
    if (!options.headless) this.mount(options.mount ?? null);
  }

  get state() {
    return { state: this.call.state, agentState: this.call.agentState, muted: this.call.muted };
  }

  get transcript() {
    return [...this.call.transcript];
  }

  get answers() {
    return { ...this.call.answers };
  }

  /** Render the button into `target` (element or selector), or floating when null. */
  mount(target: Element | string | null = null): this {
    this.view?.destroy();
    const parent = typeof target === "string" ? document.querySelector(target) : target;
    if (typeof target === "string" && !parent) {
      throw new WidgetError("configuration_error", `Oshara: no element matches ${target}`);
    }
    this.view = new View(this.call, {
      label: this.options.label ?? "Talk to us",
      placement: parent ? "inline" : "floating",
      button: this.options.button !== false,
      mode: this.options.mode === "text" ? "text" : "voice",
      onStart: () => {
        this.again().catch(() => undefined);
      },
    });
    // The pointer or focus reaching the widget is a hint that a call may follow.
    for (const hint of ["pointerover", "focusin"]) {
      this.view.host.addEventListener(hint, () => this.call.prefetch(), { once: true });
    }
    const attach = () => (parent ?? document.body).appendChild(this.view!.host);
    if (parent || document.body) attach();
    else document.addEventListener("DOMContentLoaded", attach, { once: true });
    return this;
  }

  /** Remove the UI (ends a running call). */
  unmount(): void {
    this.call.end();
    this.view?.destroy();
    this.view = undefined;
  }

  /** Start a call. Resolves when connected or failed; failures arrive as "error" events. */
  start(overrides: SessionOverrides = {}): Promise<void> {
    const { grant, ...rest } = overrides ?? {};
    this.lastOverrides = rest;
    this.lastGrantGiven = grant !== undefined && grant !== null;
    return this.begin(rest, this.lastGrantGiven ? givenGrant(grant) : this.grantFromUrl());
  }

  /**
   * The panel's "Try again" and "Call again": the last call's overrides, with a fresh
   * grant from the grant URL. A grant given to start() is spent and never resent.
   */
  private again(): Promise<void> {
    return this.begin(this.lastOverrides, this.grantFromUrl() ?? (this.lastGrantGiven ? spentGrant() : undefined));
  }

  private grantFromUrl(): GrantSource | undefined {
    const url = this.options.grantUrl;
    return url === undefined ? undefined : grantFrom(url, document.baseURI);
  }

  private begin(overrides: SessionOverrides, grant: GrantSource | undefined): Promise<void> {
    const o = this.options;
    const body: SessionRequest = { agent: o.agent, origin_url: location.href };
    for (const key of OVERRIDE_KEYS) {
      const value = overrides[key] ?? o[key];
      if (value !== undefined && value !== "") (body as unknown as Record<string, unknown>)[key] = value;
    }
    if (o.metadata || overrides.metadata) body.metadata = { ...o.metadata, ...overrides.metadata };
    return this.call.start(trimSlash(o.server ?? scriptOrigin), body, grant);
  }

  /** Hang up, or cancel a call that is still starting. */
  end(): void {
    this.call.end();
  }

  mute(muted = true): void {
    this.call.setMuted(muted);
  }

  /** Send a typed turn to the agent; resolves false (nothing sent) when no call is connected. */
  send(text: string): Promise<boolean> {
    return this.call.send(String(text ?? ""));
  }

  on<K extends keyof CallEvents>(event: K, listener: (payload: CallEvents[K]) => void): () => void {
    return this.call.events.on(event, listener);
  }

  off<K extends keyof CallEvents>(event: K, listener: (payload: CallEvents[K]) => void): void {
    this.call.events.off(event, listener);
  }
}

/** The options of the <script data-*> tag's widget; null without data-agent. */
export function optionsFromScript(tag: HTMLScriptElement): WidgetOptions | null {
  const data = tag.dataset;
  if (!data.agent) return null;
  const options: WidgetOptions = {
    agent: data.agent,
    server: data.server,
    label: data.label,
    mount: data.mount ?? null,
    language: data.language,
    system_prompt: data.systemPrompt,
    greeting: data.greeting,
    voice_model: data.voiceModel,
    reference_audio_url: data.referenceAudioUrl,
  };
  if (data.grantUrl !== undefined) options.grantUrl = data.grantUrl;
  if (data.mode === "voice" || data.mode === "text") options.mode = data.mode;
  else if (data.mode !== undefined) console.warn('Oshara: data-mode must be "voice" or "text"; ignored.');
  if (data.metadata) {
    try {
      const parsed = JSON.parse(data.metadata);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) options.metadata = parsed;
      else console.warn("Oshara: data-metadata must be a JSON object; ignored.");
    } catch {
      console.warn("Oshara: data-metadata is not valid JSON; ignored.");
    }
  }
  return options;
}

interface OsharaGlobal {
  version: string;
  topics: { transcription: string; form: string };
  /** The widget created from the <script data-agent> tag, if any. */
  widget: OsharaWidget | null;
  create(options: WidgetOptions): OsharaWidget;
  start(overrides?: SessionOverrides): Promise<void>;
  end(): void;
  mute(muted?: boolean): void;
  send(text: string): Promise<boolean>;
  on: OsharaWidget["on"];
  off: OsharaWidget["off"];
  mount(target?: Element | string | null): OsharaWidget;
  unmount(): void;
}

function defaultWidget(): OsharaWidget {
  if (!api.widget) {
    throw new WidgetError(
      "configuration_error",
      "Oshara: no widget on this page; add data-agent to the script tag or use Oshara.create({agent}).",
    );
  }
  return api.widget;
}

const api: OsharaGlobal = {
  version: __OSHARA_VERSION__,
  topics: { transcription: TRANSCRIPTION_TOPIC, form: FORM_TOPIC },
  widget: null,
  create: (options) => new OsharaWidget(options),
  start: (overrides) => defaultWidget().start(overrides),
  end: () => defaultWidget().end(),
  mute: (muted) => defaultWidget().mute(muted),
  send: (text) => defaultWidget().send(text),
  on: (event, listener) => defaultWidget().on(event, listener),
  off: (event, listener) => defaultWidget().off(event, listener),
  mount: (target) => defaultWidget().mount(target ?? null),
  unmount: () => defaultWidget().unmount(),
};

const w = window as unknown as { Oshara?: OsharaGlobal };
if (!w.Oshara) {
  w.Oshara = api;
  const options = script ? optionsFromScript(script) : null;
  if (options) {
    if (!script?.dataset.server && script) options.server = scriptOrigin;
    const create = () => {
      try {
        api.widget = new OsharaWidget(options);
      } catch (err) {
        console.error(err);
      }
      document.dispatchEvent(new CustomEvent("oshara:ready", { detail: api }));
    };
    // data-mount may name an element further down the page.
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", create, { once: true });
    else create();
  } else {
    document.dispatchEvent(new CustomEvent("oshara:ready", { detail: api }));
  }
}
