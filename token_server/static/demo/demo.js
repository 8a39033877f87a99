// The demo page: one card per active character, each driving a widget through
// the JS API (window.Oshara.create / start / on). No inline script, so the page
// also works under a strict Content-Security-Policy.
"use strict";

const statusEl = document.getElementById("status");
const list = document.getElementById("characters");
const template = document.getElementById("character-card");

function text(el, value) {
  el.textContent = value;
  return el;
}

function parseMetadata(raw) {
  const trimmed = raw.trim();
  if (!trimmed) return {};
  const value = JSON.parse(trimmed);
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error("Metadata must be a JSON object, like {\"user_name\": \"Ada\"}.");
  }
  return value;
}

function logEvent(log, name, payload) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${name} ${JSON.stringify(payload)}`;
  log.appendChild(item);
  while (log.childElementCount > 100) log.firstElementChild.remove();
}

function addCard(character) {
  const card = template.content.firstElementChild.cloneNode(true);
  card.dataset.slug = character.slug;
  text(card.querySelector(".name"), character.name);
  text(card.querySelector(".description"), character.description || "");
  const facts = [character.slug, character.language || "any language", character.voice_model]
    .filter(Boolean)
    .join(" · ");
  text(card.querySelector(".facts"), facts);
  if (Array.isArray(character.form) && character.form.length) {
    card.querySelector(".form-fields").hidden = false;
    const fields = card.querySelector(".fields");
    for (const field of character.form) {
      const li = document.createElement("li");
      li.textContent = `${field.name}${field.required ? " (required)" : ""}`;
      fields.appendChild(li);
    }
  }
  const textarea = card.querySelector(".metadata");
  textarea.id = `metadata-${character.slug}`;
  const error = card.querySelector(".metadata-error");
  const button = card.querySelector(".call");
  text(button, `Call ${character.name}`);
  const log = card.querySelector(".event-log");
  list.appendChild(card);

  const widget = window.Oshara.create({
    agent: character.slug,
    server: location.origin,
    label: character.name,
    mount: card.querySelector(".widget"),
    button: false,
  });
  for (const name of ["state", "session", "transcript", "form", "error", "ended"]) {
    widget.on(name, (payload) => logEvent(log, name, name === "transcript" ? payload.entry : payload));
  }
  widget.on("state", ({ state }) => {
    const busy = ["requesting_microphone", "starting", "connecting", "connected"].includes(state);
    button.disabled = busy;
  });

  button.addEventListener("click", () => {
    let metadata;
    try {
      metadata = parseMetadata(textarea.value);
    } catch (err) {
      error.hidden = false;
      error.textContent = err instanceof SyntaxError ? `Metadata is not valid JSON: ${err.message}` : err.message;
      textarea.focus();
      return;
    }
    error.hidden = true;
    widget.start({ metadata });
  });
}

async function main() {
  if (!window.Oshara) {
    statusEl.classList.add("error");
    text(statusEl, "The widget script (/widget.js) did not load. Build it with: cd widget && npm ci && npm run build");
    return;
  }
  let characters;
  try {
    const response = await fetch("/v1/characters", { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    characters = (await response.json()).characters;
  } catch (err) {
    statusEl.classList.add("error");
    text(statusEl, `Could not list the characters (${err.message}).`);
    return;
  }
  if (!characters.length) {
    text(statusEl, "No active characters. Add a YAML file to the characters directory and restart.");
    return;
  }
  text(statusEl, `${characters.length} active character${characters.length === 1 ? "" : "s"}.`);
  for (const character of characters) addCard(character);
}

main();
