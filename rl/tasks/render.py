"""Drawing of the demo tasks' images with PIL only (no downloads, no torchvision).

Each image is described by a small frozen spec (what to draw, in coordinates relative to the
image side) and drawn by ``render(spec, size)``; the generators never touch PIL, so tasks are
cheap to make and compare, and only written datasets pay for drawing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

# Saturated, well separated colours so a tiny vision tower can tell them apart.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (230, 190, 0),
    "purple": (140, 40, 170),
}
BACKGROUND = (255, 255, 255)
INK = (0, 0, 0)
GRID = (200, 200, 200)
BAR = (60, 110, 200)


@dataclass(frozen=True)
class TextImage:
    """One or more lines of large text, centred (e.g. an arithmetic expression)."""

    lines: tuple[str, ...]


@dataclass(frozen=True)
class Shape:
    """A filled shape centred at (cx, cy) with half-size r, all as fractions of the side."""

    kind: str  # "circle" | "square" | "triangle"
    color: str  # a key of COLORS
    cx: float
    cy: float
    r: float


@dataclass(frozen=True)
class ShapesImage:
    shapes: tuple[Shape, ...]


@dataclass(frozen=True)
class BarChart:
    """Vertical bars with letter labels; y axis from 0 to ``ymax`` with gridlines every ``tick``."""

    labels: tuple[str, ...]
    values: tuple[int, ...]
    ymax: int
    tick: int = 1
    show_values: bool = False


ImageSpec = TextImage | ShapesImage | BarChart


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    # Pillow >= 10.1 ships a scalable default font; it is the same on every machine.
    return ImageFont.load_default(size=max(8, size))


def _centered_text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, px: int) -> None:
    draw.text(xy, text, fill=INK, font=_font(px), anchor="mm")


def _draw_text(draw: ImageDraw.ImageDraw, spec: TextImage, size: int) -> None:
    n = len(spec.lines)
    longest = max(len(line) for line in spec.lines)
    # Glyphs of the default font are about 0.6 em wide; fill ~80% of the width.
    px = int(min(size * 0.8 / max(1, longest) / 0.6, size * 0.7 / n))
    for i, line in enumerate(spec.lines):
        _centered_text(draw, (size / 2, size * (i + 1) / (n + 1)), line, px)


def _draw_shapes(draw: ImageDraw.ImageDraw, spec: ShapesImage, size: int) -> None:
    for s in spec.shapes:
        cx, cy, r = s.cx * size, s.cy * size, s.r * size
        fill = COLORS[s.color]
        if s.kind == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        elif s.kind == "square":
            draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
        elif s.kind == "triangle":
            draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
        else:
            raise ValueError(f"unknown shape kind {s.kind!r}; use circle, square or triangle")


def _draw_bars(draw: ImageDraw.ImageDraw, spec: BarChart, size: int) -> None:
    left, right, top, bottom = 0.16 * size, 0.96 * size, 0.10 * size, 0.86 * size
    unit = (bottom - top) / spec.ymax
    label_px = max(8, int(size * 0.06))
    for y in range(0, spec.ymax + 1, spec.tick):
        ypix = bottom - y * unit
        draw.line((left, ypix, right, ypix), fill=GRID if y else INK, width=1)
        _centered_text(draw, (left * 0.5, ypix), str(y), label_px)
    draw.line((left, top, left, bottom), fill=INK, width=2)
    n = len(spec.values)
    slot = (right - left) / n
    for i, (label, value) in enumerate(zip(spec.labels, spec.values)):
        x0, x1 = left + slot * (i + 0.2), left + slot * (i + 0.8)
        draw.rectangle((x0, bottom - value * unit, x1, bottom), fill=BAR)
        xc = (x0 + x1) / 2
        _centered_text(draw, (xc, (bottom + size) / 2), label, label_px)
        if spec.show_values:
            _centered_text(draw, (xc, bottom - value * unit - label_px * 0.7), str(value), label_px)


def render(spec: ImageSpec, size: int) -> Image.Image:
    """Draw ``spec`` on a white ``size`` x ``size`` RGB image."""
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    if isinstance(spec, TextImage):
        _draw_text(draw, spec, size)
    elif isinstance(spec, ShapesImage):
        _draw_shapes(draw, spec, size)
    elif isinstance(spec, BarChart):
        _draw_bars(draw, spec, size)
    else:
        raise TypeError(f"cannot render {type(spec).__name__}; expected one of {ImageSpec}")
    return image
