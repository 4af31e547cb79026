"""Trainers (the chain trainer and its Table-1 variants) and the cross-validation splits they train on."""
