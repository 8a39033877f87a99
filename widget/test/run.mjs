// Bundles test/*.test.ts for Node into a temporary directory and runs them with
// node:test. `npm test` calls this.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = mkdtempSync(join(tmpdir(), "oshara-widget-tests-"));
try {
  const entryPoints = readdirSync(here)
    .filter((name) => name.endsWith(".test.ts"))
    .map((name) => join(here, name));
  await esbuild.build({
    entryPoints,
    outdir: out,
    bundle: true,
    platform: "node",
    format: "esm",
    outExtension: { ".js": ".mjs" },
    define: { __OSHARA_VERSION__: '"test"', __OSHARA_CALL_CHUNK__: '"widget/call.test.js"' },
    logLevel: "warning",
  });
  const files = readdirSync(out).map((name) => join(out, name));
  const result = spawnSync(process.execPath, ["--test", ...files], { stdio: "inherit" });
  process.exitCode = result.status ?? 1;
} finally {
  rmSync(out, { recursive: true, force: true });
}
