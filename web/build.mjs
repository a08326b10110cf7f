// Bundles web/src into the folder gpubox embeds: $GPUBOX_WEB_OUT when build.rs runs it,
// else web/dist. Every src/*.ts is one page's script (its imports are bundled in, its app's
// stylesheet included: src/<app>/<app>.css becomes <app>.css); every *.css here (the page shell's
// gpubox.css, the one palette) is copied. No source maps, no external URLs. build.rs serves whatever lands in the folder
// under /.gpubox/assets/.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";

const out = process.env.GPUBOX_WEB_OUT ?? "dist";
mkdirSync(out, { recursive: true });
await build({
  entryPoints: readdirSync("src")
    .filter((f) => f.endsWith(".ts"))
    .map((f) => join("src", f)),
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  outdir: out,
  logLevel: "warning",
});
for (const f of readdirSync(".").filter((f) => f.endsWith(".css"))) {
  copyFileSync(f, join(out, f));
}
