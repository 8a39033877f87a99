// Builds the widget in two parts into token_server/static/ (or the directory given as
// the first argument):
//   widget.js               the loader pages embed (src/widget.ts; no livekit-client),
//                           a classic script, so document.currentScript and data-* work
//   widget/call.<hash>.js   livekit-client and the call (src/call-entry.ts), an ES module
//                           the loader imports on first use; named by its content hash,
//                           so the token server can let browsers keep it for a year
// and, next to each, the .br and .gz the token server sends to browsers that accept
// them. The output depends only on the sources, the locked package versions and Node's
// zlib, so CI can rebuild it and compare with the committed files (see check-build.sh).
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(process.argv[2] ?? resolve(here, "../token_server/static"));
const pkg = JSON.parse(readFileSync(resolve(here, "package.json"), "utf8"));
const livekit = JSON.parse(readFileSync(resolve(here, "node_modules/livekit-client/package.json"), "utf8"));

const common = {
  absWorkingDir: here,
  bundle: true,
  minify: true,
  platform: "browser",
  target: ["es2020", "chrome90", "firefox90", "safari15"],
  charset: "utf8",
  legalComments: "none",
  sourcemap: false,
  logLevel: "warning",
  write: false,
  define: {
    __OSHARA_VERSION__: JSON.stringify(pkg.version),
    "process.env.NODE_ENV": '"production"',
  },
};
const notice = `built from widget/ by "npm ci && npm run build": do not edit`;

const call = await esbuild.build({
  ...common,
  entryPoints: { call: "src/call-entry.ts" },
  outdir: resolve(outdir, "widget"),
  entryNames: "[name].[hash]",
  format: "esm",
  banner: {
    js:
      `/*! Oshara voice widget ${pkg.version}, call | Apache-2.0 | ` +
      `bundles livekit-client ${livekit.version} (Apache-2.0, (c) LiveKit, Inc.) | ${notice} */`,
  },
});
const [chunk] = call.outputFiles;

const loader = await esbuild.build({
  ...common,
  entryPoints: ["src/widget.ts"],
  outfile: resolve(outdir, "widget.js"),
  format: "iife",
  define: {
    ...common.define,
    // Resolved against widget.js's own URL at run time.
    __OSHARA_CALL_CHUNK__: JSON.stringify(relative(outdir, chunk.path).split("\\").join("/")),
  },
  banner: { js: `/*! Oshara voice widget ${pkg.version} | Apache-2.0 | ${notice} */` },
});

// widget/ holds only this build's output: last build's chunk goes with it.
rmSync(resolve(outdir, "widget"), { recursive: true, force: true });
for (const file of [...loader.outputFiles, chunk]) {
  mkdirSync(dirname(file.path), { recursive: true });
  writeFileSync(file.path, file.contents);
  const brotli = brotliCompressSync(file.contents, {
    params: {
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_SIZE_HINT]: file.contents.length,
    },
  });
  writeFileSync(`${file.path}.br`, brotli);
  writeFileSync(`${file.path}.gz`, gzipSync(file.contents, { level: constants.Z_BEST_COMPRESSION }));
}
