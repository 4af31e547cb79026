"""NIfTI and case-image reading and writing: the bottom layer every other package reads and writes through."""
