"""The one exception type the training entry points turn into a single clear line and a non-zero exit."""


class TrainingError(RuntimeError):
    """Bad input or an unrecoverable condition (no data, bad fold, unknown trainer, no GPU, out of memory)."""
