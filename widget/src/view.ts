// The widget's UI, built with DOM calls only (no innerHTML, no inline styles), in
// a shadow root. Stylesheets are adopted (constructable) where the browser allows,
// so a page's strict `style-src` does not apply to them.
import { MAX_TYPED_CHARS } from "./agent-contract";
import type { AgentState, CallMode, CallState, EndedEvent, FormField, TranscriptEntry } from "./call";
import type { DeferredCall } from "./deferred-call";
import { CSS } from "./styles";

const SVG_NS = "http://www.w3.org/2000/svg";

/** What the panel says when the call ended without the user hanging up. */
const ENDED_NOTICE: Record<Exclude<EndedEvent["reason"], "hangup">, Record<CallMode, string>> = {
  agent_left: { voice: "The agent left the call.", text: "The agent left the chat." },
  room_closed: { voice: "The call was closed on the other side.", text: "The chat was closed on the other side." },
};
const ICONS = {
  mic: "M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-3.08A7 7 0 0 0 19 11h-2z",
  micOff:
    "M19 11h-2a5 5 0 0 1-.7 2.56l1.46 1.46A6.96 6.96 0 0 0 19 11zM15 11V5a3 3 0 0 0-5.94-.6L15 10.34V11zM4.27 3 3 4.27l6 6V11a3 3 0 0 0 4.5 2.6l1.65 1.65A5 5 0 0 1 7 11H5a7 7 0 0 0 6 6.92V21h2v-3.08a6.9 6.9 0 0 0 3.61-1.5L19.73 21 21 19.73 4.27 3z",
  hangup:
    "M12 9c-1.6 0-3.15.25-4.6.72v3.1c0 .39-.23.74-.56.9-.98.49-1.87 1.12-2.66 1.85a1 1 0 0 1-1.41-.02L.29 13.08a1 1 0 0 1 0-1.41C3.34 8.78 7.46 7 12 7s8.66 1.78 11.71 4.67a1 1 0 0 1 0 1.41l-2.48 2.48a1 1 0 0 1-1.41.02 11.3 11.3 0 0 0-2.67-1.85.99.99 0 0 1-.56-.9v-3.1A15.9 15.9 0 0 0 12 9z",
  close: "M19 6.41 17.59 5 12 10.59 6.41 5 5 6.41 10.59 12 5 17.59 6.41 19 12 13.41 17.59 19 19 17.59 13.41 12z",
  sound: "M3 9v6h4l5 5V4L7 9H3zm13.5 3A4.5 4.5 0 0 0 14 7.97v8.05A4.47 4.47 0 0 0 16.5 12zM14 3.23v2.06a7 7 0 0 1 0 13.42v2.06A9 9 0 0 0 14 3.23z",
  chat: "M20 2H4a2 2 0 0 0-2 2v18l4-4h14a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2z",
  send: "M2.01 21 23 12 2.01 3 2 10l15 2-15 2z",
};

/** How close to the typed-turn limit the box starts counting down. */
const COUNT_FROM = MAX_TYPED_CHARS - 200;

