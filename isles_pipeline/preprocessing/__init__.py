"""CTP temporal preprocessing, normalisation, SDF weight maps and per-case storage of the 2D training data."""
