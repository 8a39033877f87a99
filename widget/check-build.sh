#!/bin/sh
# Rebuild the widget into a temporary directory and compare every file it emits
# (widget.js, widget/call.<hash>.js and the .br and .gz of each) with the committed
# ones in token_server/static/. Fails (exit 1) when any differs, is missing or is left over.
# Run after `npm ci` in this directory.
set -eu
cd "$(dirname "$0")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
node build.mjs "$tmp"
static=../token_server/static
stale=0
for f in widget.js widget.js.br widget.js.gz; do
  cmp -s "$tmp/$f" "$static/$f" || { echo "differs: token_server/static/$f" >&2; stale=1; }
done
diff -r -q "$tmp/widget" "$static/widget" >&2 || stale=1
if [ "$stale" = 0 ]; then
  echo "widget.js and widget/ are up to date"
else
  echo "token_server/static/ differs from a fresh build of widget/src." >&2
  echo "Run 'cd widget && npm ci && npm run build' and commit the result (git add the new chunk, git rm the old)." >&2
  exit 1
fi
