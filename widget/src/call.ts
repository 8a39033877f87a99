// One voice call: microphone, session grant, POST /v1/sessions, the LiveKit room,
// and what the agent publishes into it (state attribute, transcript streams, form
// answers).
// No UI here: the view and the page listen to `events`.
import {
  ConnectionError,
  ConnectionErrorReason,
  createLocalAudioTrack,
  DisconnectReason,
  type LocalAudioTrack,
  type Participant,
  ParticipantKind,
  type RemoteParticipant,
  type RemoteTrack,
  Room,
  RoomEvent,
  Track,
  type TextStreamReader,
} from "livekit-client";
import {
  AGENT_STATE_ATTRIBUTE,
  CHAT_TOPIC,
  FORM_TOPIC,
  MAX_TYPED_CHARS,
  TRANSCRIPTION_TOPIC,
} from "./agent-contract";
import { Emitter } from "./emitter";
import {
  connectionLost,
  insecureContext,
  microphoneError,
  voiceServerRefused,
  voiceServerUnreachable,
  WidgetError,
} from "./errors";
import type { GrantSource } from "./grant";
import { type SessionRequest, type StartedSession, startSession } from "./session-api";

/** Topics and attributes the agent worker publishes (see docs/widget.md, "Agent contract"). */
export { AGENT_STATE_ATTRIBUTE, CHAT_TOPIC, FORM_TOPIC, MAX_TYPED_CHARS, TRANSCRIPTION_TOPIC };
const SEGMENT_ID_ATTRIBUTE = "lk.segment_id";
const FINAL_ATTRIBUTE = "lk.transcription_final";
const TRACK_ID_ATTRIBUTE = "lk.transcribed_track_id";
const MAX_TRANSCRIPT_ENTRIES = 200;
/** How a call talks: `voice` (spoken, and typed beside it) or `text` (typed only, no microphone). */
export type CallMode = "voice" | "text";

export type CallState =
  | "idle"
  | "requesting_microphone"
  | "starting"
  | "connecting"
  | "connected"
  | "ended"
  | "error";

/** `lk.agent.state` as livekit-agents sets it, plus "connecting" until the agent has joined. */
export type AgentState = "connecting" | "initializing" | "idle" | "listening" | "thinking" | "speaking";

export interface StateEvent {
  state: CallState;
  agentState: AgentState | null;
  muted: boolean;
  mode: CallMode;
}

export interface TranscriptEntry {
  /** The segment id (`lk.segment_id`): interim and final text of one utterance share it. */
  id: string;
  speaker: "agent" | "user";
  text: string;
  final: boolean;
  /** `text` for a turn the user typed, and for every line of a text-only call. */
  source: "voice" | "text";
}

export interface FormField {
  name: string;
  label: string;
  description: string;
  required: boolean;
}

export interface FormEvent {
  /** The field that changed; null when only the list of fields changed. */
  field: string | null;
  value: unknown;
  answers: Record<string, unknown>;
  /** The character's form fields, from the room metadata, in order. */
  fields: FormField[];
}

export interface ErrorEvent {
  code: WidgetError["code"];
  message: string;
  /** Whether starting again may succeed; the panel offers "Try again" only then. */
  retryable: boolean;
  status?: number;
  retryAfterSeconds?: number;
}

export interface SessionEvent {
  session_id: string;
  room_name: string;
  participant_identity: string;
  character_slug: string;
  livekit_url: string;
  expires_in_seconds: number;
}

export interface EndedEvent {
  reason: "hangup" | "agent_left" | "room_closed";
}

export interface CallEvents extends Record<string, unknown> {
  state: StateEvent;
  transcript: { entry: TranscriptEntry; transcript: TranscriptEntry[] };
  form: FormEvent;
  error: ErrorEvent;
  session: SessionEvent;
  ended: EndedEvent;
  /** The browser blocked autoplay: call `enableAudio()` from a click to hear the agent. */
  audio: { blocked: boolean };
  character: { name: string };
}

const AGENT_STATES: ReadonlySet<string> = new Set([
  "initializing",
  "idle",
  "listening",
  "thinking",
  "speaking",
]);

