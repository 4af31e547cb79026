"""qc.png: what an engineer checks before trusting the maps, on one picture.

Why: the former picture drew the slice with the most brain (often an edge slice, where a wrong AIF is
invisible) and the AIF voxels only when they fell on it. Now: the curves with the AIF's quality line (the
warning in red when implausible), the slice with the largest hypoperfusion (Tmax > 6 s) in CBF, CBV, Tmax
with the core and hypoperfusion outlined, and the AIF's and the VOF's own slices with their voxels marked.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from isles_pipeline.files import atomic_path

LIMITS = {"cbf": (0, 80, "ml/100g/min"), "cbv": (0, 6, "ml/100g"), "tmax": (0, 15, "s")}


def _mark(axis, voxels: np.ndarray, z: int, colour: str, label: str) -> None:
    on_slice = voxels[voxels[:, 0] == z] if len(voxels) else voxels
    if len(on_slice):
        axis.scatter(on_slice[:, 2], on_slice[:, 1], s=30, facecolors="none", edgecolors=colour, label=label)


def write_qc_figure(result, volumes: dict, lesions: tuple[np.ndarray, np.ndarray], path: Path) -> None:
    """Write the picture; `volumes` from `clinical.clinical_volumes`, `lesions` its (core, hypoperfusion)."""
    from matplotlib.figure import Figure  # no pyplot: no backend or GUI machinery to import and start

    arterial, maps = result.arterial, result.maps
    core, hypoperfusion = lesions
    lesion_z = int(np.argmax(hypoperfusion.sum(axis=(1, 2)))) if hypoperfusion.any() else \
        int(np.argmax(result.masks.valid.sum(axis=(1, 2))))
    aif_z = int(np.bincount(arterial.aif_voxels[:, 0]).argmax()) if len(arterial.aif_voxels) else lesion_z
    vof_z = int(np.bincount(arterial.vof_voxels[:, 0]).argmax()) if len(arterial.vof_voxels) else aif_z
    figure = Figure(figsize=(15, 9))
    axes = figure.subplots(2, 3)
    curves = axes[0, 0]
    curves.plot(arterial.grid_s, arterial.scaled_aif, label=f"AIF used (x{arterial.scale:.2f})")
    curves.plot(arterial.grid_s, arterial.aif, ":", label="AIF measured")
    if arterial.vof is not None:
        curves.plot(arterial.grid_s, arterial.vof, label="VOF")
    curves.set_xlabel("s")
    curves.set_ylabel("enhancement (HU)")
    curves.legend(fontsize=8)
    quality = arterial.quality or {}
    if quality and not quality.get("plausible", True):
        curves.set_title("WARNING: " + "; ".join(quality["reasons"])[:120], color="red", fontsize=8, wrap=True)
    elif quality:
        curves.set_title(f"AIF {quality['peak_hu']:.0f} HU, {quality['width_s']:.1f} s wide: plausible", fontsize=9)
    for axis, name in zip((axes[0, 1], axes[0, 2], axes[1, 0]), ("cbf", "cbv", "tmax")):
        low, high, unit = LIMITS[name]
        shown = axis.imshow(maps[name][lesion_z], vmin=low, vmax=high, cmap="jet" if name != "cbv" else "viridis")
        for mask, colour in ((hypoperfusion, "white"), (core, "magenta")):
            if mask[lesion_z].any():
                axis.contour(mask[lesion_z], levels=[0.5], colors=colour, linewidths=0.8)
        axis.set_title(f"{name} ({unit}), slice {lesion_z}: largest Tmax > 6 s", fontsize=9)
        axis.axis("off")
        figure.colorbar(shown, ax=axis, fraction=0.046)
    for axis, z, voxels, colour, label in ((axes[1, 1], aif_z, arterial.aif_voxels, "red", "AIF voxels"),
                                           (axes[1, 2], vof_z, arterial.vof_voxels, "cyan", "VOF voxels")):
        axis.imshow(maps["cbv"][z], vmin=0, vmax=6, cmap="gray")
        _mark(axis, voxels, z, colour, label)
        axis.set_title(f"{label}, slice {z} (on CBV)", fontsize=9)
        axis.axis("off")
    ratio = volumes["mismatch_ratio"]
    figure.suptitle(f"core {volumes['core_ml']:.1f} ml (rCBF < 30 %, magenta), hypoperfusion "
                    f"{volumes['hypoperfusion_ml']:.1f} ml (Tmax > 6 s, white), mismatch {volumes['mismatch_ml']:.1f} "
                    f"ml, ratio {'-' if ratio is None else f'{ratio:.2f}'} (RAPID-style rules; Campbell 2011, "
                    f"DEFUSE 3 / Albers 2018)", fontsize=10)
    figure.subplots_adjust(left=0.04, right=0.97, bottom=0.04, top=0.9, wspace=0.3, hspace=0.25)  # fixed: no
    with atomic_path(path) as temporary:                                                         # layout solve
        figure.savefig(temporary, dpi=80, format="png")
