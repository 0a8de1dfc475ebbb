"""PyTorch CPU anchor for `npm run bench -- edge`: the project's U-Net (trainer/models/unet.ts) in torch,
one thread, timed per forward of one window. Prints one JSON line: {"ms_per_window": ..., "torch": ...}.

Same architecture: per level conv3d(3, same) -> instance norm -> ReLU twice (widths/2 then widths),
max-pool 2; decoder transposed conv 2x2x2 (stride 2), concat skip, two conv blocks; 1x1x1 head, softmax.
"""
import json
import sys
import time

import torch
from torch import nn

torch.set_num_threads(1)


def block(cin, cout):
    return nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1), nn.InstanceNorm3d(cout), nn.ReLU())


class UNet(nn.Module):
    def __init__(self, base=4, depth=3, cin=1, cout=3):
        super().__init__()
        widths = [base * 2 ** (l + 1) for l in range(depth)]
        self.enc = nn.ModuleList()
        c = cin
        for w in widths:
            self.enc.append(nn.Sequential(block(c, max(1, w // 2)), block(max(1, w // 2), w)))
            c = w
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for l in range(depth - 2, -1, -1):
            self.up.append(nn.ConvTranspose3d(c, c, 2, stride=2))
            self.dec.append(nn.Sequential(block(c + widths[l], widths[l]), block(widths[l], widths[l])))
            c = widths[l]
        self.head = nn.Conv3d(c, cout, 1)
        self.depth = depth

    def forward(self, x):
        skips = []
        for l, enc in enumerate(self.enc):
            x = enc(x)
            if l < self.depth - 1:
                skips.append(x)
                x = nn.functional.max_pool3d(x, 2)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], 1))
        return torch.softmax(self.head(x), 1)


def main():
    base, depth, patch, reps = (int(a) for a in sys.argv[1:5])
    net = UNet(base, depth).eval()
    x = torch.rand(1, 1, patch, patch, patch)
    with torch.no_grad():
        for _ in range(2):
            net(x)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            net(x)
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(json.dumps({"ms_per_window": times[len(times) // 2], "torch": torch.__version__}))


main()
