// The widget's heavy half: livekit-client and the call. build.mjs emits it as
// widget/call.<hash>.js, an ES module the loader (widget.ts) imports on first use.
import { LogLevel, setLogLevel } from "livekit-client";
import { Call, type CallEvents } from "./call";
import type { Emitter } from "./emitter";

/** A call that emits on `events`, the emitter the page and the view already listen to. */
export function createCall(audioHost: () => Node, events: Emitter<CallEvents>, options: { debug: boolean }): Call {
  setLogLevel(options.debug ? LogLevel.debug : LogLevel.silent);
  return new Call(audioHost, events);
}
