"""Shapes, FLOPs, switches and gradient flow of the seed's networks."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmarks.flops import chain_gflops, forward_gflops, full_networks
from isles_pipeline.losses import segmentor_terms
from isles_pipeline.networks import (
    AttentionUNet,
    FeatureNetwork,
    IntegratedChain,
    SqueezeExcitation,
    SwitchNorm2d,
    UNet,
    preset,
)

SMALL = preset("small")["chain"]


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_full_configuration_shapes_at_256():
    nets = full_networks()
    for name, (net, channels) in nets.items():
        out = net(torch.empty(2, channels, 256, 256, device="meta"))
        assert out.shape == (2, 2 if name == "segmentor" else 1, 256, 256), name
    with torch.device("meta"):
        features = FeatureNetwork(1, base_channels=16)(torch.empty(2, 1, 256, 256))
    assert features.shape == (2, 256 * 14)


@pytest.mark.parametrize("name, expected", [("extractor", 24.0), ("generator", 97.0), ("segmentor", 96.0)])
def test_forward_flops_per_network_match_the_design(name, expected):
    net, channels = full_networks()[name]
    assert forward_gflops(net, channels) == pytest.approx(expected, rel=0.05)


def test_forward_flops_of_the_full_chain_at_256():
    assert chain_gflops() == pytest.approx(217.0, rel=0.05)


@pytest.mark.parametrize("size", [(256, 256), (32, 48)])
def test_small_networks_compute_the_right_shapes(size):
    torch.manual_seed(0)
    h, w = size
    nets = [(UNet(11, 1, 8), 11, 1), (UNet(7, 1, 16), 7, 1), (AttentionUNet(1, 2, 16), 1, 2)]
    for net, cin, cout in nets:
        out = net(torch.randn(2, cin, h, w))
        assert out.shape == (2, cout, h, w)
        assert torch.isfinite(out).all()
    features = FeatureNetwork(1, base_channels=4)(torch.randn(2, 1, h, w))
    assert features.shape == (2, 64 * 14)


def test_sizes_not_divisible_by_16_are_rejected():
    with pytest.raises(ValueError, match="divisible by 16"):
        UNet(1, 1, 4)(torch.zeros(1, 1, 40, 32))
    chain = IntegratedChain(**SMALL)
    with pytest.raises(ValueError, match="divisible by 16"):
        chain(torch.zeros(1, 11, 32, 36), torch.zeros(1, 6, 32, 36))


def test_attention_unet_has_se_in_every_stage_and_switch_norm():
    net = AttentionUNet(1, 2, base_channels=16)
    stages = [*net.encoder, net.bottleneck, *net.decoder]
    assert len(stages) == 9
    assert all(isinstance(stage.se, SqueezeExcitation) for stage in stages)
    assert sum(isinstance(m, SwitchNorm2d) for m in net.modules()) == 18
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    plain = UNet(1, 2, base_channels=16)
    assert not any(isinstance(m, (SqueezeExcitation, SwitchNorm2d)) for m in plain.modules())
    assert [s.conv2.out_channels for s in plain.encoder] + [plain.bottleneck.conv2.out_channels] == [16, 32, 64,
                                                                                                     128, 256]


def test_xavier_initialisation():
    net = UNet(3, 2, base_channels=8)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            assert m.weight.abs().max() <= bound
            assert m.weight.abs().max() > 0.5 * bound  # uniform over the whole Xavier range, not a narrower init
            if m.bias is not None:
                assert torch.all(m.bias == 0)


def test_input_bn_is_parameter_free():
    net = UNet(11, 1, 8, input_bn=True)
    assert isinstance(net.input_norm, nn.BatchNorm2d) and not net.input_norm.affine
    assert isinstance(UNet(11, 1, 8).input_norm, nn.Identity)


CASES = {
    # name: (switches, extractor?, generator?, segmentor input channels)
    "full": ({}, True, True, 1),
    "no_extractor": ({"use_extractor": False}, False, True, 1),
    "no_generator": ({"use_generator": False}, True, False, 7),
    "one_stage_unet": ({"use_extractor": False, "use_generator": False, "segmentor_se": False,
                        "segmentor_norm": "batch", "input_bn": False}, False, False, 6),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_chain_switches(name):
    switches, has_e, has_g, seg_in = CASES[name]
    chain = IntegratedChain(**SMALL, **switches)
    assert (chain.extractor is not None) == has_e and (chain.generator is not None) == has_g
    assert chain.segmentor.in_channels == seg_in
    if has_g:
        assert chain.generator.in_channels == (7 if has_e else 6)
    frames = torch.randn(2, 11, 32, 32) if has_e else None
    out = chain(frames, torch.randn(2, 6, 32, 32))
    assert (out.extractor_logit is not None) == has_e and (out.pseudo_dwi is not None) == has_g
    assert out.segmentor_logits.shape == (2, 2, 32, 32)
    if has_e:
        assert out.extractor_logit.shape == (2, 1, 32, 32)
    if has_g:
        assert out.pseudo_dwi.shape == (2, 1, 32, 32)


def test_norm_switch_of_the_segmentor():
    sn = IntegratedChain(**SMALL)
    bn = IntegratedChain(**SMALL, segmentor_norm="batch")
    assert any(isinstance(m, SwitchNorm2d) for m in sn.segmentor.modules())
    assert not any(isinstance(m, SwitchNorm2d) for m in bn.segmentor.modules())
    assert not any(isinstance(m, SwitchNorm2d) for m in sn.generator.modules())


def test_chain_requires_frames_when_the_extractor_is_on():
    with pytest.raises(ValueError, match="frames"):
        IntegratedChain(**SMALL)(None, torch.zeros(1, 6, 32, 32))


def test_segmentor_loss_gradient_reaches_the_extractors_first_layer():
    torch.manual_seed(0)
    chain = IntegratedChain(**SMALL)
    out = chain(torch.randn(2, 11, 32, 32), torch.randn(2, 6, 32, 32))
    target = (torch.rand(2, 1, 32, 32) > 0.8).float()
    loss = sum(segmentor_terms(out.segmentor_logits, target).values())
    loss.backward()
    grad = chain.extractor.encoder[0].conv1.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert chain.generator.encoder[0].conv1.weight.grad.abs().sum() > 0


def test_bf16_autocast_forward_backward():
    torch.manual_seed(0)
    chain = IntegratedChain(**SMALL)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = chain(torch.randn(2, 11, 32, 32), torch.randn(2, 6, 32, 32))
        loss = sum(segmentor_terms(out.segmentor_logits, torch.zeros(2, 1, 32, 32)).values())
    assert loss.dtype == torch.float32
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in chain.parameters() if p.grad is not None)


def test_chain_step_benchmark_runs(capsys):
    """A smoke run of the benchmark command (not a timing): tiny slices, one step, both segmentor norms."""
    from benchmarks.chain_step import main

    assert main(["--device", "cpu", "--preset", "small", "--size", "32", "--batch", "2", "--steps", "1",
                 "--warmup", "0", "--compare-norm"]) == 0
    out = capsys.readouterr().out
    assert "segmentor switch norm: train" in out and "segmentor batch  norm: train" in out
    assert "slices/s" in out and "MiB" in out


def test_excluded_maps_are_checked_by_name():
    names = ["CBF", "CBV", "MTT", "Tmax", "PWImax_o", "PWImax_p"]
    with pytest.raises(ValueError, match="needs map_names"):
        IntegratedChain(**SMALL, excluded_maps=["PWImax_o"])
    with pytest.raises(ValueError, match="not among the map channels"):
        IntegratedChain(**SMALL, map_names=names, excluded_maps=["DWI"])
    with pytest.raises(ValueError, match="leave no map channel"):
        IntegratedChain(**SMALL, map_names=names, excluded_maps=names)
    chain = IntegratedChain(**SMALL, map_names=names, excluded_maps=["PWImax_o"], use_extractor=False)
    assert chain.used_maps == [0, 1, 2, 3, 5] and chain.generator.in_channels == 5
