"""ISLES 2018 and ISLES 2024 downloads -> the raw format (`isles_pipeline.raw_format`)."""
