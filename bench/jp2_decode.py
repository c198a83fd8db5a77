"""JPEG 2000 decoding: CPU and wall time per 12 MP master through each binding of OpenJPEG (issue 24).

    python bench/jp2_decode.py [--rounds 5] [--megapixels 12]

Makes a 4000x3000 RGB master like the archive's (lossless 5/3 and lossy 9/7, 6 resolution levels, not
tiled; from a noisy photograph-like image, so that the codestream is as large as a scan's), then decodes
the full resolution, alternating the decoders round by round: Pillow (its bundled OpenJPEG: the path ingest
took before), imagecodecs (its own OpenJPEG, 1 and 2 threads) and glymur (the system's libopenjp2, 1 and 2
threads). Prints the medians: CPU seconds (every thread of the process counted) and wall seconds a page, with
the ratio against Pillow measured in the same run, and the load average; then the CPU a whole access copy
takes (decode, pyramid, encode, as an ingest worker writes it) through Pillow as before and through the
decoder ingest takes now. Ingest runs one worker a core, so CPU per page is what sets its throughput;
threads shorten one page's wall time only.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_master(folder: Path, width: int, height: int, lossless: bool) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(24)
    y, x = np.mgrid[0:height, 0:width]
    base = (128 + 60 * np.sin(x / 37.0) * np.cos(y / 53.0)).astype(np.float32)
    pixels = np.stack([base + rng.normal(0, 18, base.shape) for _ in range(3)], axis=-1)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    path = folder / f"master-{'lossless' if lossless else 'lossy'}.jp2"
    options: dict[str, Any] = {"num_resolutions": 6, "irreversible": not lossless}
    if not lossless:
        options |= {"quality_mode": "rates", "quality_layers": [10]}
    image.save(path, **options)
    return path


def pillow(path: Path) -> Any:
    import numpy as np
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def imagecodecs_decoder(threads: int) -> Callable[[Path], Any]:
    import imagecodecs

    return lambda path: imagecodecs.jpeg2k_decode(path.read_bytes(), numthreads=threads)


def glymur_decoder(threads: int) -> Callable[[Path], Any]:
    import glymur

    def decode(path: Path) -> Any:
        glymur.set_option("lib.num_threads", threads)
        return glymur.Jp2k(str(path))[:]

    return decode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--megapixels", type=float, default=12.0)
    args = parser.parse_args()
    width = int((args.megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(width * 3 / 4)
    decoders: dict[str, Callable[[Path], Any]] = {"pillow": pillow}
    for threads in (1, 2):
        try:
            decoders[f"imagecodecs-{threads}t"] = imagecodecs_decoder(threads)
        except ImportError:
            pass
        try:
            decoders[f"glymur-{threads}t"] = glymur_decoder(threads)
        except ImportError:
            pass
    with tempfile.TemporaryDirectory() as tmp:
        for lossless in (True, False):
            path = make_master(Path(tmp), width, height, lossless)
            reference = pillow(path)
            for name, decode in decoders.items():  # every decoder gives Pillow's pixels (a warm-up too)
                same = bool((decode(path) == reference).all())
                if not same:
                    print(f"  {name}: pixels differ from Pillow's")
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in decoders}
            for _ in range(args.rounds):
                for name, decode in decoders.items():
                    c, w = cpu(), time.perf_counter()
                    decode(path)
                    times[name].append((cpu() - c, time.perf_counter() - w))
            kind = "lossless 5/3" if lossless else "lossy 9/7, 10:1"
            print(f"{width}x{height} JPEG 2000, {kind}, {path.stat().st_size / 1e6:.1f} MB, "
                  f"medians of {args.rounds} rounds (load average {os.getloadavg()[0]:.2f}):")
            base = statistics.median(c for c, _ in times["pillow"])
            for name, measured in times.items():
                c = statistics.median(t[0] for t in measured)
                w = statistics.median(t[1] for t in measured)
                print(f"  {name:16} {c:6.2f} s CPU  {w:6.2f} s wall  CPU x{base / c:4.2f} of Pillow's")
            copies(path, args.rounds)


def copies(path: Path, rounds: int) -> None:
    """The whole access copy of the master as an ingest worker writes it (one libvips thread): through Pillow (as
    before) and through the decoder ingest now takes (convert.jp2_whole), alternated."""
    import pyvips

    from iiif_server.ingest import convert

    pyvips.concurrency_set(1)
    pyvips.cache_set_max(0)
    fast = convert.jp2_whole
    times: dict[str, list[float]] = {"before (Pillow)": [], "after (jp2_whole)": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for name in times:
                convert.jp2_whole = fast if name.startswith("after") else (lambda _path: None)
                c = cpu()
                convert.write_access_copy(path, 0, Path(tmp) / "copy.tif")
                times[name].append(cpu() - c)
    convert.jp2_whole = fast
    before = statistics.median(times["before (Pillow)"])
    for name, measured in times.items():
        c = statistics.median(measured)
        print(f"  access copy, {name:18} {c:6.2f} s CPU a page  x{before / c:4.2f}")


if __name__ == "__main__":
    main()
