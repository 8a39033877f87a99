// The few browser globals widget.ts reads as it loads, for Node: a page at
// https://shop.example.com/account/help with no <script data-agent> tag.
// Import it before the widget.
const page = "https://shop.example.com/account/help";
const g = globalThis as Record<string, unknown>;
g.window = globalThis;
g.location = new URL(page);
g.document = {
  currentScript: null,
  readyState: "complete",
  baseURI: page,
  addEventListener: () => undefined,
  dispatchEvent: () => true,
};
