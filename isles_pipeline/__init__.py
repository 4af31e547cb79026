"""CT perfusion stroke-core segmentation: the ISLES 2018 winning method, packaged like nnU-Net.

Layers, bottom to top (a module imports its own layer or lower ones; tests/test_module_layering.py checks it):
foundation modules (errors, files, paths, devices, parallel, components, raw_format, splits, checkpoints, ...)
< imageio < perfusion < dataset_conversion < preprocessing < evaluation < planners < networks < losses
< augmentation < inference < trainers < phantom < demo < cli. Benchmarks and the experiments behind the
results tables live beside the package (benchmarks/, experiments/) and are run from a checkout.
"""
