"""Prediction: model folders and fold ensembles, case inputs, connected-component post-processing, writing."""
