// Bundles src/widget.ts and livekit-client into one minified IIFE:
// token_server/static/widget.js (or the path given as the first argument).
// The output depends only on the sources and the locked package versions, so CI
// can rebuild it and compare with the committed file (see check-build.sh).
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const outfile = resolve(process.argv[2] ?? resolve(here, "../token_server/static/widget.js"));
const pkg = JSON.parse(readFileSync(resolve(here, "package.json"), "utf8"));
const livekit = JSON.parse(readFileSync(resolve(here, "node_modules/livekit-client/package.json"), "utf8"));

await esbuild.build({
  absWorkingDir: here,
  entryPoints: ["src/widget.ts"],
  outfile,
  bundle: true,
  minify: true,
  format: "iife",
  platform: "browser",
  target: ["es2020", "chrome90", "firefox90", "safari15"],
  charset: "utf8",
  legalComments: "none",
  sourcemap: false,
  logLevel: "warning",
  define: {
    __OSHARA_VERSION__: JSON.stringify(pkg.version),
    "process.env.NODE_ENV": '"production"',
  },
  banner: {
    js:
      `/*! Oshara voice widget ${pkg.version} | Apache-2.0 | ` +
      `bundles livekit-client ${livekit.version} (Apache-2.0, (c) LiveKit, Inc.) | ` +
      `built from widget/ by "npm ci && npm run build": do not edit */`,
  },
});
