"""The built-in demo, generated and ingested on first start so a bare install shows real images: the `demo`
collection, and a typed transport list with the portraits of some of its people (`demo-lists`,
`demo-portraits`), whose name index and list of people the caller loads (`DemoPeople`)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyvips

if TYPE_CHECKING:
    from iiif_server.db.catalogue import Catalogue

SCAN_SIZE = (6000, 8000)
TILE = 256
PAPER = [236, 228, 208]
SQUARE_COLOURS = [
    [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 190],
]


def scan(width: int = SCAN_SIZE[0], height: int = SCAN_SIZE[1], seed: int = 1) -> pyvips.Image:
    """A typed-page look: paper, lines of 'words', a colour strip, noise; built lazily."""
    margin = width // 10
    cell = max(8, height // 160)
    cols, rows = (width - 2 * margin) // cell, (height - 2 * margin) // (2 * cell)
    # random ink cells, zoomed into word-like runs; only the top part of each line is inked
    words = pyvips.Image.gaussnoise(cols, rows, sigma=1, mean=0, seed=seed) > -0.5
    ink = words.zoom(cell, 2 * cell)
    stripe = (pyvips.Image.xyz(ink.width, ink.height)[1] % (2 * cell)) < (cell * 0.6)
    ink = (ink & stripe).embed(margin, margin, width, height)
    page = ink.ifthenelse([40, 38, 45], PAPER)
    strip_w = width // len(SQUARE_COLOURS)
    blocks = [(pyvips.Image.black(strip_w, margin // 3, bands=3) + c) for c in SQUARE_COLOURS]
    page = page.insert(pyvips.Image.arrayjoin(blocks), 0, height - margin // 2)
    noise = pyvips.Image.gaussnoise(width, height, sigma=5, mean=0, seed=seed)
    return (page + noise).cast("uchar").copy(interpretation="srgb")


def squares(side: int = 1000) -> pyvips.Image:
    """Ten by ten coloured squares: every region shows as a known colour."""
    cell = side // 10
    blocks = [pyvips.Image.black(cell, cell, bands=3) + SQUARE_COLOURS[(row + col) % 10]
              for row in range(10) for col in range(10)]
    return pyvips.Image.arrayjoin(blocks, across=10).cast("uchar").copy(interpretation="srgb")


def write_masters(folder: Path) -> None:
    """Archival-master-like files for the demo collection, one folder per document."""
    letter = folder / "letter"
    letter.mkdir(parents=True, exist_ok=True)
    scan().tiffsave(str(letter / "p1.tif"), tile=True, tile_width=TILE, tile_height=TILE, pyramid=True,
                    compression="jpeg", Q=90)
    scan(3000, 4000, seed=2).jpegsave(str(letter / "p2.jpg"), Q=90)
    (folder / "colour-chart").mkdir(exist_ok=True)
    squares().pngsave(str(folder / "colour-chart" / "chart.png"))
    gradient = pyvips.Image.xyz(3000, 2000)
    photo = ((gradient[0] / 12) + [0, 80, 160]).bandjoin(gradient[1] / 8).extract_band(0, n=3)
    photo.cast("uchar").copy(interpretation="srgb").jpegsave(str(folder / "photograph.jpg"), Q=90)
    squares(800).colourspace("b-w").pngsave(str(folder / "portrait-grey.png"))


DEMO_METADATA = """id,label,date,Type
letter,A typed letter (generated),1943-05-12,Correspondence
colour-chart,Colour chart (generated),2020,Calibration target
photograph,Photograph (generated),1938,Photograph
portrait-grey,Portrait (generated),1941-02,Portrait
"""


# the people of the generated transport list: surname as typed on the list, given names, birth date as the list
# writes it, birth place, whether the list's line and the portrait are linked in the list of people (else
# `persons suggest` proposes them for review), and whether there is a portrait at all
PEOPLE = [
    ("LEVY", "Lévy", "Abraham", "12.03.1921", "Warszawa", True, True),
    ("GOLDSZTAIN", "Goldsztajn", "Chaja", "04.09.1930", "Łódź", False, True),
    ("COHEN", "Cohen", "Sara", "17.01.1925", "Antwerpen", True, False),
    ("LEWIN", "Lewin", "Moszek", "05.1899", "Kraków", True, True),
    ("ROZENBERG", "Rozenberg", "Chana", "1912", "Lublin", True, False),
    ("WAJSMAN", "Wajsman", "Szmul", "02.11.1908", "Radom", False, True),
    ("KLEINBERG", "Kleinberg", "Rywka", "23.06.1928", "Bruxelles", True, False),
    ("VAN PRAAG", "Van Praag", "Mozes", "1889", "Amsterdam", True, True),
]
TRANSPORT = "D-1"  # not a real transport's number: the people are generated
LIST_SIZE = (2480, 3508)  # A4 at 300 dpi
FONT = "DejaVu Sans Mono"


@dataclass(frozen=True)
class DemoPeople:
    """The generated list's name index (`document,page,text,x,y,w,h,kind`) and list of people (a persons CSV)."""

    names_csv: str
    people_csv: str


def typed(text: str, dpi: int = 300) -> pyvips.Image:
    """A line of typewriter text, ink on transparent: its size is the box of the line."""
    return pyvips.Image.text(text, font=FONT, dpi=dpi)


