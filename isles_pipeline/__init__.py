"""CT perfusion stroke-core segmentation: the ISLES 2018 winning method, packaged like nnU-Net."""
