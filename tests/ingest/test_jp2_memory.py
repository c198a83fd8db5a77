"""A large JPEG 2000 master is decoded in strips through OpenJPEG (glymur) where libvips cannot read JPEG 2000
itself, so a worker's memory stays bounded whatever the master (issue 18): Pillow held about 20 bytes a pixel,
1.5 GB for a 75-megapixel map scan."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyvips

from iiif_server.ingest import convert

PEAK = """
import sys
from pathlib import Path
import iiif_server.ingest.convert as c
c.STRIP_ABOVE, c.STRIP_PIXELS = int(sys.argv[2]), 1 << 18
for name in ("glymur", "imagecodecs", "PIL.Image", "cv2"):  # both paths' decoders, loaded before the base
    try:
        __import__(name)
    except ImportError:
        pass
def peak():
    return next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]
base = peak()
c.write_access_copy(Path(sys.argv[1]), 0, Path(sys.argv[3]), thumbnail_quality=None)
print(base, peak())
"""  # VmHWM: this process's own peak (getrusage's maxrss carries the parent's, pytest's, across fork); `base`:
# after the imports (the decoders' libraries), so that what is compared is what the decoding itself took


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("glymur")
    from PIL import Image as PILImage

    path = tmp_path_factory.mktemp("jp2") / "map.jp2"
    y, x = np.mgrid[0:2400, 0:3200]
    pixels = np.stack([x % 256, y % 256, (x + y) % 256], axis=2).astype(np.uint8)
    PILImage.fromarray(pixels).save(path, quality_mode="rates", quality_layers=[20], irreversible=True)
    if convert.jp2_loads():
        pytest.skip("this libvips reads JPEG 2000 itself, tile by tile: no strips needed")
    return path


def test_strips_hold_the_same_pixels_as_a_whole_decode(master: Path, tmp_path: Path) -> None:
    old = convert.STRIP_ABOVE, convert.STRIP_PIXELS
    convert.STRIP_ABOVE, convert.STRIP_PIXELS = 1 << 20, 1 << 18
    try:
        strips = convert.jp2_strips(master, tmp_path)
    finally:
        convert.STRIP_ABOVE, convert.STRIP_PIXELS = old
    assert strips is not None
    whole = convert._pillow_load(master, 0)
    assert (strips.width, strips.height, strips.bands) == (whole.width, whole.height, whole.bands) == (3200, 2400, 3)
    assert (strips.cast("short") - whole.cast("short")).abs().max() <= 1
    convert._scratch_files.clear()


def test_a_worker_decoding_in_strips_needs_a_fraction_of_the_memory(master: Path, tmp_path: Path) -> None:
    peaks = {}
    for name, above in (("strips", 1 << 20), ("whole", 1 << 40)):
        done = subprocess.run([sys.executable, "-c", PEAK, str(master), str(above), str(tmp_path / f"{name}.tif")],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        base, peak = (int(v) // 1024 for v in done.stdout.split()[-2:])  # MiB
        peaks[name] = peak - base
    assert peaks["strips"] < 0.6 * peaks["whole"], peaks
    a, b = (pyvips.Image.new_from_file(str(tmp_path / f"{n}.tif")) for n in ("strips", "whole"))
    assert (a.cast("short") - b.cast("short")).abs().max() <= 2  # the same copy, give or take rounding
    assert not list(tmp_path.glob(".strips-*"))  # the raw strips are gone once the copy is written
