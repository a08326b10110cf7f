"""Writes a Stable Diffusion 1.5 checkpoint with random weights that Forge recognises and loads,
for generating on the CPU in tests (scripts/tiny-checkpoint runs this with Forge's own Python).

Forge detects a checkpoint's model from its key names and tensor shapes (huggingface_guess reads
`model.diffusion_model.*`) and then builds the UNet from what it read, so the UNet here is the
smallest one it accepts as SD 1.5: 320 channels, one level, one res block with one transformer
block (the context size, 768, is read from an input block's cross-attention), a middle block of
one res block and no output transformers. The text encoder and the VAE cannot shrink: Forge
builds them from the fixed configs in its own folder and refuses other shapes. Every class and
config comes from Forge itself, so the key names are the ones its loader expects; nothing is
downloaded.

    python tiny_checkpoint.py --forge /opt/forge OUT.safetensors
"""
import argparse
import os
import sys

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("out", help="where to write the .safetensors file")
parser.add_argument("--forge", default="/opt/forge", help="Forge's folder (default /opt/forge)")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

forge = os.path.abspath(args.forge)
if not os.path.isfile(os.path.join(forge, "backend", "nn", "unet.py")):
    sys.exit(f"tiny_checkpoint: {forge} is not Forge's folder (no backend/nn/unet.py); pass --forge")
out = os.path.abspath(args.out)
sys.path[:0] = [forge, os.path.join(forge, "repositories", "huggingface_guess"), os.path.join(forge, "packages_3rdparty")]
# Forge's backend parses sys.argv when it is imported: on the CPU, without looking for a GPU.
sys.argv = [sys.argv[0], "--always-cpu"]

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel  # noqa: E402

import huggingface_guess  # noqa: E402
from backend.nn.unet import IntegratedUNet2DConditionModel  # noqa: E402
from backend.nn.vae import IntegratedAutoencoderKL  # noqa: E402

torch.manual_seed(args.seed)
configs = os.path.join(forge, "backend", "huggingface", "runwayml", "stable-diffusion-v1-5")

unet = IntegratedUNet2DConditionModel(
    in_channels=4,
    out_channels=4,
    model_channels=320,
    num_res_blocks=[1],
    channel_mult=[1],
    transformer_depth=[1],
    transformer_depth_output=[0, 0],
    transformer_depth_middle=-1,
    context_dim=768,
    use_spatial_transformer=True,
    num_heads=8,
    use_linear_in_transformer=False,
)
text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(os.path.join(configs, "text_encoder")))
vae = IntegratedAutoencoderKL.from_config(IntegratedAutoencoderKL.load_config(os.path.join(configs, "vae")))

state = {}
for prefix, model in (
    ("model.diffusion_model.", unet),
    ("cond_stage_model.transformer.", text_encoder),
    ("first_stage_model.", vae),
):
    for key, tensor in model.state_dict().items():
        state[prefix + key] = tensor.detach().to(torch.float16).contiguous()

# The check Forge makes: the file must be detected as SD 1.5, or it would not load.
guess = huggingface_guess.guess(state)
kind = type(guess).__name__
if kind != "SD15":
    sys.exit(f"tiny_checkpoint: Forge's detection takes this for {kind}, not SD15")

part = out + ".part"
save_file(state, part, metadata={"format": "pt"})
os.replace(part, out)
params = {name: sum(t.numel() for k, t in state.items() if k.startswith(prefix)) for name, prefix in (
    ("unet", "model.diffusion_model."), ("text encoder", "cond_stage_model."), ("vae", "first_stage_model."))}
print(
    f"{out}: SD 1.5 layout (detected as {kind}), fp16, "
    + ", ".join(f"{n} {p / 1e6:.1f} M" for n, p in params.items())
    + f" parameters, {os.path.getsize(out) / 2**20:.0f} MiB"
)
