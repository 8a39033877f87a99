// Names the agent worker publishes into the room (docs/widget.md, "Agent contract").
// Apart from call.ts so the loader can offer them as `Oshara.topics` without
// livekit-client.
export const AGENT_STATE_ATTRIBUTE = "lk.agent.state";
export const TRANSCRIPTION_TOPIC = "lk.transcription";
export const FORM_TOPIC = "oshara.form";
/** Where typed turns go: livekit-agents reads text streams on this topic as user input. */
export const CHAT_TOPIC = "lk.chat";
/** The longest typed turn, in characters (the worker cuts longer ones off). */
export const MAX_TYPED_CHARS = 2000;
