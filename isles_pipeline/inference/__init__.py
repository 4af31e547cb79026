"""Prediction: fold ensembles, case inputs, connected-component post-processing, writing the masks."""
