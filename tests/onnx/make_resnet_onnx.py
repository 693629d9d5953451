#!/usr/bin/env python3
"""Writes the ONNX import fixtures: a torchvision-layout ResNet-18 (and optionally ResNet-34) exported by
torch.onnx.export, with a fixed input and torch's output for it.

Usage: make_resnet_onnx.py OUT_DIR [--depth 18|34 ...]

For each depth, OUT_DIR gets resnetN.onnx, resnetN.input.bin (float32, little endian, NCHW) and resnetN.output.bin
(float32 logits), plus resnetN.json with the shapes. Batch-norm layers keep their own nodes (the export runs in
PRESERVE mode on a model in eval mode, so torch does not fold them into the convolutions); running statistics are
randomised so the test sees them matter.
"""
import argparse
import json
import os

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    """The module names and shapes of torchvision.models.resnet18/34, so the state dicts agree."""

    def __init__(self, blocks, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for stage, n in enumerate(blocks):
            cout = 64 << stage
            layers = []
            for b in range(n):
                layers.append(Block(cin, cout, 2 if b == 0 and stage > 0 else 1))
                cin = cout
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--depth", type=int, action="append", choices=[18, 34])
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for depth in args.depth or [18]:
        torch.manual_seed(args.seed + depth)
        model = ResNet({18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}[depth])
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                with torch.no_grad():
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 2.0)
        model.eval()
        x = torch.rand(2, 3, 96, 80)
        with torch.no_grad():
            y = model(x)
        base = os.path.join(args.out_dir, f"resnet{depth}")
        torch.onnx.export(model, x, base + ".onnx", opset_version=13, training=torch.onnx.TrainingMode.PRESERVE,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}})
        x.numpy().astype("<f4").tofile(base + ".input.bin")
        y.numpy().astype("<f4").tofile(base + ".output.bin")
        with open(base + ".json", "w") as f:
            json.dump({"input": list(x.shape), "output": list(y.shape), "torch": torch.__version__}, f)
        print(f"wrote {base}.onnx")


if __name__ == "__main__":
    main()
