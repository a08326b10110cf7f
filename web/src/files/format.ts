// Numbers and names for people: sizes (common/format.ts: decimal units, as everywhere), dates,
// speeds, and what kind of file a name is.

import type { IconName } from "./dom";

export { bytes } from "../common/format";

const pad = (n: number) => String(n).padStart(2, "0");
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `14:05` today, `Mar 3, 14:05` this year, `2023-03-03` before. */
export function when(ms: number, now = Date.now()): string {
  const d = new Date(ms);
  const n = new Date(now);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (d.toDateString() === n.toDateString()) return `Today ${hm}`;
  if (d.getFullYear() === n.getFullYear()) return `${MONTHS[d.getMonth()]} ${d.getDate()}, ${hm}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export function fullDate(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(
    d.getMinutes(),
  )}:${pad(d.getSeconds())}`;
}

export function duration(seconds: number): string {
  if (!isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
}

export function count(n: number, one: string, many = one + "s"): string {
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

export function extension(name: string): string {
  const lower = name.toLowerCase();
  for (const double of [".tar.gz", ".tar.zst", ".tar.bz2", ".tar.xz"]) if (lower.endsWith(double)) return double.slice(1);
  const i = lower.lastIndexOf(".");
  return i > 0 ? lower.slice(i + 1) : "";
}

export type Family = "folder" | "image" | "video" | "audio" | "markdown" | "text" | "archive" | "model" | "pdf" | "other";

const FAMILIES: Record<string, Family> = {};
const add = (family: Family, exts: string) => exts.split(" ").forEach((e) => (FAMILIES[e] = family));
add("image", "png jpg jpeg gif webp avif bmp ico");
add("video", "mp4 webm mov mkv m4v ogv");
add("audio", "mp3 wav ogg oga flac m4a aac opus");
add("markdown", "md markdown");
add(
  "text",
  "txt log csv tsv json jsonl ndjson yaml yml toml ini cfg conf env py pyi ipynb js mjs cjs ts tsx jsx css scss html htm xml svg sh bash zsh fish rs go c h cc cpp hpp java kt rb php lua sql r jl dockerfile makefile gitignore gitattributes editorconfig lock properties bat ps1 tex rst",
);
add("archive", "zip tar tar.gz tgz tar.zst tar.bz2 tar.xz gz zst 7z rar");
add("model", "safetensors ckpt pt pth gguf ggml onnx");
/** Extensions that are models only in a models folder: elsewhere a `.bin` is any binary file. */
const MAYBE_MODEL = new Set(["bin", "pb", "tflite", "h5", "pkl", "npz", "npy"]);
/** A folder of models: Forge's and ComfyUI's model folders, or one named for models. */
const MODEL_DIR =
  /(^|\/)(models?|checkpoints?|loras?|lycoris|vae|vae_approx|embeddings|hypernetworks|controlnet|esrgan|realesrgan|upscale_models|stable-diffusion|text_encoders?|clip|clip_vision|unet|diffusion_models|huggingface|hub)(\/|$)/i;
add("pdf", "pdf");

/** Archives that POST /api/jobs {kind: extract} understands. */
export function extractable(name: string): boolean {
  return ["zip", "tar", "tar.gz", "tgz", "tar.zst"].includes(extension(name));
}

const BARE_TEXT = new Set(["dockerfile", "makefile", "license", "readme", "procfile", "requirements.txt", ".env"]);

/** What a file is, by its name; `dir` (its folder, relative to the workspace) decides the
 * extensions that are models only among models. */
export function family(name: string, kind: string, dir = ""): Family {
  if (kind === "dir") return "folder";
  const ext = extension(name);
  if (FAMILIES[ext]) return FAMILIES[ext];
  if (MAYBE_MODEL.has(ext)) return MODEL_DIR.test(dir) ? "model" : "other";
  if (BARE_TEXT.has(name.toLowerCase()) || (name.startsWith(".") && !name.slice(1).includes("."))) return "text";
  return "other";
}

const ICON_OF: Record<Family, IconName> = {
  folder: "folder",
  image: "image",
  video: "video",
  audio: "audio",
  markdown: "code",
  text: "code",
  archive: "archive",
  model: "model",
  pdf: "file",
  other: "file",
};

export function iconOf(name: string, kind: string, dir = ""): IconName {
  if (kind === "link") return "link";
  if (kind === "other") return "other";
  return ICON_OF[family(name, kind, dir)];
}

/** The Type column: `Folder`, `PY file`, `SAFETENSORS model`… */
export function typeLabel(name: string, kind: string, dir = ""): string {
  if (kind === "dir") return "Folder";
  if (kind === "link") return "Broken link";
  if (kind === "other") return "Special file";
  const ext = extension(name);
  const fam = family(name, kind, dir);
  const word: Partial<Record<Family, string>> = {
    image: "image",
    video: "video",
    audio: "audio",
    archive: "archive",
    model: "model",
    markdown: "document",
    pdf: "document",
  };
  if (!ext) return fam === "text" ? "Text" : "File";
  return `${ext.toUpperCase()} ${word[fam] ?? "file"}`;
}
