#!/usr/bin/env python3
"""A small colour classification set made from real photographs: the eight colour sample photos Debian ships in
python3-skimage (astronaut, chelsea, coffee, hubble_deep_field, ihc, motorcycle_left, retina, rocket), one class
each. Training crops come from the left 60 % of each photo, test crops from the right 40 %, so a test image is a
part of the scene no training image shows. Each crop: a random square of 25-50 % of the region's shorter side,
mirrored half the time, brightness and saturation jittered by up to 15 %, resized to --size and saved as JPEG at
quality 70-95. Writes OUT/train.tsv and OUT/test.tsv (ImagePath, Label) beside the images.

    python3 bench/make_photo_crops.py OUT [--train 100] [--test 50] [--size 96] [--seed 1]
"""
import argparse
import glob
import os
import random
import subprocess
import tempfile

from PIL import Image, ImageEnhance

PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png", "retina.jpg", "rocket.jpg"]


def skimage_data():
    known = "/usr/lib/python3/dist-packages/skimage/data"
    if os.path.exists(os.path.join(known, PHOTOS[0])):
        return known
    work = tempfile.mkdtemp()
    subprocess.run(["apt-get", "download", "python3-skimage"], cwd=work, check=True, capture_output=True)
    deb = glob.glob(os.path.join(work, "python3-skimage_*.deb"))[0]
    subprocess.run(["dpkg-deb", "-x", deb, os.path.join(work, "x")], check=True)
    return os.path.join(work, "x", known.lstrip("/"))


def crops(image, region, count, size, rng):
    left, right = region
    width, height = image.size
    x0, x1 = int(left * width), int(right * width)
    short = min(x1 - x0, height)
    for _ in range(count):
        side = int(short * rng.uniform(0.25, 0.5))
        x = rng.randint(x0, x1 - side)
        y = rng.randint(0, height - side)
        crop = image.crop((x, y, x + side, y + side)).resize((size, size), Image.BILINEAR)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        crop = ImageEnhance.Brightness(crop).enhance(rng.uniform(0.85, 1.15))
        crop = ImageEnhance.Color(crop).enhance(rng.uniform(0.85, 1.15))
        yield crop


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--train", type=int, default=100)
    p.add_argument("--test", type=int, default=50)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    rng = random.Random(a.seed)
    data = skimage_data()
    os.makedirs(a.out, exist_ok=True)
    for split, region, count in [("train", (0.0, 0.6), a.train), ("test", (0.6, 1.0), a.test)]:
        with open(os.path.join(a.out, f"{split}.tsv"), "w") as tsv:
            tsv.write("ImagePath\tLabel\n")
            for photo in PHOTOS:
                label = os.path.splitext(photo)[0]
                image = Image.open(os.path.join(data, photo)).convert("RGB")
                for i, crop in enumerate(crops(image, region, count, a.size, rng)):
                    name = f"{split}-{label}-{i:03d}.jpg"
                    crop.save(os.path.join(a.out, name), quality=rng.randint(70, 95))
                    tsv.write(f"{name}\t{label}\n")


if __name__ == "__main__":
    main()
