"""qc.png: what an engineer checks before trusting the maps, on one picture.

Why: the former picture drew the slice with the most brain (often an edge slice, where a wrong AIF is
invisible) and the AIF voxels only when they fell on it. Now: the curves with the AIF's quality line (the
warning in red when implausible), the slice with the largest hypoperfusion (Tmax > 6 s) in CBF, CBV, Tmax
with the core and hypoperfusion outlined, and the AIF's and the VOF's own slices with their voxels marked; a
warning about the series itself (a short baseline, a scan ended during the first pass) in red at the top.

Drawn with Pillow, not matplotlib: importing and drawing a matplotlib figure cost ~1 s of the command's
~5 s; these panels, lines and labels cost ~0.1 s.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from isles_pipeline.files import atomic_path

LIMITS = {"cbf": (0, 80, "ml/100g/min"), "cbv": (0, 6, "ml/100g"), "tmax": (0, 15, "s")}
PANEL = 360  # pixels of one panel's image
TITLE = 34  # pixels above each panel for its title
BAR = 14  # the colour bar's width
WIDTH, HEIGHT = 3 * (PANEL + 70) + 20, 60 + 2 * (PANEL + TITLE + 20)
COLOURS = {"aif": (31, 119, 180), "measured": (120, 170, 220), "vof": (255, 127, 14), "hypo": (255, 255, 255),
           "core": (255, 0, 255), "aif_voxels": (255, 0, 0), "vof_voxels": (0, 255, 255)}


def _jet(x: np.ndarray) -> np.ndarray:
    """The jet colour map (blue, cyan, yellow, red) of values in [0, 1], as piecewise-linear ramps."""
    return np.stack([np.clip(1.5 - np.abs(4 * x - c), 0, 1) for c in (3, 2, 1)], axis=-1)


def _heat(x: np.ndarray) -> np.ndarray:
    """Black, red, yellow, white for values in [0, 1] (CBV, so that it does not read as the jet maps)."""
    return np.stack([np.clip(3 * x - c, 0, 1) for c in (0, 1, 2)], axis=-1)


def _gray(x: np.ndarray) -> np.ndarray:
    return np.repeat(x[..., None], 3, axis=-1)


def _panel(values: np.ndarray, low: float, high: float, colours) -> tuple[Image.Image, float]:
    """The slice in colour, scaled by nearest neighbour to fit PANEL x PANEL; and the scale."""
    rgb = (colours(np.clip((values - low) / (high - low), 0, 1)) * 255).astype(np.uint8)
    scale = PANEL / max(values.shape)
    size = (max(int(round(values.shape[1] * scale)), 1), max(int(round(values.shape[0] * scale)), 1))
    return Image.fromarray(rgb).resize(size, Image.NEAREST), scale


def _outline(image: Image.Image, mask: np.ndarray, colour) -> None:
    """The edge of a 2D mask drawn onto `image` (the mask scaled like the panel)."""
    big = np.array(Image.fromarray(mask.astype(np.uint8) * 255).resize(image.size, Image.NEAREST)) > 0
    inner = big.copy()
    inner[1:] &= big[:-1]
    inner[:-1] &= big[1:]
    inner[:, 1:] &= big[:, :-1]
    inner[:, :-1] &= big[:, 1:]
    pixels = np.array(image)
    pixels[big & ~inner] = colour
    image.paste(Image.fromarray(pixels))


def _colour_bar(canvas, draw, font, left, top, low, high, colours) -> None:
    ramp = (colours(np.linspace(1, 0, PANEL))[:, None, :] * 255).astype(np.uint8).repeat(BAR, axis=1)
    canvas.paste(Image.fromarray(ramp), (left, top))
    draw.rectangle([left, top, left + BAR, top + PANEL], outline=(0, 0, 0))
    for value, y in ((high, top), ((low + high) / 2, top + PANEL // 2), (low, top + PANEL - 12)):
        draw.text((left + BAR + 3, y), f"{value:g}", fill=(0, 0, 0), font=font)


def _curves(draw, font, box, arterial) -> None:
    """The AIF used, the AIF measured (light) and the VOF against time, with axes, ticks and a legend."""
    left, top, right, bottom = box
    draw.rectangle(box, outline=(0, 0, 0))
    grid = np.asarray(arterial.grid_s, float)
    lines = [(arterial.scaled_aif, COLOURS["aif"], f"AIF used (x{arterial.scale:.2f})"),
             (arterial.aif, COLOURS["measured"], "AIF measured")]
    if arterial.vof is not None:
        lines.append((arterial.vof, COLOURS["vof"], "VOF"))
    low = min(0.0, *(float(np.min(y)) for y, _, _ in lines))
    high = max(1.0, *(float(np.max(y)) for y, _, _ in lines)) * 1.05
    span = max(float(grid[-1] - grid[0]), 1e-6)

    def point(t, y):
        return (left + (t - grid[0]) / span * (right - left), bottom - (y - low) / (high - low) * (bottom - top))

    for values, colour, label in lines:
        draw.line([point(t, y) for t, y in zip(grid, values)], fill=colour, width=2)
    for tick in np.linspace(grid[0], grid[-1], 5):
        x = point(tick, low)[0]
        draw.line([(x, bottom), (x, bottom + 4)], fill=(0, 0, 0))
        draw.text((x - 8, bottom + 5), f"{tick:.0f}", fill=(0, 0, 0), font=font)
    for tick in np.linspace(low, high / 1.05, 4):
        y = point(grid[0], tick)[1]
        draw.line([(left - 4, y), (left, y)], fill=(0, 0, 0))
        draw.text((left - 40, y - 6), f"{tick:.0f}", fill=(0, 0, 0), font=font)
    draw.text(((left + right) / 2 - 4, bottom + 18), "s", fill=(0, 0, 0), font=font)
    draw.text((left - 40, top - 16), "HU", fill=(0, 0, 0), font=font)
    for row, (_, colour, label) in enumerate(lines):
        y = top + 8 + 15 * row
        draw.line([(right - 150, y + 6), (right - 130, y + 6)], fill=colour, width=2)
        draw.text((right - 125, y), label, fill=(0, 0, 0), font=font)


def write_qc_figure(result, volumes: dict, lesions: tuple[np.ndarray, np.ndarray], path: Path) -> None:
    """Write the picture; `volumes` from `clinical.clinical_volumes`, `lesions` its (core, hypoperfusion)."""
    arterial, maps = result.arterial, result.maps
    core, hypoperfusion = lesions
    lesion_z = int(np.argmax(hypoperfusion.sum(axis=(1, 2)))) if hypoperfusion.any() else \
        int(np.argmax(result.masks.valid.sum(axis=(1, 2))))
    aif_z = int(np.bincount(arterial.aif_voxels[:, 0]).argmax()) if len(arterial.aif_voxels) else lesion_z
    vof_z = int(np.bincount(arterial.vof_voxels[:, 0]).argmax()) if len(arterial.vof_voxels) else aif_z
    canvas = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font, big = ImageFont.load_default(size=12), ImageFont.load_default(size=14)
    ratio = volumes["mismatch_ratio"]
    draw.text((10, 10), f"core {volumes['core_ml']:.1f} ml (rCBF < 30 %, magenta), hypoperfusion "
                        f"{volumes['hypoperfusion_ml']:.1f} ml (Tmax > 6 s, white), mismatch "
                        f"{volumes['mismatch_ml']:.1f} ml, ratio {'-' if ratio is None else f'{ratio:.2f}'}",
              fill=(0, 0, 0), font=big)
    draw.text((10, 30), "RAPID-style rules; Campbell 2011, DEFUSE 3 / Albers 2018", fill=(0, 0, 0), font=font)
    if result.series_warnings:  # a short baseline, a cut first pass (the AIF's own warning is in its panel below)
        draw.text((10, 44), ("WARNING: " + "; ".join(result.series_warnings))[:225], fill=(220, 0, 0), font=font)
    origins = [(10 + column * (PANEL + 70), 60 + row * (PANEL + TITLE + 20)) for row in (0, 1) for column in (0, 1, 2)]

    x, y = origins[0]
    quality = arterial.quality or {}
    if quality and not quality.get("plausible", True):
        text = "WARNING: " + "; ".join(quality["reasons"])[:120]
        draw.text((x, y), text[:60], fill=(220, 0, 0), font=font)
        draw.text((x, y + 14), text[60:], fill=(220, 0, 0), font=font)
    elif quality:
        draw.text((x, y), f"AIF {quality['peak_hu']:.0f} HU, {quality['width_s']:.1f} s wide: plausible",
                  fill=(0, 0, 0), font=font)
    _curves(draw, font, (x + 45, y + TITLE, x + PANEL + 40, y + TITLE + PANEL - 30), arterial)

    for (x, y), name, colours in zip(origins[1:4], ("cbf", "cbv", "tmax"), (_jet, _heat, _jet)):
        low, high, unit = LIMITS[name]
        image, _ = _panel(maps[name][lesion_z], low, high, colours)
        for mask, colour in ((hypoperfusion, COLOURS["hypo"]), (core, COLOURS["core"])):
            if mask[lesion_z].any():
                _outline(image, mask[lesion_z], colour)
        canvas.paste(image, (x, y + TITLE))
        draw.text((x, y + 4), f"{name} ({unit}), slice {lesion_z}: largest Tmax > 6 s", fill=(0, 0, 0), font=font)
        _colour_bar(canvas, draw, font, x + image.size[0] + 6, y + TITLE, low, high, colours)

    for (x, y), z, voxels, colour, label in ((origins[4], aif_z, arterial.aif_voxels, COLOURS["aif_voxels"],
                                              "AIF voxels"),
                                             (origins[5], vof_z, arterial.vof_voxels, COLOURS["vof_voxels"],
                                              "VOF voxels")):
        image, scale = _panel(maps["cbv"][z], 0, 6, _gray)
        canvas.paste(image, (x, y + TITLE))
        draw.text((x, y + 4), f"{label}, slice {z} (on CBV)", fill=(0, 0, 0), font=font)
        on_slice = voxels[voxels[:, 0] == z] if len(voxels) else voxels
        for _, row, column in on_slice:
            cx, cy = x + (column + 0.5) * scale, y + TITLE + (row + 0.5) * scale
            draw.ellipse([cx - 5, cy - 5, cx + 5, cy + 5], outline=colour, width=2)
    with atomic_path(path) as temporary:
        canvas.save(temporary, format="PNG", compress_level=1)
