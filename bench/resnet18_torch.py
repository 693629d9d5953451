#!/usr/bin/env python3
"""Times ResNet-18 training steps in PyTorch on random images, for side-by-side runs with
`fasttrain bench --model resnet18-imagenet --size N --batch B`.

--layout torchvision is torchvision's resnet18 (2, 2, 2, 2 blocks); --layout imagenet is torchvision's ResNet
class with 2, 2, 2, 3 blocks, the layout of ML.NET's ImageNet ResNet-18 (its uneven padding aside).
Prints one JSON object with the same keys as fasttrain bench where they apply."""
import argparse
import json
import time

import torch
import torchvision


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--layout", choices=["torchvision", "imagenet"], default="imagenet")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    blocks = [2, 2, 2, 2] if a.layout == "torchvision" else [2, 2, 2, 3]
    net = torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, blocks, num_classes=10)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, a.size, a.size)
    y = torch.randint(0, 10, (a.batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()

    net.train()
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(a.steps):
        step()
    train = time.perf_counter() - start
    net.eval()
    with torch.no_grad():
        start = time.perf_counter()
        for _ in range(4):
            net(x)
        infer = time.perf_counter() - start
    print(json.dumps({
        "engine": f"torch-{torch.__version__}", "model": f"resnet18-{a.layout}", "threads": a.threads, "batch": a.batch,
        "size": a.size, "train_images_per_s": round(a.steps * a.batch / train, 1), "infer_images_per_s": round(4 * a.batch / infer, 1),
    }))


if __name__ == "__main__":
    main()