def transport_list(path: Path) -> DemoPeople:
    """A typed transport list (one page), and the boxes of its lines as a name index and a list of people."""
    width, height = LIST_SIZE
    page = pyvips.Image.black(width, height, bands=3) + PAPER
    ink = pyvips.Image.black(width, height)
    x = 240
    title = typed(f"TRANSPORT {TRANSPORT}  -  generated example, not a historical list", 300)
    ink = ink.insert(title, x, 260)
    header = typed("Nr.  Name          Vorname    Geb.-Datum   Geb.-Ort")
    ink = ink.insert(header, x, 520)
    names = ["document,page,text,x,y,w,h,kind"]
    people = ["id,surname,given names,birth date,birth place,transport,number,portrait,list page,line box,"
              "transport date,destination"]
    for n, (typed_name, surname, given, born, place, linked, portrait) in enumerate(PEOPLE, 1):
        text = f"{n:>3}  {typed_name:<13} {given:<10} {born:<12} {place}"
        line = typed(text)
        y = 520 + 140 * n
        ink = ink.insert(line, x, y)
        box = f"{x},{y},{line.width},{line.height}"
        names.append(f'transport-list,p1,"{typed_name} {given} {born}",{box},name')
        portrait_page = f"demo-portraits/portrait-{n}" if portrait and linked else ""
        line_link = ("demo-lists/transport-list/p1", f'"{box}"') if linked else ("", "")
        people.append(f'demo-{n},"{surname}",{given},{born},{place},{TRANSPORT},{n},{portrait_page},'
                      f"{line_link[0]},{line_link[1]},1942-08-04,generated example")
    written = ink.ifthenelse([40, 38, 45], page, blend=True)
    noise = pyvips.Image.gaussnoise(width, height, sigma=4, mean=0, seed=3)
    (written + noise).cast("uchar").copy(interpretation="srgb").tiffsave(
        str(path), tile=True, tile_width=TILE, tile_height=TILE, pyramid=True, compression="jpeg", Q=90)
    return DemoPeople("\n".join(names) + "\n", "\n".join(people) + "\n")


def portrait(path: Path, caption: str, seed: int) -> None:
    """A generated stand-in for a photograph: a head-and-shoulders silhouette on grey, the name beneath it."""
    width, height = 900, 1200
    xy = pyvips.Image.xyz(width, height)
    dx, dy = xy[0] - width / 2, xy[1] - 430
    head = (dx * dx + dy * dy) < 170 ** 2
    sx, sy = xy[0] - width / 2, xy[1] - 1050
    shoulders = ((sx * sx) / (360 ** 2) + (sy * sy) / (330 ** 2)) < 1
    tone = 150 + seed * 9 % 60
    img = (head | shoulders).ifthenelse([70, 70, 75], [tone, tone, tone - 8])
    label = typed(caption, 200)
    img = img.insert(label.ifthenelse([250, 250, 250], [0, 0, 0], blend=True).embed(0, 0, label.width, label.height),
                     max(0, (width - label.width) // 2), height - 100)
    noise = pyvips.Image.gaussnoise(width, height, sigma=6, mean=0, seed=seed)
    (img + noise).cast("uchar").copy(interpretation="srgb").jpegsave(str(path), Q=90)


def write_people_masters(lists: Path, portraits: Path) -> tuple[DemoPeople, str]:
    """The transport list and the portraits; the list of people and the portraits' metadata CSV."""
    (lists / "transport-list").mkdir(parents=True, exist_ok=True)
    found = transport_list(lists / "transport-list" / "p1.tif")
    portraits.mkdir(parents=True, exist_ok=True)
    metadata = ["id,label,Transport"]
    for n, (_, surname, given, born, _, _, has) in enumerate(PEOPLE, 1):
        if has:
            portrait(portraits / f"portrait-{n}.jpg", f"{given} {surname}", n)
            metadata.append(f'portrait-{n},"Portrait of {given} {surname}, born {born} (generated)",{TRANSPORT}')
    return found, "\n".join(metadata) + "\n"


def install(catalogue: Catalogue, image_root: Path, data_dir: Path) -> DemoPeople:
    """Ingest the generated demo collections (only into an empty catalogue); the people of the transport list
    to load afterwards (their names on the list, their list of people)."""
    from iiif_server.ingest.run import Ingest

    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".demo-") as tmp:
        masters = Path(tmp) / "masters"
        write_masters(masters)
        csv = Path(tmp) / "metadata.csv"
        csv.write_text(DEMO_METADATA)
        Ingest(catalogue, image_root, "demo", label="Demo collection").run(masters, csv)
        people, portraits_csv = write_people_masters(Path(tmp) / "lists", Path(tmp) / "portraits")
        lists_csv = Path(tmp) / "lists.csv"
        lists_csv.write_text(f"id,label,Transport\ntransport-list,Transport list {TRANSPORT} (generated),{TRANSPORT}\n")
        Ingest(catalogue, image_root, "demo-lists", label="Transport lists (generated)").run(
            Path(tmp) / "lists", lists_csv)
        (Path(tmp) / "portraits.csv").write_text(portraits_csv, encoding="utf-8")
        Ingest(catalogue, image_root, "demo-portraits", label="Portraits (generated)").run(
            Path(tmp) / "portraits", Path(tmp) / "portraits.csv")
    return people
