// Names the agent worker publishes into the room (docs/widget.md, "Agent contract").
// Apart from call.ts so the loader can offer them as `Oshara.topics` without
// livekit-client.
export const AGENT_STATE_ATTRIBUTE = "lk.agent.state";
export const TRANSCRIPTION_TOPIC = "lk.transcription";
export const FORM_TOPIC = "oshara.form";
