"""The numpy baseline of bench_aggregate: a weighted average written the
way Flower's server-side aggregate() works (every site's layers scaled
into new arrays, then summed layer by layer with reduce(np.add) and
divided), so all K updates and their scaled copies are in memory at
once.  Written for this benchmark from that description.

usage: bench_aggregate_numpy.py K REPS [SCALE]
Prints one line: "numpy K=<K> params=<P> median_s=<t> min_s=<t>
inputs_bytes=<b> base_rss=<b> peak_rss=<b> runs_s=<t>,<t>,...".  The first
run page-faults its fresh arrays in; later ones reuse freed memory, as a
long-running server would.  Peak RSS is VmHWM during
the timed calls, reset after the inputs were built (/proc/self/clear_refs).

Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
"""
import statistics
import sys
import time
from functools import reduce

import numpy as np


def resnet50_shapes(scale=1):
    """Parameter shapes of torchvision's ResNet-50 (weights and batch-norm
    affine parameters; no running statistics): 25,557,032 values.  SCALE > 1
    divides the channel counts for a quick run."""
    def c(n):
        return max(1, n // scale)
    shapes = [(c(64), 3, 7, 7), (c(64),), (c(64),)]
    inplanes = c(64)
    for planes, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        planes = c(planes)
        for b in range(blocks):
            shapes += [(planes, inplanes, 1, 1), (planes,), (planes,),
                       (planes, planes, 3, 3), (planes,), (planes,),
                       (planes * 4, planes, 1, 1), (planes * 4,), (planes * 4,)]
            if b == 0:
                shapes += [(planes * 4, inplanes, 1, 1), (planes * 4,), (planes * 4,)]
            inplanes = planes * 4
    shapes += [(1000, inplanes), (1000,)]
    return shapes


def flower_style_aggregate(results):
    """results: [(list of ndarrays, num_examples)] -> list of ndarrays."""
    total = sum(n for _, n in results)
    scaled = [[layer * n for layer in weights] for weights, n in results]
    return [reduce(np.add, layers) / total for layers in zip(*scaled)]


def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    k, reps = int(sys.argv[1]), int(sys.argv[2])
    scale = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    shapes = resnet50_shapes(scale)
    rng = np.random.default_rng(1)
    results = []
    for i in range(k):
        layers = [rng.uniform(-0.05, 0.05, size=s).astype(np.float32) for s in shapes]
        results.append((layers, int(rng.integers(50, 500))))
    params = sum(int(np.prod(s)) for s in shapes)
    base = status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        out = flower_style_aggregate(results)
        times.append(time.perf_counter() - t)
        del out
    peak = status("VmHWM")
    print(f"numpy K={k} params={params} median_s={statistics.median(times):.6f} "
          f"min_s={min(times):.6f} inputs_bytes={params * 4 * k} base_rss={base} "
          f"peak_rss={peak} runs_s={','.join(f'{t:.3f}' for t in times)}", flush=True)


if __name__ == "__main__":
    main()
