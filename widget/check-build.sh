#!/bin/sh
# Rebuild the widget into a temporary file and compare it with the committed
# token_server/static/widget.js. Fails (exit 1) when they differ.
# Run after `npm ci` in this directory.
set -eu
cd "$(dirname "$0")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
node build.mjs "$tmp/widget.js"
if cmp -s "$tmp/widget.js" ../token_server/static/widget.js; then
  echo "widget.js is up to date"
else
  echo "token_server/static/widget.js differs from a fresh build of widget/src." >&2
  echo "Run 'cd widget && npm ci && npm run build' and commit the result." >&2
  exit 1
fi
