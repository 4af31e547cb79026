"""Network widths of the two configurations we run: the seed's full one, and a narrow one for CPU tests and
the demo. Plain dicts of keyword arguments, as the plans JSON will carry them."""
from __future__ import annotations

PRESETS: dict[str, dict[str, dict]] = {
    # Paper 2.2: U-Net 64 .. 1024, extractor at half width; feature nets' widths are our choice (16 .. 256).
    "full": {"chain": {"extractor_base": 32, "generator_base": 64, "segmentor_base": 64},
             "feature_net": {"base_channels": 16}, "patch_size": [256, 256]},
    # Narrow networks at 128 x 128 so that a CPU training step takes a fraction of a second.
    "small": {"chain": {"extractor_base": 8, "generator_base": 16, "segmentor_base": 16},
              "feature_net": {"base_channels": 4}, "patch_size": [128, 128]},
}


def preset(name: str) -> dict[str, dict]:
    """A copy of the named preset's kwargs: {"chain": ..., "feature_net": ..., "patch_size": ...}."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return {key: (dict(value) if isinstance(value, dict) else list(value)) for key, value in PRESETS[name].items()}
