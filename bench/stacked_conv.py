"""Would stacking CNN cohort members pay? K members' conv blocks as one grouped convolution
against K separate networks, forward and backward, on CPU.

Population training stacks MLPs into one [K, ...] network because many small matrix products
lose to one big one. Convolutions are different: each is already a large, compute-bound
kernel, and PyTorch's CPU kernels for grouped convolutions are slower per FLOP than for plain
ones. This script measures both ways of running archtune's default CNN front end (2 blocks of
32 and 64 filters with batch norm, ReLU and max pooling) on a batch of 28 x 28 images; a ratio
above 1 means stacking is slower, which is why cohorts with image inputs train one member at
a time. Reproduce from the root::

    .venv/bin/python bench/stacked_conv.py            # K = 2, 4, 8; 1 thread; ~1 min
    .venv/bin/python bench/stacked_conv.py --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn


def member() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2))


def stacked(k: int) -> nn.Module:
    """K members in one module: the first convolution sees the shared input with K x 32
    filters; later ones are grouped, so member j's channels only see member j's."""
    return nn.Sequential(nn.Conv2d(1, 32 * k, 3, padding=1), nn.BatchNorm2d(32 * k), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32 * k, 64 * k, 3, padding=1, groups=k), nn.BatchNorm2d(64 * k), nn.ReLU(),
                         nn.MaxPool2d(2))


def cpu_seconds(step, repeats: int) -> float:
    step()  # allocation and kernel selection
    times = []
    for _ in range(repeats):
        started = time.process_time()
        step()
        times.append(time.process_time() - started)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 1, 28, 28)
    print(f"batch {args.batch} of 1 x 28 x 28, {args.threads} thread(s), CPU seconds per forward+backward "
          f"(median of {args.repeats})")
    print("| members K | K separate networks | one grouped network | ratio grouped / separate |")
    print("|---:|---:|---:|---:|")
    for k in (2, 4, 8):
        members = [member() for _ in range(k)]
        together = stacked(k)

        def separate() -> None:
            sum(m(x).sum() for m in members).backward()

        def grouped() -> None:
            together(x).sum().backward()

        a, b = cpu_seconds(separate, args.repeats), cpu_seconds(grouped, args.repeats)
        print(f"| {k} | {a:.3f} | {b:.3f} | {b / a:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
