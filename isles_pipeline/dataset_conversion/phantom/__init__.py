"""The digital CT perfusion phantom: ISLES-2018-like studies from indicator-dilution physics."""
from .generator import generate_phantom, plan_cases

__all__ = ["generate_phantom", "plan_cases"]
