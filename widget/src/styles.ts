// The widget's whole stylesheet. It lives in the shadow root, so the page's CSS
// cannot reach in and none of this leaks out; only the --oshara-* custom
// properties (which inherit through the shadow boundary) theme it.
export const CSS = `
:host {
  all: initial;
  --_accent: var(--oshara-accent, #2563eb);
  --_accent-text: var(--oshara-accent-text, #ffffff);
  --_bg: var(--oshara-background, #ffffff);
  --_text: var(--oshara-text, #111827);
  --_muted: var(--oshara-muted-text, #5b6270);
  --_border: var(--oshara-border, #e3e5ea);
  --_danger: var(--oshara-danger, #c62828);
  --_radius: var(--oshara-radius, 14px);
  --_offset: var(--oshara-offset, 20px);
  --_width: var(--oshara-panel-width, 340px);
  display: block;
}
:host([data-placement="floating"]) {
  position: fixed;
  right: var(--_offset);
  bottom: var(--_offset);
  z-index: var(--oshara-z-index, 2147483000);
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
/* Typography is set here, inside the shadow tree, so page rules on the host element
   (even "* { font-family: ... !important }") cannot be inherited into the widget. */
.root {
  display: flex; flex-direction: column; align-items: flex-end; gap: 10px;
  font-family: var(--oshara-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
  font-size: 14px; line-height: 1.4; color: var(--_text); text-align: left;
  letter-spacing: normal; word-spacing: normal; text-transform: none; font-style: normal; font-weight: 400;
}
:host([data-placement="inline"]) .root { align-items: stretch; }
button {
  font: inherit; cursor: pointer; border: 0; border-radius: 999px;
  display: inline-flex; align-items: center; justify-content: center; gap: 8px;
  min-height: 40px; padding: 0 16px; font-weight: 600;
}
button:focus-visible { outline: 3px solid var(--_accent); outline-offset: 2px; }
button:disabled { cursor: default; opacity: .6; }
svg { width: 18px; height: 18px; flex: none; fill: currentColor; }
.launcher {
  background: var(--_accent); color: var(--_accent-text);
  min-height: 48px; padding: 0 20px;
  box-shadow: var(--oshara-shadow, 0 6px 20px rgba(17, 24, 39, .22));
}
:host([data-placement="inline"]) .launcher { align-self: flex-start; box-shadow: none; }
.panel {
  width: var(--_width); max-width: calc(100vw - 2 * var(--_offset));
  background: var(--_bg); color: var(--_text);
  border: 1px solid var(--_border); border-radius: var(--_radius);
  box-shadow: var(--oshara-shadow, 0 10px 30px rgba(17, 24, 39, .18));
  padding: 14px; display: flex; flex-direction: column; gap: 10px;
}
:host([data-placement="inline"]) .panel { width: auto; max-width: none; box-shadow: none; }
.head { display: flex; align-items: center; gap: 10px; }
.title { font-weight: 700; font-size: 15px; flex: 1; min-width: 0; overflow-wrap: anywhere; }
.close { background: transparent; color: var(--_muted); min-height: 32px; width: 32px; padding: 0; }
.status { display: flex; align-items: center; gap: 8px; color: var(--_muted); }
.dot { width: 10px; height: 10px; border-radius: 50%; background: var(--_border); flex: none; }
.dot[data-state="listening"], .dot[data-state="idle"] { background: #16a34a; }
.dot[data-state="thinking"] { background: #d97706; }
.dot[data-state="speaking"] { background: var(--_accent); animation: pulse 1s ease-in-out infinite; }
.dot[data-state="error"] { background: var(--_danger); }
@keyframes pulse { 50% { transform: scale(1.45); opacity: .6; } }
@media (prefers-reduced-motion: reduce) { .dot { animation: none !important; } }
.error {
  margin: 0; padding: 10px 12px; border-radius: 10px;
  background: color-mix(in srgb, var(--_danger) 10%, var(--_bg));
  color: var(--_danger); border: 1px solid color-mix(in srgb, var(--_danger) 35%, var(--_bg));
}
.notice {
  margin: 0; padding: 10px 12px; border-radius: 10px;
  background: color-mix(in srgb, var(--_text) 6%, var(--_bg)); border: 1px solid color-mix(in srgb, var(--_text) 15%, var(--_bg));
}
.transcript {
  list-style: none; margin: 0; padding: 0; max-height: 220px; overflow-y: auto;
  display: flex; flex-direction: column; gap: 6px;
}
.transcript li { padding: 7px 10px; border-radius: 10px; max-width: 88%; overflow-wrap: anywhere; }
.transcript li[data-speaker="agent"] { align-self: flex-start; background: color-mix(in srgb, var(--_accent) 10%, var(--_bg)); }
.transcript li[data-speaker="user"] { align-self: flex-end; background: color-mix(in srgb, var(--_text) 7%, var(--_bg)); }
.transcript li[data-final="false"] { opacity: .7; }
.who { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.form { margin: 0; display: grid; grid-template-columns: auto 1fr; gap: 4px 12px; }
.form-title { margin: 0; font-weight: 600; font-size: 13px; color: var(--_muted); }
.form dt { color: var(--_muted); }
.form dd { margin: 0; overflow-wrap: anywhere; }
.form dd[data-empty] { color: var(--_muted); }
.compose { display: grid; grid-template-columns: 1fr auto; gap: 6px 8px; align-items: end; }
.message {
  font: inherit; color: var(--_text); background: var(--_bg);
  border: 1px solid var(--_border); border-radius: 10px; padding: 9px 10px;
  min-height: 40px; max-height: 120px; resize: none; overflow-y: auto; width: 100%;
}
.message:focus-visible { outline: 3px solid var(--_accent); outline-offset: 1px; }
.message::placeholder { color: var(--_muted); opacity: 1; }
.send { background: var(--_accent); color: var(--_accent-text); width: 40px; padding: 0; }
.count { grid-column: 1 / -1; font-size: 12px; color: var(--_muted); }
.count:empty { display: none; }
.controls { display: flex; gap: 8px; flex-wrap: wrap; }
.mute { background: color-mix(in srgb, var(--_text) 8%, var(--_bg)); color: var(--_text); }
.mute[aria-pressed="true"] { background: var(--_text); color: var(--_bg); }
.hangup { background: var(--_danger); color: #ffffff; }
.sound { background: var(--_accent); color: var(--_accent-text); }
.retry { background: var(--_accent); color: var(--_accent-text); }
`;
