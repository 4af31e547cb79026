"""The device paths (isles_pipeline.acceleration) run for real on the CPU: bf16 autocast (CPU autocast) through a
whole training of the chain, channels_last, checkpoint save and exact resume under bf16, prediction under
bf16, switchable norm's fused backward against autograd in bf16, and the CUDA-graph decision and padding.
torch.compile itself is not run here: Inductor (and even AOTAutograd alone) takes minutes on this 2-core
machine; `python -m benchmarks.gpu_check --device cpu --quick --with-compile` runs it."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from predict_helpers import save_checkpoint
from train_helpers import Interrupted, interrupt_after_epoch, write_plans_variant

from isles_pipeline import acceleration as acc
from isles_pipeline.acceleration import AccelerationError, pad_to_batch, resolve_acceleration
from isles_pipeline.inference import compiled
from isles_pipeline.inference.compiled import AcceleratedChain
from isles_pipeline.inference.ensemble import FoldEnsemble
from isles_pipeline.networks import IntegratedChain, preset
from isles_pipeline.networks.switch_norm import SwitchNorm2d
from isles_pipeline.trainers import checkpoint as ckpt
from isles_pipeline.trainers.chain_trainer import ISLESChainTrainer
from isles_pipeline.trainers.run import run_training

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU: only the rule is tested


# ---- the decision rule --------------------------------------------------------------------------------------
def test_auto_is_fast_on_cuda_and_unchanged_on_cpu():
    cpu = resolve_acceleration(CPU)
    assert (cpu.bf16, cpu.channels_last, cpu.compile_mode, cpu.notes) == (False, False, None, ())
    cuda = resolve_acceleration(CUDA)
    assert cuda.bf16 and cuda.channels_last and cuda.compile_mode is None
    asked = resolve_acceleration(CPU, "bf16", "channels_last", "default")
    assert asked.bf16 and asked.channels_last and asked.compile_mode == "default" and not asked.cuda_graphs
    off = resolve_acceleration(CUDA, "fp32", "contiguous")
    assert not off.bf16 and not off.channels_last


def test_cuda_graphs_only_on_one_cuda_process_else_one_line_and_default_mode():
    graphs = resolve_acceleration(CUDA, compile_mode="reduce-overhead", batch_size=5)
    assert graphs.cuda_graphs and len(graphs.notes) == 1 and "batch of 5" in graphs.notes[0]
    assert "padded" in graphs.notes[0]
    for device, distributed, word in ((CPU, False, "CUDA device"), (CUDA, True, "several processes")):
        fallback = resolve_acceleration(device, compile_mode="reduce-overhead", distributed=distributed)
        assert fallback.compile_mode == "default" and not fallback.cuda_graphs
        assert len(fallback.notes) == 1 and word in fallback.notes[0]


@pytest.mark.parametrize("kwargs", [{"precision": "fp16"}, {"memory_format": "nhwc"}, {"compile_mode": "max"}])
def test_unknown_values_are_refused(kwargs):
    with pytest.raises(AccelerationError):
        resolve_acceleration(CPU, **kwargs)


def test_pad_to_batch_repeats_the_last_slice():
    x = torch.arange(3 * 2, dtype=torch.float32).view(3, 2)
    padded = pad_to_batch(x, 5)
    assert padded.shape == (5, 2) and torch.equal(padded[:3], x)
    assert torch.equal(padded[3], x[2]) and torch.equal(padded[4], x[2])
    assert pad_to_batch(x, 3) is x
    with pytest.raises(ValueError):
        pad_to_batch(x, 2)


def _small_chain(seed: int = 0) -> IntegratedChain:
    torch.manual_seed(seed)
    return IntegratedChain(**preset("small")["chain"]).eval()


def test_static_batch_padding_changes_no_real_slice(monkeypatch, single_torch_thread):
    """The CUDA-graph inference path on the CPU (compile replaced by the eager module): a 3-slice chunk reaches
    the network as a batch of 5 and the 3 real slices come out as without padding (eval-mode statistics)."""
    monkeypatch.setattr(compiled, "compile_module", lambda module, _: module)
    monkeypatch.setattr(compiled, "mark_step_begin", lambda _: None)
    graphs = acc.Acceleration("cpu", compile_mode="reduce-overhead")
    assert graphs.cuda_graphs
    chain = _small_chain()
    seen = []
    chain.segmentor.register_forward_hook(lambda module, args, out: seen.append(out.shape[0]))
    g = torch.Generator().manual_seed(0)
    frames, maps = torch.randn(3, 11, 32, 32, generator=g), torch.randn(3, 6, 32, 32, generator=g)
    with torch.no_grad():
        plain = chain(frames, maps)
        padded = AcceleratedChain(chain, graphs, batch_size=5)(frames, maps)
        # a chunk larger than the static batch is split, never run as a new shape
        split = AcceleratedChain(chain, graphs, batch_size=2)(frames, maps)
    assert seen == [3, 5, 2, 2]
    for out in (padded, split):
        assert out.segmentor_logits.shape == (3, 2, 32, 32) and out.pseudo_dwi.shape == (3, 1, 32, 32)
        torch.testing.assert_close(out.segmentor_logits, plain.segmentor_logits, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(out.pseudo_dwi, plain.pseudo_dwi, rtol=1e-4, atol=1e-4)


# ---- switchable norm: fused backward against autograd, in bf16 ------------------------------------------------
def test_switch_norm_fused_backward_matches_autograd_in_bf16(single_torch_thread):
    """Under autocast the norm receives a bf16 activation (a convolution's output) and returns bf16.

    Tolerances: both paths reduce in float32 from the same bf16 input and differ only in float32 summation
    order, so the float32 parameter gradients agree to rtol 1e-4; the output and the input gradient are
    rounded to bf16 (8 significant bits, one ulp = 2^-8 relative) at the end, where a float32 difference in
    the last bits can round to the neighbouring bf16 value: rtol 2^-7 (one ulp of slack each side) with atol
    1e-2 for values near zero. Against a float64 computation from the same bf16 input both must be within
    bf16 rounding of the exact values (rtol 2^-7, atol 2e-2)."""
    g = torch.Generator().manual_seed(3)
    x32 = (torch.randn(4, 16, 24, 24, generator=g) * torch.linspace(0.5, 3, 16).view(1, -1, 1, 1)
           + torch.linspace(-2, 2, 4).view(-1, 1, 1, 1))
    upstream = torch.randn(4, 16, 24, 24, generator=g).to(torch.bfloat16)
    results = {}
    for fused in (True, False):
        torch.manual_seed(0)
        norm = SwitchNorm2d(16, fused_backward=fused)
        with torch.no_grad():
            norm.mean_weight.copy_(torch.tensor([0.3, -0.2, 0.5]))
            norm.var_weight.copy_(torch.tensor([-0.1, 0.4, 0.2]))
            norm.weight.copy_(torch.linspace(0.5, 2.0, 16))
            norm.bias.copy_(torch.linspace(-1.0, 1.0, 16))
        x = x32.to(torch.bfloat16).requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = norm(x)
        assert y.dtype == torch.bfloat16
        y.backward(upstream)
        assert x.grad.dtype == torch.bfloat16
        results[fused] = (y.detach(), x.grad, {n: p.grad for n, p in norm.named_parameters()})
    (y_f, gx_f, gp_f), (y_a, gx_a, gp_a) = results[True], results[False]
    bf16_rtol = 2.0 ** -7
    torch.testing.assert_close(y_f.float(), y_a.float(), rtol=bf16_rtol, atol=1e-2)
    torch.testing.assert_close(gx_f.float(), gx_a.float(), rtol=bf16_rtol, atol=1e-2)
    for name in gp_a:
        torch.testing.assert_close(gp_f[name], gp_a[name], rtol=1e-4, atol=1e-4, msg=name)

    # both against a float64 evaluation of the plain formulation on the same bf16 input and upstream gradient
    norm64 = SwitchNorm2d(16, fused_backward=False).double()
    with torch.no_grad():
        norm64.mean_weight.copy_(torch.tensor([0.3, -0.2, 0.5]))
        norm64.var_weight.copy_(torch.tensor([-0.1, 0.4, 0.2]))
        norm64.weight.copy_(torch.linspace(0.5, 2.0, 16))
        norm64.bias.copy_(torch.linspace(-1.0, 1.0, 16))
    x64 = x32.to(torch.bfloat16).double().requires_grad_(True)
    y64 = norm64(x64)
    y64.backward(upstream.double())
    for y, gx in ((y_f, gx_f), (y_a, gx_a)):
        torch.testing.assert_close(y.double(), y64.detach(), rtol=bf16_rtol, atol=2e-2)
        torch.testing.assert_close(gx.double(), x64.grad, rtol=bf16_rtol, atol=2e-2)


# ---- the trainer under bf16 + channels_last: a whole training, exact resume, final validation ----------------
class BF16ChannelsLastTrainer(ISLESChainTrainer):
    """Asks for the CUDA paths on the CPU through the trainer attributes; records what a step really ran."""

    precision, memory_format = "bf16", "channels_last"
    seen: list = []

    def on_train_start(self):
        super().on_train_start()
        weight = _a_3x3_kernel(self.network)
        self.network.segmentor.register_forward_hook(  # no extra forward pass: it would move BN statistics
            lambda module, args, out: BF16ChannelsLastTrainer.seen.append(
                (out.dtype, args[0].is_contiguous(memory_format=torch.channels_last),
                 weight.is_contiguous(memory_format=torch.channels_last), weight.dtype)))


def _a_3x3_kernel(module: torch.nn.Module) -> torch.Tensor:
    """A convolution weight whose memory format shows (1x1 kernels look contiguous either way)."""
    return next(p for p in module.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1)


def test_bf16_channels_last_training_resumes_exactly_and_validates(tiny_roots, monkeypatch, tmp_path):
    _, preprocessed, _ = tiny_roots
    write_plans_variant(preprocessed, "ISLESTinyShortPlans", num_epochs=2, iterations_per_epoch=2,
                        val_iterations_per_epoch=1)
    monkeypatch.setattr(BF16ChannelsLastTrainer, "save_every", 1)
    BF16ChannelsLastTrainer.seen = []
    folder = run_training(18, 0, BF16ChannelsLastTrainer, "ISLESTinyShortPlans", device="cpu")
    log = (folder / "training_log.txt").read_text()
    assert "device paths: bf16 autocast, channels_last, eager" in log
    assert BF16ChannelsLastTrainer.seen and all(s == (torch.bfloat16, True, True, torch.float32)
                                                for s in BF16ChannelsLastTrainer.seen), BF16ChannelsLastTrainer.seen[:2]
    uninterrupted = ckpt.load_checkpoint(folder / ckpt.FINAL)
    losses = uninterrupted["logs"]["train_total"]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses))), losses
    assert all(v.dtype == torch.float32 for v in uninterrupted["network_weights"].values() if v.is_floating_point())
    assert (folder / "validation" / "summary.json").is_file()  # final validation predicted under bf16 too

    monkeypatch.setenv("ISLES_results", str(tmp_path / "killed"))
    original = interrupt_after_epoch(monkeypatch, BF16ChannelsLastTrainer, 1)
    with pytest.raises(Interrupted):
        run_training(18, 0, BF16ChannelsLastTrainer, "ISLESTinyShortPlans", device="cpu")
    monkeypatch.setattr(BF16ChannelsLastTrainer, "on_epoch_end", original)
    killed = run_training(18, 0, BF16ChannelsLastTrainer, "ISLESTinyShortPlans", device="cpu",
                          continue_training=True)
    resumed = ckpt.load_checkpoint(killed / ckpt.FINAL)
    assert "resumed from checkpoint_latest.pth after epoch 1" in (killed / "training_log.txt").read_text()
    for part in ("network_weights", "loss_state"):
        for key, value in uninterrupted[part].items():
            assert torch.equal(value, resumed[part][key]), (part, key)
    assert resumed["logs"]["train_total"] == losses


def test_cli_flags_reach_the_trainer(monkeypatch):
    """-precision / -memory_format / --compile reduce-overhead on the CPU: the run says it falls back."""
    from isles_pipeline.cli.train import main, parser

    args = parser().parse_args(["18", "0", "--compile"])
    assert args.compile == "default"
    args = parser().parse_args(["18", "0", "--compile", "reduce-overhead", "-precision", "bf16"])
    assert args.compile == "reduce-overhead" and args.precision == "bf16"
    seen = {}

    def fake_run_training(*a):
        seen["args"] = a
        return Path("folder")

    monkeypatch.setattr("isles_pipeline.trainers.run.run_training", fake_run_training)
    assert main(["18", "0", "-device", "cpu", "-precision", "bf16", "-memory_format", "channels_last",
                 "--compile", "reduce-overhead"]) == 0
    assert seen["args"][-3:] == ("reduce-overhead", "bf16", "channels_last")


# ---- prediction under bf16 --------------------------------------------------------------------------------------
def test_fold_ensemble_predicts_under_bf16_and_channels_last(tmp_path, single_torch_thread):
    kwargs = preset("small")["chain"]
    paths = {}
    for fold in (0, 1):
        paths[fold] = tmp_path / f"fold_{fold}" / "checkpoint_final.pth"
        save_checkpoint(paths[fold], kwargs, fold, seed=fold)
    names = [f"frame_{i}" for i in range(11)] + ["CBF", "CBV", "MTT", "Tmax", "PWImax_o", "PWImax_p"]
    configuration = {"input_channels": names, "frame_channels": names[:11], "map_channels": names[11:]}
    data = torch.randn(5, 17, 32, 32, generator=torch.Generator().manual_seed(0)).half().numpy()
    fp32 = FoldEnsemble.from_checkpoints(paths, configuration, CPU).predict(data, batch_size=2)
    bf16_paths = resolve_acceleration(CPU, "bf16", "channels_last")
    ensemble = FoldEnsemble.from_checkpoints(paths, configuration, CPU, acceleration=bf16_paths, batch_size=2)
    assert all(_a_3x3_kernel(n).is_contiguous(memory_format=torch.channels_last) for n in ensemble.networks.values())
    bf16 = ensemble.predict(data, batch_size=2)
    assert bf16.probabilities.dtype == fp32.probabilities.dtype and bf16.probabilities.shape == (5, 32, 32)
    difference = abs(bf16.probabilities - fp32.probabilities)
    assert 0 < difference.max() < 0.05, difference.max()  # bf16 really ran (not identical), and is close


def test_predict_cli_passes_the_device_paths(monkeypatch, tmp_path):
    from isles_pipeline.cli import predict as cli
    from isles_pipeline.inference.predict import PredictionReport

    seen = {}

    def fake_predict_folder(*args, **kwargs):
        seen.update(kwargs)
        return PredictionReport()

    monkeypatch.setattr("isles_pipeline.inference.predict.predict_folder", fake_predict_folder)
    assert cli.main(["-i", str(tmp_path), "-o", str(tmp_path / "out"), "-d", "18", "--compile", "reduce-overhead",
                     "-precision", "bf16"]) == 0
    assert seen["acceleration"] == {"precision": "bf16", "compile_mode": "reduce-overhead"}
