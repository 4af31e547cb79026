"""Losses of the seed (paper 2.3): extractor L1, generator L2 + feature matching, segmentor CE + log GD."""
from isles_pipeline.losses.chain_loss import ChainLoss
from isles_pipeline.losses.extractor import extractor_l1
from isles_pipeline.losses.generalized_dice import class_weights, generalized_dice, log_generalized_dice_loss
from isles_pipeline.losses.generator import FeatureMatchingLoss, LesionHead, weighted_mse
from isles_pipeline.losses.segmentor import segmentor_terms, weighted_cross_entropy

__all__ = [
    "ChainLoss", "FeatureMatchingLoss", "LesionHead", "class_weights", "extractor_l1", "generalized_dice",
    "log_generalized_dice_loss", "segmentor_terms", "weighted_cross_entropy", "weighted_mse",
]
