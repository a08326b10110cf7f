"""A stand-in for Stable Diffusion WebUI Forge: a Gradio app with Forge's pins that makes the
same kinds of web traffic, for the proxy's end-to-end tests.

    python forge_standin.py PORT [--delay S]

- the queue: /queue/join, then SSE on /queue/data with progress events and generator yields;
- gr.State, so the page sends /heartbeat/{session};
- uploads through /upload (a gr.File) and outputs served from /file=...;
- multi-MB request and response bodies (a base64 round trip, as Forge's canvas sends PNGs);
- Forge's polled routes POST /internal/progress and GET /internal/ping;
- <meta name="referrer" content="no-referrer"> in the page, so same-origin POSTs carry Origin: null.
"""
import hashlib
import os
import sys
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from PIL import Image  # noqa: E402

port = int(sys.argv[1])
if "--delay" in sys.argv:
    time.sleep(float(sys.argv[sys.argv.index("--delay") + 1]))

progress_state = {"active": False, "progress": 0.0}


def generate(steps, state, progress=gr.Progress()):
    """Yields a status line per step with a quiet gap between steps, like a sampler."""
    steps = int(steps)
    progress_state["active"] = True
    for i in progress.tqdm(range(steps), desc="sampling"):
        progress_state["progress"] = (i + 1) / steps
        time.sleep(0.3)
        yield f"step {i + 1}/{steps}", None, (state or 0) + 1
    image = Image.new("RGB", (64, 48), (200, 40, 90))
    progress_state["active"] = False
    yield f"done: {steps} steps", image, (state or 0) + 1


def upload_size(file):
    if file is None:
        return "no file"
    path = file if isinstance(file, str) else file.name
    return f"received {os.path.getsize(path)} bytes"


def echo_digest(text):
    return f"{len(text)} chars, sha256 {hashlib.sha256(text.encode()).hexdigest()[:16]}", text


with gr.Blocks(title="Forge stand-in", head='<meta name="referrer" content="no-referrer">') as demo:
    state = gr.State(0)
    gr.Markdown("# Forge stand-in")
    with gr.Row():
        steps = gr.Slider(1, 20, value=4, step=1, label="Steps", elem_id="steps")
        run = gr.Button("Generate", elem_id="generate")
    status = gr.Textbox(label="Status", elem_id="status")
    image = gr.Image(label="Output", elem_id="output", type="pil")
    count = gr.Number(label="Runs", elem_id="runs")
    run.click(generate, inputs=[steps, state], outputs=[status, image, state]).then(lambda s: s, state, count)

    upload = gr.File(label="Upload", elem_id="upload")
    upload_result = gr.Textbox(label="Upload result", elem_id="upload_result")
    upload.upload(upload_size, upload, upload_result)

    big_in = gr.Textbox(label="Big input", elem_id="big_in", max_lines=2)
    big_run = gr.Button("Echo", elem_id="echo")
    big_digest = gr.Textbox(label="Digest", elem_id="big_digest")
    big_out = gr.Textbox(label="Big output", elem_id="big_out", max_lines=2)
    big_run.click(echo_digest, big_in, [big_digest, big_out])

app = FastAPI()


@app.post("/internal/progress")
def internal_progress():
    return {"active": progress_state["active"], "progress": progress_state["progress"], "eta": None}


@app.get("/internal/ping")
def internal_ping():
    return {}


app = gr.mount_gradio_app(app, demo.queue(), path="")
print(f"forge stand-in listening on 127.0.0.1:{port}", flush=True)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
