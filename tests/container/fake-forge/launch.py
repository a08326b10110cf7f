"""A stand-in for Stable Diffusion WebUI Forge's launch.py, so that images/forge/Dockerfile can be
built and run here, where Forge's source and torch's CUDA wheels cannot be fetched. It keeps the
contract the Dockerfile and forge-launch rely on:

- `launch.py --skip-torch-cuda-test --exit`: the prepare step. Runs TORCH_COMMAND with this
  Python, as Forge does (`python -m <TORCH_COMMAND>`), installs requirements_versions.txt, exits.
- `launch.py --port P --data-dir D [...]`: records how it was started in D/launch.json (its
  arguments, LD_PRELOAD, the Python it runs on), then serves the Gradio stand-in of the browser
  tests (Forge's pins) on 127.0.0.1:P, as Forge does without --listen.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=7860)
parser.add_argument("--data-dir", default=here)
parser.add_argument("--exit", action="store_true")
parser.add_argument("--skip-torch-cuda-test", action="store_true")
args, extra = parser.parse_known_args()

if args.exit:
    torch_command = os.environ.get("TORCH_COMMAND", "pip install torch")
    subprocess.run([sys.executable, "-m", *shlex.split(torch_command)], check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "-r", os.path.join(here, "requirements_versions.txt")],
        check=True,
    )
    print("Exiting because of --exit argument", flush=True)
    sys.exit(0)

os.makedirs(args.data_dir, exist_ok=True)
with open(os.path.join(args.data_dir, "launch.json"), "w") as f:
    json.dump(
        {
            "argv": sys.argv[1:],
            "extra": extra,
            "ld_preload": os.environ.get("LD_PRELOAD", ""),
            "python": sys.executable,
            "cwd": os.getcwd(),
        },
        f,
    )
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.execv(sys.executable, [sys.executable, os.path.join(here, "forge_standin.py"), str(args.port), "--delay", "2"])
