"""CUDA-only tests of the device paths (skipped without a GPU). They need no fixture of conftest.py, so the
device check runs them with `pytest --noconftest` on a machine without SimpleITK (benchmarks.gpu_check.py)."""
from __future__ import annotations

import pytest
import torch

from isles_pipeline.acceleration import resolve_acceleration
from isles_pipeline.inference.compiled import AcceleratedChain
from isles_pipeline.losses import ChainLoss
from isles_pipeline.networks import IntegratedChain, preset
from isles_pipeline.networks.switch_norm import SwitchNorm2d

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA only (run by the device check)")
CUDA = torch.device("cuda")


def test_auto_on_a_real_gpu_is_bf16_and_channels_last():
    auto = resolve_acceleration(CUDA)
    assert auto.bf16 and auto.channels_last and torch.cuda.is_bf16_supported()


def test_switch_norm_fused_backward_matches_autograd_bf16_on_cuda():
    """The CUDA path reduces with var_mean (Welford); tolerances as in test_device_paths (bf16: rtol 2^-7)."""
    g = torch.Generator().manual_seed(3)
    x32 = torch.randn(5, 64, 64, 64, generator=g) * 2 + 1
    upstream = torch.randn(5, 64, 64, 64, generator=g).to(torch.bfloat16).to(CUDA)
    results = []
    for fused in (True, False):
        torch.manual_seed(0)
        norm = SwitchNorm2d(64, fused_backward=fused).to(CUDA)
        x = x32.to(CUDA, torch.bfloat16).requires_grad_(True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y = norm(x)
        y.backward(upstream)
        results.append((y.detach().float(), x.grad.float(), norm.mean_weight.grad, norm.weight.grad))
    (y_f, gx_f, gm_f, gw_f), (y_a, gx_a, gm_a, gw_a) = results
    torch.testing.assert_close(y_f, y_a, rtol=2 ** -7, atol=1e-2)
    torch.testing.assert_close(gx_f, gx_a, rtol=2 ** -7, atol=1e-2)
    torch.testing.assert_close(gm_f, gm_a, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(gw_f, gw_a, rtol=1e-3, atol=1e-3)


def test_cuda_graph_inference_matches_eager_with_a_padded_last_batch():
    torch.manual_seed(0)
    chain = IntegratedChain(**preset("small")["chain"]).to(CUDA).eval()
    frames = torch.randn(7, 11, 64, 64, device=CUDA)
    maps = torch.randn(7, 6, 64, 64, device=CUDA)
    eager = AcceleratedChain(chain, resolve_acceleration(CUDA), 4)
    graphs = AcceleratedChain(chain, resolve_acceleration(CUDA, compile_mode="reduce-overhead", batch_size=4), 4)
    with torch.inference_mode():
        reference = [eager(frames[i:i + 4], maps[i:i + 4]).segmentor_logits for i in (0, 4)]
        for _ in range(3):  # warm-up, capture, replay
            outputs = [graphs(frames[i:i + 4], maps[i:i + 4]).segmentor_logits for i in (0, 4)]
    assert outputs[1].shape[0] == 3
    for got, want in zip(outputs, reference):
        torch.testing.assert_close(got, want, rtol=0.05, atol=0.05)


def test_cuda_graph_training_steps_follow_eager():
    """Three RMSprop steps of the chain and its loss with CUDA graphs against eager, both bf16 + channels_last."""
    from benchmarks.chain_step import synthetic_batch
    from isles_pipeline.trainers.chain_trainer import ChainWithLoss

    config = preset("small")
    data = synthetic_batch(4, 64, CUDA, dwi=True)
    losses = {}
    for mode in (None, "reduce-overhead"):
        torch._dynamo.reset()
        torch.manual_seed(0)
        chain = IntegratedChain(**config["chain"]).to(CUDA).to(memory_format=torch.channels_last)
        loss = ChainLoss(feature_base_channels=config["feature_net"]["base_channels"]).to(CUDA)
        acceleration = resolve_acceleration(CUDA, compile_mode=mode, batch_size=4)
        module = ChainWithLoss(chain, loss)
        step = torch.compile(module, mode=mode) if mode else module
        optimiser = torch.optim.RMSprop([*chain.parameters(), *loss.parameters()], lr=1e-4)
        losses[mode] = []
        for _ in range(3):
            optimiser.zero_grad(set_to_none=True)
            if mode:
                torch.compiler.cudagraph_mark_step_begin()
            with acceleration.autocast():
                terms, _ = step(data["frames"], data["maps"], data["target"], data["weight"], data["dwi"])
            terms["total"].backward()
            optimiser.step()
            losses[mode].append(float(terms["total"].detach()))
    assert all(torch.isfinite(torch.tensor(losses["reduce-overhead"])))
    torch.testing.assert_close(torch.tensor(losses["reduce-overhead"]), torch.tensor(losses[None]), rtol=0.05,
                               atol=0.05)
