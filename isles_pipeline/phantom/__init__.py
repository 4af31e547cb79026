"""The digital CT perfusion phantom: ISLES-2018-like studies from indicator-dilution physics, four simulated
centres whose vendor software computes the maps from the series, and a report of its realism."""
from isles_pipeline.phantom.generator import generate_phantom, plan_cases
from isles_pipeline.phantom.report import format_report, phantom_report

__all__ = ["format_report", "generate_phantom", "phantom_report", "plan_cases"]
