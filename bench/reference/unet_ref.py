"""PyTorch CPU anchor of `npm run bench -- train`, `-- kernels` and `-- infer`: the same 3D U-Net as
trainer/models/unet.ts (Conv3d 3x3x3 + bias -> InstanceNorm3d(affine) -> ReLU, two per level, MaxPool 2,
ConvTranspose3d k2 s2 + bias, concat(up, skip), 1x1x1 head, softmax over channels) in PyTorch's
default NCDHW layout, timed the way a PyTorch user runs it.

  train:   one step of MONAI-style DiceCE (foreground Dice + voxel cross-entropy on the softmax)
           and AdamW (torch.optim.AdamW, weight decay 0.01), batch 1.
  forward: model(x) under torch.inference_mode(), batch 1.

Usage: python3 unet_ref.py train|forward SIDE BASE DEPTH THREADS REPS [WARMUP]
Prints one JSON object: median and all wall times in ms, median CPU time in ms, peak RSS in MB (this process), torch version.
"""
import json
import resource
import sys
import time

import torch
import torch.nn as nn


class Block(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.Conv3d(cin, cout, 3, padding=1, bias=True), nn.InstanceNorm3d(cout, affine=True, eps=1e-5),
                         nn.ReLU(inplace=True))


class UNet(nn.Module):
    def __init__(self, base, depth, cin=1, classes=3):
        super().__init__()
        widths = [base * 2 ** (level + 1) for level in range(depth)]
        self.enc = nn.ModuleList()
        c = cin
        for w in widths:
            self.enc.append(nn.Sequential(Block(c, max(1, w // 2)), Block(max(1, w // 2), w)))
            c = w
        self.pool = nn.MaxPool3d(2)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for level in range(depth - 2, -1, -1):
            self.up.append(nn.ConvTranspose3d(c, c, 2, stride=2, bias=True))
            self.dec.append(nn.Sequential(Block(c + widths[level], widths[level]), Block(widths[level], widths[level])))
            c = widths[level]
        self.head = nn.Conv3d(c, classes, 1, bias=True)

    def forward(self, x):
        skips = []
        for i, enc in enumerate(self.enc):
            x = enc(x)
            if i < len(self.enc) - 1:
                skips.append(x)
                x = self.pool(x)
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([up(x), skips.pop()], 1))
        return torch.softmax(self.head(x), 1)


def dice_ce(probs, onehot):
    dims = (2, 3, 4)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (1 - (2 * inter + 1e-5) / (denom + 1e-5))[:, 1:].mean()
    ce = -(onehot * torch.log(probs + 1e-7)).sum(1).mean()
    return dice + ce


def main():
    mode, side, base, depth, threads, reps = sys.argv[1], *map(int, sys.argv[2:7])
    warmup = int(sys.argv[7]) if len(sys.argv) > 7 else 1
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = UNet(base, depth)
    x = torch.rand(1, 1, side, side, side)
    times = []
    cpu = []
    if mode == "train":
        labels = (x[:, 0] > 0.4).long() + (x[:, 0] > 0.7).long()
        onehot = torch.nn.functional.one_hot(labels, 3).permute(0, 4, 1, 2, 3).float()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=0.01)

        def run():
            opt.zero_grad(set_to_none=True)
            loss = dice_ce(net(x), onehot)
            loss.backward()
            opt.step()
            loss.item()
    else:
        net.eval()

        def run():
            with torch.inference_mode():
                net(x).sum().item()

    for _ in range(warmup):
        run()
    for _ in range(reps):
        t0 = time.perf_counter()
        c0 = time.process_time()
        run()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    times.sort()
    cpu.sort()
    print(json.dumps({
        "medianMs": times[len(times) // 2],
        "times": times,
        "cpuMs": cpu[len(cpu) // 2],
        "maxRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
