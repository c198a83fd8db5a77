"""Access-copy JPEG quality: bytes per megapixel against SSIM on synthetic scanned pages.

Usage: python bench/access_quality.py [WIDTH HEIGHT]   (default 4000 3000, a 12 MP scan)

Three pages are synthesised (paper grain and shading, text-like strokes in dark and red ink, a
colour "photo" region, a red stamp): a plain text page, a mixed page and an illustrated page.
Each is encoded as one JPEG at quality 75-95 with 4:2:0 and with 4:4:4 chroma (jpegsave, whose
sampling can be chosen at any quality; a tiled TIFF's tiles hold the same JPEG data plus a few
hundred bytes per tile), decoded, and compared with the original: SSIM averaged over R, G and B
(so that colour loss counts) for the whole page and for its colour region. The last table is the
real thing: the pyramidal TIFF that ingest writes, at the qualities around the default.

Results, with the command that produced them: docs/benchmarks.md, "Access-copy quality".
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import numpy as np
import pyvips

from iiif_server.tiles.pipeline import no_metadata

WORDS = ("archive register folio parish baptism witness notary deed estate harbour merchant letter "
         "council minutes seal charter tithe ledger inventory survey map vellum quire").split()


def paper(width: int, height: int, seed: int) -> pyvips.Image:
    rng = np.random.default_rng(seed)
    grain = pyvips.Image.gaussnoise(width, height, sigma=5, mean=0).gaussblur(0.6)
    shade = pyvips.Image.perlin(width, height, cell_size=max(width // 4, 64), seed=int(rng.integers(1 << 30)))
    base = (pyvips.Image.black(width, height, bands=3) + [238, 229, 210])
    return base + grain.bandjoin([grain, grain]) * [1.0, 1.0, 1.2] + shade * 10


def text_block(width: int, lines: int, dpi: int, seed: int) -> pyvips.Image:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(lines):
        words = []
        while sum(len(w) + 1 for w in words) < width // (dpi // 9):
            words.append(str(rng.choice(WORDS)))
        rows.append(" ".join(words))
    mask = pyvips.Image.text("\n".join(rows), dpi=dpi, width=width, spacing=dpi // 5, font="serif")
    return mask.gaussblur(0.7)  # the scanner's blur


def ink(page: pyvips.Image, mask: pyvips.Image, left: int, top: int, colour: list[int]) -> pyvips.Image:
    mask = mask.crop(0, 0, min(mask.width, page.width - left), min(mask.height, page.height - top))
    alpha = mask.embed(left, top, page.width, page.height) / 255.0
    return page * (1 - alpha) + alpha * colour


def photo(width: int, height: int, seed: int) -> pyvips.Image:
    bands = [pyvips.Image.perlin(width, height, cell_size=c, seed=seed + n) for n, c in enumerate((40, 90, 200))]
    detail = pyvips.Image.worley(width, height, cell_size=25, seed=seed) / 8
    rgb = bands[0].bandjoin(bands[1:]) * [90, 80, 110] + [120, 110, 90] + detail.bandjoin([detail, detail])
    return rgb.gaussblur(0.8)


def page(kind: str, width: int, height: int, seed: int) -> tuple[pyvips.Image, tuple[int, int, int, int]]:
    """A synthetic scan and its colour region (left, top, width, height)."""
    img = paper(width, height, seed)
    dpi = max(width * 300 // 4000, 60)
    margin = width // 12
    body = text_block(width - 2 * margin, 60, dpi, seed)
    img = ink(img, body, margin, margin, [40, 32, 28])
    region = (width // 2, height // 2, width // 3, height // 3)
    if kind in ("mixed", "illustrated"):
        left, top, w, h = region
        if kind == "illustrated":
            left, top, w, h = region = (margin, height // 3, width - 2 * margin, height // 2)
        img = img.insert(photo(w, h, seed), left, top)
    note = text_block(width // 3, 6, dpi, seed + 1)
    img = ink(img, note, width - width // 3 - margin // 2, height - height // 5, [170, 30, 30])  # red annotation
    stamp = pyvips.Image.text("ARCHIVES", dpi=dpi * 2).gaussblur(0.8)
    img = ink(img, stamp, margin, height - height // 6, [150, 20, 40])
    if kind == "text":
        region = (width - width // 3 - margin // 2, height - height // 5, width // 3, height // 5)
    return img.cast("uchar").copy(interpretation="srgb"), region


def _box(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over (2r+1)^2 windows, valid part only (integral image)."""
    s = np.pad(a, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    k = 2 * r + 1
    return (s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k]) / (k * k)


def ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM (7x7 uniform window, K1=0.01, K2=0.03, L=255) averaged over the bands."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    scores = []
    for b in range(x.shape[2]):
        a, c = x[..., b].astype(np.float64), y[..., b].astype(np.float64)
        ma, mc = _box(a, 3), _box(c, 3)
        n = 49 / 48  # sample covariance, as scikit-image
        va, vc = (_box(a * a, 3) - ma * ma) * n, (_box(c * c, 3) - mc * mc) * n
        cov = (_box(a * c, 3) - ma * mc) * n
        s = ((2 * ma * mc + c1) * (2 * cov + c2)) / ((ma * ma + mc * mc + c1) * (va + vc + c2))
        scores.append(float(s.mean()))
    return sum(scores) / len(scores)


def pixels(img: pyvips.Image) -> np.ndarray:
    return np.ndarray(buffer=img.write_to_memory(), dtype=np.uint8, shape=(img.height, img.width, img.bands))


def sweep(img: pyvips.Image, region: tuple[int, int, int, int]) -> Iterator[tuple[int, str, int, float, float]]:
    ref = pixels(img)
    left, top, w, h = region
    for q in (75, 80, 85, 88, 89, 90, 92, 95):
        for mode, sub in (("4:2:0", "on"), ("4:4:4", "off")):
            data = img.jpegsave_buffer(Q=q, subsample_mode=sub, optimize_coding=False, **no_metadata("jpegsave"))
            out = pixels(pyvips.Image.new_from_buffer(data, ""))
            whole = ssim(ref, out)
            part = ssim(ref[top:top + h, left:left + w], out[top:top + h, left:left + w])
            yield q, mode, len(data), whole, part


def main() -> None:
    width, height = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (4000, 3000)
    mp = width * height / 1e6
    print(f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}, pages {width}x{height} ({mp:.1f} MP)")
    pages = {kind: page(kind, width, height, seed) for seed, kind in enumerate(("text", "mixed", "illustrated"))}
    for kind, (img, region) in pages.items():
        img = img.copy_memory()
        pages[kind] = (img, region)
        print(f"\n{kind} page: one JPEG of the full page")
        print(f"{'Q':>3} {'chroma':>6} {'bytes/MP':>10} {'SSIM page':>10} {'SSIM colour':>12}")
        for q, mode, size, whole, part in sweep(img, region):
            print(f"{q:>3} {mode:>6} {size / mp:>10,.0f} {whole:>10.4f} {part:>12.4f}")
    print("\npyramidal JPEG TIFF as ingest writes it: libvips codes YCbCr 4:2:0 below Q 90 and RGB (no")
    print("subsampling) from Q 90; SSIM of its full-resolution level")
    print(f"{'page':>12} {'Q':>3} {'coding':>7} {'bytes':>12} {'bytes/MP':>10} {'SSIM page':>10} {'s':>6}")
    for kind, (img, _) in pages.items():
        ref = pixels(img)
        for q in (85, 88, 89, 90):
            start = time.perf_counter()
            data = img.tiffsave_buffer(tile=True, tile_width=256, tile_height=256, pyramid=True, compression="jpeg",
                                       Q=q, **no_metadata("tiffsave"))
            took = time.perf_counter() - start
            coding = "RGB" if q >= 90 else "YCbCr"
            score = ssim(ref, pixels(pyvips.Image.new_from_buffer(data, "")))
            print(f"{kind:>12} {q:>3} {coding:>7} {len(data):>12,} {len(data) / mp:>10,.0f} {score:>10.4f} "
                  f"{took:>6.2f}")


if __name__ == "__main__":
    main()
