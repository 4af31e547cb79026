"""SwitchNorm2d against a float64 reference written straight from Luo et al. 2018 (Eq. 3-5)."""
from __future__ import annotations

import shutil

import pytest
import torch

from isles_pipeline.networks.switch_norm import SwitchNorm2d, _moments

pytestmark = pytest.mark.usefixtures("single_torch_thread")

def reference(x, mean_w, var_w, gamma, beta, running_mean=None, running_var=None, eps=1e-5):
    """Three separate normalisers, computed the slow, obvious way in float64."""
    x = x.double()
    mean_in = x.mean(dim=(2, 3), keepdim=True)
    var_in = x.var(dim=(2, 3), keepdim=True, unbiased=False)
    mean_ln = x.mean(dim=(1, 2, 3), keepdim=True)
    var_ln = x.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
    if running_mean is None:
        mean_bn = x.mean(dim=(0, 2, 3), keepdim=True)
        var_bn = x.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
    else:
        mean_bn = running_mean.double().view(1, -1, 1, 1)
        var_bn = running_var.double().view(1, -1, 1, 1)
    wm = torch.softmax(mean_w.double(), 0)
    wv = torch.softmax(var_w.double(), 0)
    mean = wm[0] * mean_in + wm[1] * mean_ln + wm[2] * mean_bn
    var = wv[0] * var_in + wv[1] * var_ln + wv[2] * var_bn
    return (x - mean) / torch.sqrt(var + eps) * gamma.double().view(1, -1, 1, 1) + beta.double().view(1, -1, 1, 1)


def make(channels=6, fused=True, dtype=torch.float32):
    torch.manual_seed(0)
    m = SwitchNorm2d(channels, fused_backward=fused).to(dtype)
    with torch.no_grad():
        m.mean_weight.copy_(torch.tensor([0.3, -0.2, 0.5]))
        m.var_weight.copy_(torch.tensor([-0.1, 0.4, 0.2]))
        m.weight.copy_(torch.linspace(0.5, 2.0, channels))
        m.bias.copy_(torch.linspace(-1.0, 1.0, channels))
        m.running_mean.copy_(torch.linspace(-1.0, 1.0, channels))
        m.running_var.copy_(torch.linspace(0.5, 3.0, channels))
    return m


def sample(shape=(3, 6, 8, 10), dtype=torch.float32):
    g = torch.Generator().manual_seed(1)
    # channel- and sample-dependent offsets and scales, so IN, LN and BN statistics all differ
    return (torch.randn(shape, generator=g) * torch.linspace(0.5, 3, shape[1]).view(1, -1, 1, 1)
            + torch.linspace(-2, 2, shape[0]).view(-1, 1, 1, 1)).to(dtype)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_forward_and_gradients_match_float64_reference(fused, training):
    m = make(fused=fused, dtype=torch.float64).train(training)
    x = sample(dtype=torch.float64).requires_grad_(True)
    run_mean, run_var = (None, None) if training else (m.running_mean.clone(), m.running_var.clone())
    params = [m.mean_weight, m.var_weight, m.weight, m.bias]
    ref_params = [p.detach().clone().requires_grad_(True) for p in params]
    x_ref = x.detach().clone().requires_grad_(True)

    y = m(x)
    y_ref = reference(x_ref, *ref_params, run_mean, run_var)
    torch.testing.assert_close(y, y_ref, rtol=1e-9, atol=1e-9)

    w = torch.randn_like(y)
    (y * w).sum().backward()
    (y_ref * w).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-7, atol=1e-9)
    for p, r in zip(params, ref_params):
        torch.testing.assert_close(p.grad, r.grad, rtol=1e-7, atol=1e-9)


def test_float32_close_to_reference():
    m = make()
    x = sample()
    torch.testing.assert_close(m(x).double(), reference(x, m.mean_weight, m.var_weight, m.weight, m.bias),
                               rtol=1e-4, atol=1e-4)


def test_running_statistics_update_and_are_used_in_eval():
    m = make()
    m.running_mean.zero_()
    m.running_var.fill_(1.0)
    x = sample()
    m.train()(x)
    xd = x.double()
    batch_mean = xd.mean(dim=(0, 2, 3))
    batch_var = xd.var(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(m.running_mean.double(), 0.1 * batch_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(m.running_var.double(), 0.9 + 0.1 * batch_var, rtol=1e-5, atol=1e-6)

    m.eval()
    expected = reference(x, m.mean_weight, m.var_weight, m.weight, m.bias, m.running_mean, m.running_var)
    torch.testing.assert_close(m(x).double(), expected, rtol=1e-4, atol=1e-4)
    before = m.running_mean.clone()
    m(x)
    assert torch.equal(before, m.running_mean), "evaluation must not touch the running statistics"


def test_welford_and_mean_of_squares_moments_agree():
    x = sample()
    for a, b in zip(_moments(x, welford=True), _moments(x, welford=False)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_bf16_autocast_keeps_dtype_and_float32_statistics():
    m = make()
    x = sample().requires_grad_(True)
    expected = m(x.detach())
    m.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        xb = x.to(torch.bfloat16)
        y = m(xb)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), expected, rtol=0.05, atol=0.05)
    y.float().square().sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(m.mean_weight.grad).all()


def test_rejects_non_4d_input():
    with pytest.raises(ValueError):
        SwitchNorm2d(3)(torch.zeros(2, 3, 4))


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile's CPU backend needs a C++ compiler")
def test_torch_compile_matches_eager():
    torch._dynamo.reset()
    eager, compiled_module = make(), make()
    compiled = torch.compile(compiled_module)
    x = sample()
    for training in (True, False):
        eager.train(training)
        compiled_module.train(training)
        xe, xc = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ye, yc = eager(xe), compiled(xc)
        torch.testing.assert_close(yc, ye, rtol=1e-4, atol=1e-4)
        ye.square().sum().backward()
        yc.square().sum().backward()
        torch.testing.assert_close(xc.grad, xe.grad, rtol=1e-3, atol=1e-4)
        torch.testing.assert_close(compiled_module.mean_weight.grad, eager.mean_weight.grad, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(compiled_module.running_mean, eager.running_mean)
    torch.testing.assert_close(compiled_module.running_var, eager.running_var)


@pytest.mark.parametrize("fused", [True, False])
def test_constant_planes_give_finite_gradients(fused):
    """Zero-variance planes (an all-background slice, a dead channel) must not produce NaN through rsqrt/norms."""
    m = make(fused=fused)
    x = sample()
    x[0, 1] = 0.0
    x[1] = 3.0
    x.requires_grad_(True)
    m(x).square().sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(m.mean_weight.grad).all()