function icon(path: string): SVGSVGElement {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const p = document.createElementNS(SVG_NS, "path");
  p.setAttribute("d", path);
  svg.appendChild(p);
  return svg;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

let sharedSheet: CSSStyleSheet | null | undefined;

function adoptStyles(root: ShadowRoot): void {
  if (sharedSheet === undefined) {
    try {
      sharedSheet = new CSSStyleSheet();
      sharedSheet.replaceSync(CSS);
    } catch {
      sharedSheet = null;
    }
  }
  if (sharedSheet && "adoptedStyleSheets" in root) {
    root.adoptedStyleSheets = [sharedSheet];
  } else {
    // Older browsers: a <style> element, which a strict style-src may block.
    root.appendChild(el("style", {}, CSS));
  }
}

const ACTIVE_STATES: ReadonlySet<CallState> = new Set(["requesting_microphone", "starting", "connecting", "connected"]);

const AGENT_STATUS: Record<AgentState, string> = {
  connecting: "Waiting for the agent…",
  initializing: "The agent is getting ready…",
  idle: "Listening",
  listening: "Listening",
  thinking: "Thinking…",
  speaking: "Speaking",
};

/** The words that change when the call is typed only: nobody listens or speaks. */
const TEXT_AGENT_STATUS: Partial<Record<AgentState, string>> = {
  idle: "Ready",
  listening: "Ready",
  speaking: "Writing…",
};
const TEXT_CALL_STATUS: Partial<Record<CallState, string>> = {
  starting: "Starting the chat…",
  ended: "Chat ended",
  error: "Chat failed",
};

const CALL_STATUS: Record<CallState, string> = {
  idle: "Ready",
  requesting_microphone: "Waiting for microphone permission…",
  starting: "Starting the call…",
  connecting: "Connecting…",
  connected: "Connected",
  ended: "Call ended",
  error: "Call failed",
};

export interface ViewOptions {
  label: string;
  placement: "floating" | "inline";
  button: boolean;
  /** The mode a call starts in unless start() says otherwise: the launcher's words. */
  mode: CallMode;
  onStart: () => void;
}

export class View {
  readonly host: HTMLElement;
  private readonly shadow: ShadowRoot;
  private readonly launcher: HTMLButtonElement;
  private readonly panel: HTMLElement;
  private readonly title: HTMLElement;
  private readonly dot: HTMLElement;
  private readonly status: HTMLElement;
  private readonly error: HTMLElement;
  /** Why a call ended, when the user did not end it. */
  private readonly notice: HTMLElement;
  private endReason: EndedEvent["reason"] | null = null;
  private readonly retry: HTMLButtonElement;
  private readonly closeButton: HTMLButtonElement;
  private readonly transcript: HTMLOListElement;
  private readonly formTitle: HTMLElement;
  private readonly form: HTMLDListElement;
  private readonly controls: HTMLElement;
  private readonly mute: HTMLButtonElement;
  private readonly hangup: HTMLButtonElement;
  private readonly sound: HTMLButtonElement;
  private readonly compose: HTMLFormElement;
  private readonly message: HTMLTextAreaElement;
  private readonly send: HTMLButtonElement;
  private readonly count: HTMLElement;
  private sending = false;
  private readonly audio: HTMLElement;
  private unsubscribe: (() => void)[] = [];
  private entries = new Map<string, HTMLLIElement>();
  private label: string;
  private readonly hasButton: boolean;
  private readonly defaultMode: CallMode;
  private shownState: CallState | null = null;
  /** Whether the last error is one that starting again may fix. */
  private retryable = true;

  constructor(
    private readonly call: DeferredCall,
    options: ViewOptions,
  ) {
    this.label = options.label;
    this.hasButton = options.button;
    this.defaultMode = options.mode;
    this.host = document.createElement("oshara-widget");
    this.host.setAttribute("data-placement", options.placement);
    this.shadow = this.host.attachShadow({ mode: "open" });
    adoptStyles(this.shadow);

    this.launcher = el("button", { type: "button", class: "launcher", part: "launcher" }, this.label);
    this.renderLauncher(this.defaultMode);
    this.launcher.addEventListener("click", () => options.onStart());

    this.title = el("div", { class: "title", id: "oshara-title" }, this.label);
    this.closeButton = el("button", { type: "button", class: "close", "aria-label": "Close" }, icon(ICONS.close));
    this.closeButton.addEventListener("click", () => this.dismiss());
    this.dot = el("span", { class: "dot", "aria-hidden": "true" });
    this.status = el("span", { class: "status-text" });
    const status = el("div", { class: "status", role: "status", "aria-live": "polite" }, this.dot, this.status);
    this.error = el("p", { class: "error", role: "alert" });
    this.notice = el("p", { class: "notice", role: "alert" });
    this.retry = el("button", { type: "button", class: "retry" }, "Try again");
    this.retry.addEventListener("click", () => options.onStart());
    this.transcript = el("ol", { class: "transcript", role: "log", "aria-live": "polite", "aria-label": "Transcript" });
    this.formTitle = el("p", { class: "form-title", id: "oshara-form-title" }, "Your answers");
    this.form = el("dl", { class: "form", "aria-labelledby": "oshara-form-title" });
    this.mute = el("button", { type: "button", class: "mute", "aria-pressed": "false" });
    this.mute.addEventListener("click", () => this.call.setMuted(!this.call.muted));
    this.hangup = el("button", { type: "button", class: "hangup" }, icon(ICONS.hangup), "Hang up");
    this.hangup.setAttribute("aria-label", "Hang up");
    this.hangup.addEventListener("click", () => this.call.end());
    this.sound = el("button", { type: "button", class: "sound" }, icon(ICONS.sound), "Turn on sound");
    this.sound.addEventListener("click", () => {
      this.call.enableAudio().catch(() => undefined);
    });
    this.controls = el("div", { class: "controls" }, this.mute, this.hangup, this.sound);
    // Typed turns, in a voice call and in a text-only one. Enter sends; Shift+Enter is a new line.
    this.message = el("textarea", {
      class: "message",
      rows: "1",
      maxlength: String(MAX_TYPED_CHARS),
      placeholder: "Type a message…",
      "aria-label": "Message to the agent",
      "aria-describedby": "oshara-count",
      enterkeyhint: "send",
    });
    this.count = el("span", { class: "count", id: "oshara-count", "aria-live": "polite" });
    this.send = el("button", { type: "submit", class: "send", "aria-label": "Send" }, icon(ICONS.send));
    this.compose = el("form", { class: "compose" }, this.message, this.send, this.count);
    this.compose.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    this.message.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    });
    this.message.addEventListener("input", () => this.renderCompose());
    this.audio = el("div", { hidden: "" });

    this.panel = el(
      "section",
      { class: "panel", part: "panel", role: "region", "aria-labelledby": "oshara-title" },
      el("div", { class: "head" }, this.title, this.closeButton),
      status,
      this.error,
      this.notice,
      this.retry,
      this.transcript,
      this.formTitle,
      this.form,
      this.compose,
      this.controls,
    );
    this.shadow.append(el("div", { class: "root" }, this.panel, this.launcher), this.audio);

    this.unsubscribe.push(
      call.events.on("state", () => this.render()),
      call.events.on("error", (e) => {
        this.error.textContent = e.message;
        this.retryable = e.retryable;
        this.render();
      }),
      call.events.on("ended", ({ reason }) => {
        this.endReason = reason;
        this.render();
      }),
      call.events.on("transcript", ({ entry }) => this.renderEntry(entry)),
      call.events.on("form", ({ fields, answers }) => this.renderForm(fields, answers)),
      call.events.on("audio", ({ blocked }) => {
        this.sound.hidden = !blocked;
      }),
      call.events.on("character", ({ name }) => {
        this.title.textContent = name;
      }),
    );
    this.render();
  }

  /** Where the call's <audio> elements go: inside the shadow root, invisible. */
  audioHost(): Node {
    return this.audio;
  }

  destroy(): void {
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    this.host.remove();
  }

  private dismiss(): void {
    this.panel.hidden = true;
    this.render();
    this.launcher.focus();
  }

  private submit(): void {
    const text = this.message.value;
    if (this.sending || !text.trim() || this.call.state !== "connected") return;
    this.sending = true;
    this.renderCompose();
    this.call
      .send(text)
      .then((sent) => {
        // A turn that did not go out stays in the box, to send again.
        if (sent && this.message.value === text) this.message.value = "";
      })
      .catch(() => undefined)
      .finally(() => {
        this.sending = false;
        this.renderCompose();
        if (this.call.state === "connected") this.message.focus();
      });
  }

  private renderCompose(): void {
    const length = [...this.message.value].length;
    this.send.disabled = this.sending || this.call.state !== "connected" || !this.message.value.trim();
    this.count.textContent = length >= COUNT_FROM ? `${length} / ${MAX_TYPED_CHARS} characters` : "";
  }

  private renderLauncher(mode: CallMode): void {
    if (this.launcher.getAttribute("data-mode") === mode) return;
    this.launcher.setAttribute("data-mode", mode);
    const text = mode === "text" ? "Start a chat" : "Start a voice call";
    this.launcher.replaceChildren(icon(mode === "text" ? ICONS.chat : ICONS.mic), this.label);
    this.launcher.setAttribute("aria-label", `${text}: ${this.label}`);
  }

  private render(): void {
    const { state, agentState, muted } = this.call;
    const active = this.call.active;
    const mode = state === "idle" ? this.defaultMode : this.call.mode;
    const wasHidden = this.panel.hidden;
    const wasActive = this.shownState !== null && ACTIVE_STATES.has(this.shownState);
    const justConnected = state === "connected" && this.shownState !== "connected";
    // Whether keyboard focus is ours to move: inside the widget, or nowhere in particular.
    const focused = this.shadow.activeElement;
    const focusIsOurs = focused !== null || !document.activeElement || document.activeElement === document.body;
    this.host.setAttribute("data-state", state);
    if (state !== this.shownState) this.panel.hidden = state === "idle";
    this.shownState = state;
    // The launcher and the panel take turns: an ended or failed call keeps its panel
    // (with "Try again"/"Call again") until it is closed.
    this.launcher.hidden = !this.hasButton || !this.panel.hidden;
    this.closeButton.hidden = active;
    this.controls.hidden = !active;
    this.host.setAttribute("data-mode", mode);
    this.renderLauncher(mode);
    this.compose.hidden = state !== "connected";
    this.mute.hidden = mode === "text";
    this.renderCompose();
    this.error.hidden = state !== "error";
    // "Try again" only where it can help: a site that is not allowed stays not allowed.
    this.retry.hidden = !(state === "ended" || (state === "error" && this.retryable));
    this.retry.textContent = state === "ended" ? (mode === "text" ? "Chat again" : "Call again") : "Try again";
    const reason = state === "ended" && this.endReason !== "hangup" ? this.endReason : null;
    this.notice.hidden = reason === null;
    if (reason !== null) this.notice.textContent = ENDED_NOTICE[reason][mode];
    if (active && !wasActive) {
      // A new call (or chat): the last one's transcript and answers go.
      this.endReason = null;
      this.notice.hidden = true;
      this.message.value = "";
      this.transcript.replaceChildren();
      this.entries.clear();
      this.form.replaceChildren();
      this.title.textContent = this.label;
      this.sound.hidden = true;
    }
    this.formTitle.hidden = this.form.childElementCount === 0;
    this.form.hidden = this.form.childElementCount === 0;
    this.transcript.hidden = this.transcript.childElementCount === 0;

    const typedOnly = mode === "text";
    let text =
      state === "connected" && agentState
        ? (typedOnly && TEXT_AGENT_STATUS[agentState]) || AGENT_STATUS[agentState]
        : (typedOnly && TEXT_CALL_STATUS[state]) || CALL_STATUS[state];
    if (active && muted) text += " · microphone off";
    this.status.textContent = text;
    this.dot.setAttribute("data-state", state === "connected" && agentState ? agentState : state);

    this.mute.replaceChildren(icon(muted ? ICONS.micOff : ICONS.mic), muted ? "Unmute" : "Mute");
    this.mute.setAttribute("aria-pressed", String(muted));
    this.mute.setAttribute("aria-label", "Mute microphone");
    this.mute.disabled = state !== "connected";

    const endLabel = typedOnly ? "End chat" : "Hang up";
    this.hangup.replaceChildren(icon(ICONS.hangup), endLabel);
    this.hangup.setAttribute("aria-label", endLabel);

    // Keep keyboard focus inside the widget as buttons appear and disappear. A text-only
    // chat puts it in the message box once connected: typing is all there is to do.
    const focusFollows = wasHidden || focused === this.launcher || focused === this.retry;
    if (focusIsOurs && typedOnly && justConnected && (focusFollows || focused === this.hangup || !focused)) {
      this.message.focus();
    } else if (focusIsOurs && active && focusFollows) {
      this.hangup.focus();
    } else if (focusIsOurs && !active && !this.panel.hidden && focused !== this.closeButton) {
      (this.retry.hidden ? this.closeButton : this.retry).focus();
    }
  }

  private renderEntry(entry: TranscriptEntry): void {
    let item = this.entries.get(entry.id);
    if (!item) {
      item = el("li", { "data-speaker": entry.speaker });
      this.entries.set(entry.id, item);
      this.transcript.appendChild(item);
      while (this.transcript.childElementCount > 200) {
        const first = this.transcript.firstElementChild as HTMLLIElement;
        for (const [id, node] of this.entries) if (node === first) this.entries.delete(id);
        first.remove();
      }
    }
    item.setAttribute("data-final", String(entry.final));
    item.replaceChildren(
      el("span", { class: "who" }, entry.speaker === "agent" ? "Agent: " : "You: "),
      entry.text,
    );
    this.transcript.hidden = false;
    this.transcript.scrollTop = this.transcript.scrollHeight;
  }

  private renderForm(fields: FormField[], answers: Record<string, unknown>): void {
    const rows: Node[] = [];
    for (const field of fields) {
      const value = answers[field.name];
      const dt = el("dt", {}, field.label);
      if (field.description) dt.setAttribute("title", field.description);
      const dd =
        value === undefined
          ? el("dd", { "data-empty": "" }, "—")
          : el("dd", {}, typeof value === "string" ? value : JSON.stringify(value));
      if (value === undefined) dd.setAttribute("aria-label", "not answered yet");
      rows.push(dt, dd);
    }
    this.form.replaceChildren(...rows);
    this.form.hidden = rows.length === 0;
    this.formTitle.hidden = rows.length === 0;
  }
}
