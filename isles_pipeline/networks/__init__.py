"""Networks of the seed: U-Net, attention U-Net (SE + switchable norm), feature networks A/B, the chain."""
from isles_pipeline.networks.chain import ChainOutput, IntegratedChain
from isles_pipeline.networks.feature_net import FeatureNetwork
from isles_pipeline.networks.init import xavier_init
from isles_pipeline.networks.norms import make_input_norm, make_norm
from isles_pipeline.networks.presets import PRESETS, preset
from isles_pipeline.networks.squeeze_excitation import SqueezeExcitation
from isles_pipeline.networks.switch_norm import SwitchNorm2d
from isles_pipeline.networks.unet import AttentionUNet, UNet, check_divisible

__all__ = [
    "AttentionUNet", "ChainOutput", "FeatureNetwork", "IntegratedChain", "PRESETS", "SqueezeExcitation",
    "SwitchNorm2d", "UNet", "check_divisible", "make_input_norm", "make_norm", "preset", "xavier_init",
]
