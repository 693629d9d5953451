#!/usr/bin/python3
"""Builds a synthetic folder of phone-sized photos from the machine's real photographs.

    /usr/bin/python3 bench/make_photo_folder.py SOURCE_DIR OUT_DIR COUNT [--min 2000] [--max 4000] [--seed 1]

SOURCE_DIR holds real photographs (bench/photo_folder.sh fetches the sample photos of Debian's python3-skimage).
Each output image is one source photo, cropped (40-100 % of each side), rotated (quarter turns and a small tilt),
colour-shifted, enlarged to a long side between --min and --max pixels, given sensor-like grain so that it carries
the high frequencies of a real photo, and encoded at one of several qualities and formats: JPEG 4:2:0 and 4:4:4,
baseline and progressive, with and without an EXIF orientation, and some PNG. The class of an image is its source
photo, so OUT_DIR has one sub-folder per source (Model Builder's layout). Deterministic for a given seed.
"""
import argparse
import io
import os
import struct
import sys

import numpy as np
from PIL import Image

def exif_orientation(value):
    """An APP1 Exif payload (big-endian TIFF) holding one IFD entry: Orientation = value."""
    tiff = b"MM" + struct.pack(">HI", 42, 8) + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, value, 0) + struct.pack(">I", 0)
    return b"Exif\0\0" + tiff

def main():
    p = argparse.ArgumentParser()
    p.add_argument("source")
    p.add_argument("out")
    p.add_argument("count", type=int)
    p.add_argument("--min", type=int, default=2000)
    p.add_argument("--max", type=int, default=4000)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    sources = sorted(f for f in os.listdir(a.source) if f.lower().endswith((".png", ".jpg", ".jpeg")))
    if not sources:
        sys.exit(f"error: no photographs in {a.source}")
    photos = [Image.open(os.path.join(a.source, f)).convert("RGB") for f in sources]
    rng = np.random.default_rng(a.seed)
    for f in sources:
        os.makedirs(os.path.join(a.out, os.path.splitext(f)[0]), exist_ok=True)
    total = 0
    for i in range(a.count):
        k = i % len(photos)
        img = photos[k]
        w, h = img.size
        cw, ch = int(w * rng.uniform(0.4, 1.0)), int(h * rng.uniform(0.4, 1.0))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        img = img.crop((x0, y0, x0 + cw, y0 + ch))
        img = img.rotate(float(rng.uniform(-8, 8)), resample=Image.BICUBIC, expand=False)
        img = img.transpose([Image.ROTATE_90, Image.ROTATE_180, Image.ROTATE_270][int(rng.integers(0, 3))]) if rng.random() < 0.3 else img
        side = int(rng.integers(a.min, a.max + 1))
        scale = side / max(img.size)
        img = img.resize((max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale))), Image.BICUBIC)
        px = np.asarray(img, dtype=np.float32)
        px = px * rng.uniform(0.85, 1.15, size=3) + rng.uniform(-12, 12, size=3)
        px += rng.normal(0, rng.uniform(2, 6), size=px.shape).astype(np.float32)
        img = Image.fromarray(np.clip(px, 0, 255).astype(np.uint8))
        kind = rng.random()
        buf = io.BytesIO()
        if kind < 0.1:
            img.save(buf, "PNG", compress_level=1)
            ext = ".png"
        else:
            quality = int(rng.choice([70, 80, 85, 90, 95]))
            options = dict(quality=quality, subsampling=0 if kind < 0.3 else 2, progressive=bool(kind > 0.8))
            if rng.random() < 0.2:
                options["exif"] = exif_orientation(int(rng.choice([3, 6, 8])))
            img.save(buf, "JPEG", **options)
            ext = ".jpg"
        name = os.path.join(a.out, os.path.splitext(sources[k])[0], f"{i:06d}{ext}")
        with open(name, "wb") as f:
            f.write(buf.getbuffer())
        total += buf.tell()
        if (i + 1) % 100 == 0 or i + 1 == a.count:
            print(f"\r{i + 1}/{a.count} images, {total / 1e6:.0f} MB", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

if __name__ == "__main__":
    main()
