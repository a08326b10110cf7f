"""Pictures as Forge saves them (modules/images.py, save_image_with_geninfo): a PNG gets its
generation text as a `parameters` text chunk through PIL's PngInfo.add_text (tEXt, or iTXt when the
text is not Latin-1); a JPEG or WebP gets it as EXIF UserComment through
piexif.helper.UserComment.dump(text, encoding="unicode"), inserted with piexif.insert.

Usage: make_pictures.py DIR COUNT. Writes COUNT small PNGs named like Forge's (00000-SEED.png,
each a second newer than the one before), and forge.jpg, forge.webp, unicode.png and
plain.png (no text, transparent). Prints the generation text of picture N as JSON on stdout.
"""

import json
import os
import sys

import piexif
import piexif.helper
from PIL import Image, PngImagePlugin


def text(seed, prompt="a lighthouse at dusk, oil painting"):
    return (
        f"{prompt}\nNegative prompt: blurry, text\n"
        f"Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: {seed}, "
        f'Size: 64x64, Model hash: 0123456789, Model: sdxl_base, Lora hashes: "detail: ab12, style: cd34", Version: f2.0.1'
    )


def png(path, image, geninfo):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", geninfo)
    image.save(path, format="PNG", pnginfo=info)


def exif(path, image, geninfo, fmt):
    exif_bytes = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(geninfo, encoding="unicode")}})
    if fmt == "JPEG":
        image.save(path, format="JPEG", quality=90)
        piexif.insert(exif_bytes, path)
    else:
        image.save(path, format="WEBP", quality=90, exif=exif_bytes)


def main():
    out, count = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    base = 1_790_000_000
    for i in range(count):
        seed = 1000 + i
        colour = ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256)
        p = os.path.join(out, f"{i:05d}-{seed}.png")
        png(p, Image.new("RGB", (64, 64), colour), text(seed))
        os.utime(p, (base + i, base + i))
    big = Image.new("RGB", (900, 600), (40, 90, 160))
    exif(os.path.join(out, "forge.jpg"), big, text(7, "a red fox in snow"), "JPEG")
    exif(os.path.join(out, "forge.webp"), big, text(8, "a green forest"), "WEBP")
    png(os.path.join(out, "unicode.png"), Image.new("RGB", (64, 64), (200, 30, 30)), text(9, "猫, ukiyo-e"))
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(os.path.join(out, "plain.png"))
    for i, name in enumerate(["forge.jpg", "forge.webp", "unicode.png", "plain.png"]):
        t = base - 100 - i
        os.utime(os.path.join(out, name), (t, t))
    json.dump({"first": text(1000), "fox": text(7, "a red fox in snow"), "unicode": text(9, "猫, ukiyo-e")}, sys.stdout)


main()