const humanize = (name: string): string => {
  const words = name.replace(/[_-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
};

const isAgent = (p: Participant): boolean =>
  p.kind === ParticipantKind.AGENT || p.attributes[AGENT_STATE_ATTRIBUTE] !== undefined;

export class Call {
  state: CallState = "idle";
  agentState: AgentState | null = null;
  muted = false;
  mode: CallMode = "voice";
  transcript: TranscriptEntry[] = [];
  answers: Record<string, unknown> = {};
  fields: FormField[] = [];

  private run = 0;
  private room?: Room;
  private mic?: LocalAudioTrack;
  private abort?: AbortController;
  private audioElements = new Set<HTMLMediaElement>();
  private typedTurns = 0;

  /**
   * `audioHost` receives the <audio> elements that play the agent; `events` may be an
   * emitter the page already listens to (the loader's, see deferred-call.ts).
   */
  constructor(
    private readonly audioHost: () => Node,
    readonly events = new Emitter<CallEvents>(),
  ) {}

  get active(): boolean {
    return ["requesting_microphone", "starting", "connecting", "connected"].includes(this.state);
  }

  /**
   * `grant`, when given, is asked for a session grant once the microphone is granted.
   * `request.mode` "text" never touches the microphone (no getUserMedia at all).
   */
  async start(server: string, request: SessionRequest, grant?: GrantSource): Promise<void> {
    if (this.active) return;
    const run = ++this.run;
    this.transcript = [];
    this.answers = {};
    this.fields = [];
    this.muted = false;
    this.mode = request.mode === "text" ? "text" : "voice";
    this.abort = new AbortController();
    try {
      if (this.mode === "voice") {
        // The microphone comes first: a refusal then costs no session slot, and the
        // permission prompt follows the click that asked for the call.
        this.setState("requesting_microphone", null);
        const mic = await this.openMicrophone();
        if (run !== this.run) {
          mic.stop();
          return;
        }
        this.mic = mic;
      }

      this.setState("starting", null);
      const session = await this.requestSession(server, request, grant, this.abort.signal);
      if (run !== this.run) return;
      if (session.mode === "text" && this.mode === "voice") {
        // The character talks only in text: the microphone is not needed after all.
        this.mic?.stop();
        this.mic = undefined;
        this.mode = "text";
      }
      this.events.emit("session", sessionEvent(session));

      this.setState("connecting", "connecting");
      const room = this.newRoom();
      this.room = room;
      this.listen(room, run);
      try {
        await room.connect(session.livekit_url, session.token, { autoSubscribe: true });
        if (run !== this.run) return;
        // Muting stops the microphone itself: nothing is sent, and the browser's
        // recording indicator goes off; unmuting opens it again.
        if (this.mic)
          await room.localParticipant.publishTrack(this.mic, {
            source: Track.Source.Microphone,
            stopMicTrackOnMute: true,
          });
      } catch (err) {
        if (run !== this.run) return;
        throw err instanceof ConnectionError && err.reason === ConnectionErrorReason.NotAllowed
          ? voiceServerRefused()
          : voiceServerUnreachable();
      }
      if (run !== this.run) return;
      this.readRoomMetadata(room.metadata);
      const agent = [...room.remoteParticipants.values()].find(isAgent);
      this.setState("connected", agent ? this.agentStateOf(agent) : "connecting");
      if (this.mode === "voice") {
        this.events.emit("audio", { blocked: !room.canPlaybackAudio });
        room.startAudio().catch(() => undefined);
      }
    } catch (err) {
      if (run !== this.run) return;
      this.fail(
        err instanceof WidgetError
          ? err
          : new WidgetError("server_error", "Something went wrong on our side. Please try again."),
      );
    }
  }

  /** Hang up (or cancel a call that is still starting). */
  end(reason: EndedEvent["reason"] = "hangup"): void {
    const wasActive = this.active;
    this.run++;
    this.abort?.abort();
    this.teardown();
    if (wasActive) {
      this.setState("ended", null);
      this.events.emit("ended", { reason });
    }
  }

  setMuted(muted: boolean): void {
    if (!this.mic) return;
    this.muted = muted;
    (muted ? this.mic.mute() : this.mic.unmute()).catch(() => undefined);
    this.setState(this.state, this.agentState);
  }

  /**
   * Send a typed turn to the agent (a text stream on `lk.chat`) and add it to the
   * transcript. False, with nothing sent, when the call is not connected, the text is
   * blank or longer than MAX_TYPED_CHARS, or the room would not take it.
   */
  async send(text: string): Promise<boolean> {
    const turn = text.trim();
    const room = this.room;
    if (!room || this.state !== "connected" || !turn || [...turn].length > MAX_TYPED_CHARS) return false;
    const run = this.run;
    try {
      await room.localParticipant.sendText(turn, { topic: CHAT_TOPIC });
    } catch {
      return false;
    }
    if (run !== this.run) return false;
    this.updateTranscript({ id: `typed-${++this.typedTurns}`, speaker: "user", text: turn, final: true, source: "text" });
    return true;
  }

  /** Start audio playback after the browser blocked it; call from a user gesture. */
  async enableAudio(): Promise<void> {
    if (!this.room) return;
    await this.room.startAudio();
    this.events.emit("audio", { blocked: !this.room.canPlaybackAudio });
  }

  /**
   * POST /v1/sessions. A session grant is asked for only now, after the microphone
   * prompt: it is short-lived, and a refused microphone then spends none.
   */
  private async requestSession(
    server: string,
    request: SessionRequest,
    grant: GrantSource | undefined,
    signal: AbortSignal,
  ): Promise<StartedSession> {
    const body = grant ? { ...request, grant: await grant(signal) } : request;
    return startSession(server, body, signal);
  }

  private newRoom(): Room {
    return new Room({ adaptiveStream: false, dynacast: false, disconnectOnPageLeave: true });
  }

  private async openMicrophone(): Promise<LocalAudioTrack> {
    if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) throw insecureContext();
    try {
      return await createLocalAudioTrack({ echoCancellation: true, noiseSuppression: true, autoGainControl: true });
    } catch (err) {
      throw microphoneError(err);
    }
  }

  private fail(err: WidgetError): void {
    this.teardown();
    this.setState("error", null);
    // For the site's developer; it never holds a credential (see WidgetError).
    if (err.developerMessage) console.warn(err.developerMessage);
    const event: ErrorEvent = { code: err.code, message: err.message, retryable: err.retryable };
    if (err.status !== undefined) event.status = err.status;
    if (err.retryAfterSeconds !== undefined) event.retryAfterSeconds = err.retryAfterSeconds;
    this.events.emit("error", event);
  }

  private teardown(): void {
    const room = this.room;
    this.room = undefined;
    if (room) {
      room.removeAllListeners();
      room.disconnect().catch(() => undefined);
    }
    this.mic?.stop();
    this.mic = undefined;
    for (const el of this.audioElements) el.remove();
    this.audioElements.clear();
  }

  private setState(state: CallState, agentState: AgentState | null): void {
    this.state = state;
    this.agentState = agentState;
    this.events.emit("state", { state, agentState, muted: this.muted, mode: this.mode });
  }

  private agentStateOf(p: Participant): AgentState {
    const value = p.attributes[AGENT_STATE_ATTRIBUTE];
    return value && AGENT_STATES.has(value) ? (value as AgentState) : "initializing";
  }

  private listen(room: Room, run: number): void {
    const current = () => run === this.run && this.room === room;

    room.on(RoomEvent.TrackSubscribed, (track: RemoteTrack) => {
      if (!current() || track.kind !== Track.Kind.Audio) return;
      const el = track.attach();
      el.setAttribute("data-oshara-audio", "");
      this.audioElements.add(el);
      this.audioHost().appendChild(el);
    });
    room.on(RoomEvent.TrackUnsubscribed, (track: RemoteTrack) => {
      for (const el of track.detach()) {
        this.audioElements.delete(el);
        el.remove();
      }
    });
    room.on(RoomEvent.AudioPlaybackStatusChanged, () => {
      if (current()) this.events.emit("audio", { blocked: !room.canPlaybackAudio });
    });
    room.on(RoomEvent.ParticipantConnected, (p: RemoteParticipant) => {
      if (current() && this.state === "connected" && isAgent(p)) this.setState("connected", this.agentStateOf(p));
    });
    room.on(RoomEvent.ParticipantAttributesChanged, (changed: Record<string, string>, p: Participant) => {
      if (!current() || this.state !== "connected" || p === room.localParticipant) return;
      if (AGENT_STATE_ATTRIBUTE in changed) this.setState("connected", this.agentStateOf(p));
    });
    room.on(RoomEvent.ParticipantDisconnected, (p: RemoteParticipant) => {
      if (current() && this.state === "connected" && isAgent(p)) this.end("agent_left");
    });
    room.on(RoomEvent.Disconnected, (reason?: DisconnectReason) => {
      if (!current() || this.state !== "connected") return;
      if (
        reason === DisconnectReason.ROOM_DELETED ||
        reason === DisconnectReason.ROOM_CLOSED ||
        reason === DisconnectReason.PARTICIPANT_REMOVED ||
        reason === DisconnectReason.CLIENT_INITIATED
      ) {
        this.end("room_closed");
      } else {
        this.fail(connectionLost());
      }
    });
    room.on(RoomEvent.RoomMetadataChanged, (metadata: string) => {
      if (current()) this.readRoomMetadata(metadata);
    });
    room.on(
      RoomEvent.DataReceived,
      (payload: Uint8Array, p?: RemoteParticipant, _kind?: unknown, topic?: string) => {
        if (current() && topic === FORM_TOPIC && p) this.applyFormMessage(new TextDecoder().decode(payload));
      },
    );
    room.registerTextStreamHandler(FORM_TOPIC, (reader, sender) => {
      if (sender.identity === room.localParticipant.identity) return;
      reader
        .readAll()
        .then((text) => current() && this.applyFormMessage(text))
        .catch(() => undefined);
    });
    room.registerTextStreamHandler(TRANSCRIPTION_TOPIC, (reader, sender) => {
      // The agent publishes the user's words on the user's behalf: the sender identity
      // is the user's, and the transcribed track is the user's microphone.
      const track = reader.info.attributes?.[TRACK_ID_ATTRIBUTE];
      const mine =
        sender.identity === room.localParticipant.identity ||
        (track !== undefined && room.localParticipant.trackPublications.has(track));
      const speaker = mine ? "user" : "agent";
      this.readTranscription(reader, speaker, current).catch(() => undefined);
    });
  }

  private async readTranscription(
    reader: TextStreamReader,
    speaker: "agent" | "user",
    current: () => boolean,
  ): Promise<void> {
    // livekit-agents writes the agent's words as one stream of deltas per segment,
    // and the user's words as one stream per interim result, each holding the whole
    // segment so far. Either way: the text of this stream replaces the segment's text.
    const attributes = reader.info.attributes ?? {};
    const id = attributes[SEGMENT_ID_ATTRIBUTE] ?? reader.info.id;
    // What arrives here was spoken (and transcribed), except in a text-only call.
    const source = this.mode;
    let text = "";
    for await (const chunk of reader) {
      if (!current()) return;
      text += chunk;
      this.updateTranscript({ id, speaker, text, final: false, source });
    }
    if (!current()) return;
    const final = speaker === "agent" || attributes[FINAL_ATTRIBUTE] === "true";
    this.updateTranscript({ id, speaker, text, final, source });
  }

  private updateTranscript(entry: TranscriptEntry): void {
    if (!entry.text.trim()) return;
    const index = this.transcript.findIndex((e) => e.id === entry.id);
    if (index >= 0) {
      if (this.transcript[index].final && !entry.final) return;
      this.transcript[index] = entry;
    } else {
      this.transcript.push(entry);
      if (this.transcript.length > MAX_TRANSCRIPT_ENTRIES) this.transcript.shift();
    }
    this.events.emit("transcript", { entry, transcript: [...this.transcript] });
  }

  private readRoomMetadata(raw: string | undefined): void {
    if (!raw) return;
    let config: {
      character_name?: unknown;
      form?: { fields?: { name?: unknown; description?: unknown; required?: unknown }[] } | null;
    };
    try {
      config = JSON.parse(raw);
    } catch {
      return;
    }
    if (typeof config.character_name === "string") {
      this.events.emit("character", { name: config.character_name });
    }
    const fields = config.form?.fields;
    if (Array.isArray(fields)) {
      this.fields = fields
        .filter((f) => typeof f?.name === "string")
        .map((f) => ({
          name: f.name as string,
          label: humanize(f.name as string),
          description: typeof f.description === "string" ? f.description : "",
          required: f.required === true,
        }));
      this.events.emit("form", { field: null, value: null, answers: { ...this.answers }, fields: this.fields });
    }
  }

  private applyFormMessage(text: string): void {
    let message: { field?: unknown; value?: unknown };
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof message?.field !== "string") return;
    const field = message.field;
    if (message.value === null || message.value === undefined) delete this.answers[field];
    else this.answers[field] = message.value;
    if (!this.fields.some((f) => f.name === field)) {
      this.fields = [...this.fields, { name: field, label: humanize(field), description: "", required: false }];
    }
    this.events.emit("form", {
      field,
      value: message.value ?? null,
      answers: { ...this.answers },
      fields: this.fields,
    });
  }
}

function sessionEvent(session: StartedSession): SessionEvent {
  return {
    session_id: session.session_id,
    room_name: session.room_name,
    participant_identity: session.participant_identity,
    character_slug: session.character_slug,
    livekit_url: session.livekit_url,
    expires_in_seconds: session.expires_in_seconds,
  };
}
