#!/usr/bin/env python3
"""Peers for `centermask bench`, timed the same way (median of N runs after warm-up, batch 1):

  resnet18_centermask  the network of `centermask bench --backbone resnet18` in eager PyTorch:
                       torchvision's ResNet-18 trunk, CenterNet's three ConvTranspose(4, 2, 1) + BN
                       + ReLU (512 -> 256 -> 128 -> 64), CenterMask's heads (3x3 conv 64 + ReLU +
                       1x1: heatmap 80, offset 2, size 2, saliency 80, shape 32*32 dense), no decode
  maskrcnn_r50_fpn     torchvision's Mask R-CNN R50-FPN end to end (its transform, RPN, RoI heads,
                       mask paste), input fixed at SIZE

A dev tool (Debian's python3-torch / python3-torchvision); the product never needs Python.
Usage: eager_pytorch.py MODEL [--size 512] [--iters 10] [--threads 2]; prints one JSON line.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torchvision


def resnet18_centermask():
    trunk = nn.Sequential(*list(torchvision.models.resnet18().children())[:-2])
    layers, channels = [], 512
    for out in (256, 128, 64):
        layers += [nn.ConvTranspose2d(channels, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out),
                   nn.ReLU(inplace=True)]
        channels = out

    def head(outputs):
        return nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True),
                             nn.Conv2d(64, outputs, 1))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(trunk, *layers)
            self.heads = nn.ModuleList([head(80), head(2), head(2), head(80), head(32 * 32)])

        def forward(self, x):
            f = self.body(x)
            return [h(f) for h in self.heads]

    return Net()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=["resnet18_centermask", "maskrcnn_r50_fpn"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.model == "resnet18_centermask":
        model = resnet18_centermask().eval()
        run = lambda: model(torch.randn(1, 3, args.size, args.size))
    else:
        model = torchvision.models.detection.maskrcnn_resnet50_fpn(
            weights=None, weights_backbone=None, min_size=args.size, max_size=args.size).eval()
        image = torch.rand(3, args.size, args.size)
        run = lambda: model([image])
    times = []
    with torch.no_grad():
        for i in range(args.warmup + args.iters):
            start = time.perf_counter()
            run()
            if i >= args.warmup:
                times.append((time.perf_counter() - start) * 1000)
    ms = statistics.median(times)
    print(json.dumps({"model": args.model, "size": args.size, "threads": args.threads,
                      "end_to_end_ms": ms, "min_ms": min(times), "max_ms": max(times),
                      "fps": 1000 / ms, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
