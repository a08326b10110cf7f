// Bundles web/src into the folder gpubox embeds: $GPUBOX_WEB_OUT when build.rs runs it,
// else web/dist. One entry per page script; no source maps, no external URLs.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const out = process.env.GPUBOX_WEB_OUT ?? "dist";
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ["src/waiting.ts"],
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  outdir: out,
  logLevel: "warning",
});
copyFileSync("gpubox.css", join(out, "gpubox.css"));
