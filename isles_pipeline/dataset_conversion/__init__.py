"""ISLES 2018 layout -> raw format, and the digital perfusion phantom."""
