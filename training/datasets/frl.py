"""The Face Research Lab London sets (FRL, DeBruine & Jones 2017, CC BY 4.0): frontal studio photos with
webmorph/psychomorph `.tem` templates of 189 points, read as the `frl` layout.

A `.tem` file looks like

    189
    282.500	316.000
    ...                  (189 lines `x<TAB>y`, pixels)
    44                   (the template's line definitions follow: count, then per line
    0                     a type, a point count and the point indices; only drawing uses them)
    2
    0 0
    ...

The coordinates are read as they are: origin at the image's top-left corner, the convention of
conventions.md (webmorph takes positions from the top-left of the canvas). The photos' iris edges agree with
this reading better than with pixel centres at integers (the check is in assets/layouts/README.md, `frl`).

The `frl` layout (assets/layouts/frl.json) holds the template points that lie on the canonical face surface;
each point's name starts with its template index ("18: outside corner of left eye"), and the reader returns
exactly those points, in the layout's order. In FRL names left and right are the image's (the subject's right
and left). `tools.build_layouts frl` places the points from these photos.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from core.layouts import LAYOUTS_DIR

from .common import AnnotatedImage, AnnotationError, LandmarkDataset, annotations_with_images

log = logging.getLogger(__name__)

FRL = "frl"
FRL_TEMPLATE_POINTS = 189
# .tem positions are top-left-corner pixel coordinates already (see the module docstring).
TEM_OFFSET = 0.0


def _tem_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, f"not a text file ({exc.reason})") from exc


def _tem_int(path: Path, lines: list[str], number: int, what: str) -> int:
    if number > len(lines):
        raise AnnotationError(path, f"the file ends where {what} should be", max(len(lines), 1))
    try:
        return int(lines[number - 1].strip())
    except ValueError:
        raise AnnotationError(path, f"expected {what} (an integer), got {lines[number - 1]!r}", number) from None


def parse_tem(path: str | Path) -> np.ndarray:
    """The points of a .tem file as (N, 2) float64 pixels, in the file's own coordinates."""
    path = Path(path)
    lines = _tem_lines(path)
    count = _tem_int(path, lines, 1, "the point count")
    if count < 1:
        raise AnnotationError(path, f"the point count must be positive, got {count}", 1)
    if len(lines) < count + 1:
        raise AnnotationError(path, f"the point count says {count} but the file ends after "
                                    f"{max(len(lines) - 1, 0)} point lines", max(len(lines), 1))
    points = np.empty((count, 2))
    for number in range(2, count + 2):
        parts = lines[number - 1].split()
        try:
            if len(parts) != 2:
                raise ValueError
            points[number - 2] = float(parts[0]), float(parts[1])
        except ValueError:
            raise AnnotationError(path, f"expected 2 numbers 'x<TAB>y', got {lines[number - 1]!r}", number) from None
        if not all(math.isfinite(v) for v in points[number - 2]):
            raise AnnotationError(path, f"point is not finite: {lines[number - 1]!r}", number)
    return points


def parse_tem_template_lines(path: str | Path) -> list[list[int]]:
    """The template's line definitions after the points: one list of point indices per line."""
    path = Path(path)
    lines = _tem_lines(path)
    count = _tem_int(path, lines, 1, "the point count")
    number = count + 2
    out: list[list[int]] = []
    for _ in range(_tem_int(path, lines, number, "the number of template lines")):
        size = _tem_int(path, lines, number + 2, "a template line's point count")
        if number + 3 > len(lines):
            raise AnnotationError(path, "the file ends inside a template line", len(lines))
        try:
            indices = [int(v) for v in lines[number + 2].split()]
        except ValueError:
            raise AnnotationError(path, f"expected point indices, got {lines[number + 2]!r}", number + 3) from None
        if len(indices) != size or min(indices, default=0) < 0 or max(indices, default=0) >= count:
            raise AnnotationError(path, f"expected {size} point indices in 0..{count - 1}, got {lines[number + 2]!r}",
                                  number + 3)
        out.append(indices)
        number += 3
    return out


def frl_layout_indices(layout_path: Path = LAYOUTS_DIR / f"{FRL}.json") -> list[int]:
    """The FRL template index of each point of the `frl` layout, from its point names ("NN: name")."""
    if not layout_path.is_file():
        raise FileNotFoundError(f"{layout_path} does not exist: build it with `python -m tools.build_layouts frl`")
    names = json.loads(layout_path.read_text()).get("names", [])
    try:
        return [int(name.split(":", 1)[0]) for name in names]
    except ValueError:
        raise ValueError(f"{layout_path}: point names must start with the FRL template index ('18: ...')") from None


class FRLDataset(LandmarkDataset):
    """Folders of FRL photos with same-stem 189-point `.tem` files, walked recursively; `frl` layout points."""

    name = FRL

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self.template_indices = np.asarray(frl_layout_indices(), int)
        self._items = annotations_with_images(self.root, sorted(self.root.rglob("*.tem")), self.name, ".tem")

    def _load(self, item: tuple[Path, Path]) -> AnnotatedImage:
        tem, image = item
        points = parse_tem(tem)
        if len(points) != FRL_TEMPLATE_POINTS:
            raise AnnotationError(tem, f"expected the {FRL_TEMPLATE_POINTS}-point FRL template, found {len(points)} "
                                       f"points", 1)
        n = len(self.template_indices)
        return AnnotatedImage(
            image_path=image,
            landmarks=(points[self.template_indices] + TEM_OFFSET).astype(np.float32),
            visibility=np.ones(n, np.float32),
            layout=FRL,
            semantics=FRL,
            extras={"annotation_path": tem},
        )
