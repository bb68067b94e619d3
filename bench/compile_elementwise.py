"""Does torch.compile pay for a cohort's elementwise chain on this CPU?

The chain after each hidden Linear of a stacked cohort is ReLU, then dropout with a
per-member rate (archtune.models.stacked_ops: one shared uniform draw, ``floor(keep + u)``
scaled by ``1 / keep``). This times its forward and backward on [K, batch, units]
activations three ways: eager PyTorch as archtune runs it, the same function compiled by
``torch.compile`` (Inductor's C++ backend), and compiled with ``dynamic=True`` (one
compilation for every cohort size, as members leave). It reports microseconds per
forward + backward and the compile time of the first call and of a second shape.

Reproduce (from the repository root)::

    .venv/bin/python bench/compile_elementwise.py              # ~1-2 min
    .venv/bin/python bench/compile_elementwise.py --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch


def chain(h: torch.Tensor, u: torch.Tensor, keep: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch.relu(h) * (torch.floor(keep + u) * scale)


def _time(fn, h, u, keep, scale, grad, repeats: int) -> float:
    for _ in range(3):
        fn(h, u, keep, scale).backward(grad)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeats):
            fn(h, u, keep, scale).backward(grad)
        best = min(best, (time.perf_counter() - started) / repeats)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--members", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.members} members, batch {args.batch}")
    print("| units | eager us | compiled us | compiled/eager | first compile s | dynamic us | dynamic compile s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for units in (64, 128, 256):
        torch._dynamo.reset()
        shape = (args.members, args.batch, units)
        h = torch.randn(*shape, requires_grad=True)
        u = torch.rand(args.batch, units)
        keep = torch.rand(args.members, 1, 1) * 0.3 + 0.7
        scale, grad = 1 / keep, torch.ones(*shape)
        eager = _time(chain, h, u, keep, scale, grad, args.repeats)
        compiled = torch.compile(chain)
        started = time.perf_counter()
        compiled(h, u, keep, scale).backward(grad)
        first = time.perf_counter() - started
        static = _time(compiled, h, u, keep, scale, grad, args.repeats)
        torch._dynamo.reset()
        dynamic_fn = torch.compile(chain, dynamic=True)
        started = time.perf_counter()
        dynamic_fn(h, u, keep, scale).backward(grad)
        dynamic_first = time.perf_counter() - started
        dynamic = _time(dynamic_fn, h, u, keep, scale, grad, args.repeats)
        print(f"| {units} | {eager:.0f} | {static:.0f} | {static / eager:.2f}x | {first:.1f} | {dynamic:.0f} | "
              f"{dynamic_first:.1f} |", flush=True)


if __name__ == "__main__":
    main()
