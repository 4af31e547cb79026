"""Training bookkeeping: per-epoch values, the text log and progress.png.

`TrainingLog` keeps one list per quantity (epoch, lr, each train loss term, val loss, pseudo-Dice, its moving
average, epoch time); it travels in the checkpoint so a resumed run continues the same curves.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

from isles_pipeline.files import atomic_path

EMA_MOMENTUM = 0.9  # nnU-Net's moving average of the pseudo-Dice


class TrainingLog:
    def __init__(self, values: Optional[dict] = None) -> None:
        self.values: dict[str, list] = {k: list(v) for k, v in (values or {}).items()}

    def append(self, **entries) -> None:
        for key, value in entries.items():
            self.values.setdefault(key, []).append(value)

    def last(self, key: str, default=None):
        series = self.values.get(key)
        return series[-1] if series else default

    def state(self) -> dict:
        return {k: list(v) for k, v in self.values.items()}


class TextLog:
    """Lines with a UTC time stamp, appended to training_log.txt and echoed to stdout (rank 0 only)."""

    def __init__(self, path: Optional[Path], echo: bool = True) -> None:
        self.path = Path(path) if path else None
        self.echo = echo

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}: {message}"
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        if self.echo:
            print(line, file=sys.stdout, flush=True)


def plot_progress(log: TrainingLog, path: Path) -> None:
    """progress.png: losses, pseudo-Dice (and its moving average), lr and epoch time against the epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = log.values
    epochs = v.get("epoch", [])
    if not epochs:
        return
    fig, axes = plt.subplots(3, 1, figsize=(10, 12))
    ax = axes[0]
    for key in sorted(k for k in v if k.startswith("train_")):
        ax.plot(epochs, v[key], label=key, linewidth=2 if key == "train_total" else 1)
    if "val_loss" in v:
        ax.plot(epochs, v["val_loss"], label="val_loss", linewidth=2)
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    dice = axes[0].twinx()
    dice.plot(epochs, v.get("pseudo_dice", []), "g:", label="pseudo Dice")
    dice.plot(epochs, v.get("ema_pseudo_dice", []), "g-", label="pseudo Dice (moving avg)")
    dice.set_ylabel("pseudo Dice")
    dice.legend(loc="lower right", fontsize=7)
    axes[1].plot(epochs, v.get("epoch_time_s", []))
    axes[1].set_ylabel("epoch time (s)")
    axes[2].plot(epochs, v.get("lr", []))
    axes[2].set_ylabel("learning rate")
    axes[2].set_xlabel("epoch")
    fig.tight_layout()
    try:
        with atomic_path(Path(path)) as temporary:
            fig.savefig(temporary, dpi=80, format="png")
    finally:
        plt.close(fig)
