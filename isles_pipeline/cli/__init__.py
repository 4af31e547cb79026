"""Thin argparse entry points over the Python API."""
