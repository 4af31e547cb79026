"""Switchable normalisation (Luo et al. 2018, "Differentiable Learning-to-Normalize via Switchable
Normalization", arXiv:1806.10779), written for speed.

The segmentor of the seed normalises with a learned softmax mix of instance (IN), layer (LN) and batch (BN)
statistics. A naive implementation reduces the activation once per normaliser and lets autograd
differentiate every step, which costs about 5x a BatchNorm. Here:

- Forward reads the activation once for statistics: one reduction over H, W gives the per-sample,
  per-channel mean and mean of squares E[x^2] (on CUDA eager a `var_mean`, see `_moments`). LN statistics are their
  mean over channels, BN statistics their mean over the batch, and a group's variance is E[x^2] - mean^2
  (paper, Eq. 4-5). Everything after the reduction works on tiny (N, C) tensors; normalisation and the affine
  transform fold into one per-(N, C) scale and shift applied by one `addcmul`.
- Backward (eager mode) is written by hand: one reduction pass gives sum(g) and sum(g * x) per (N, C), the
  gradient through the (N, C) mixing graph is recomputed with autograd on those tiny tensors, and the input
  gradient is g * scale + b * x + a with per-(N, C) a, b: two fused elementwise kernels. Autograd's own
  `var_mean` backward alone took more time than a whole BatchNorm step.
- Under `torch.compile` the plain differentiable formulation is used instead and Inductor fuses it (the
  hand-written backward calls autograd inside backward, which Dynamo does not trace).

Statistics are reduced in float32 whatever the input dtype (bf16 autocast); the output keeps the input dtype.
Variances are the biased (population) ones, also for the running batch variance, so that evaluation mode
normalises exactly like training mode did on the same batch.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn


def _mix(mean_in: torch.Tensor, var_in: torch.Tensor, mean_weight: torch.Tensor, var_weight: torch.Tensor,
         weight: Optional[torch.Tensor], bias: Optional[torch.Tensor], mean_bn: Optional[torch.Tensor],
         var_bn: Optional[torch.Tensor], eps: float) -> tuple[torch.Tensor, ...]:
    """Per-(N, C) scale and shift from the instance statistics; also returns the batch statistics used.

    `mean_bn`/`var_bn` None: training, batch statistics come from this batch; else the running ones (1, C).
    """
    meansq_in = var_in + mean_in * mean_in
    mean_ln = mean_in.mean(dim=1, keepdim=True)  # (N, 1)
    var_ln = meansq_in.mean(dim=1, keepdim=True) - mean_ln * mean_ln
    if mean_bn is None or var_bn is None:
        mean_bn = mean_in.mean(dim=0, keepdim=True)  # (1, C)
        var_bn = meansq_in.mean(dim=0, keepdim=True) - mean_bn * mean_bn
    dtype = mean_in.dtype
    wm = torch.softmax(mean_weight.to(dtype), dim=0)
    wv = torch.softmax(var_weight.to(dtype), dim=0)
    mean = wm[0] * mean_in + wm[1] * mean_ln + wm[2] * mean_bn
    # E[x^2] - mean^2 can round slightly below zero; the clamp keeps rsqrt finite.
    var = (wv[0] * var_in + wv[1] * var_ln + wv[2] * var_bn).clamp_min(0.0)
    scale = torch.rsqrt(var + eps)
    if weight is not None:
        scale = scale * weight.to(dtype)
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias.to(dtype)
    return scale, shift, mean_bn, var_bn


def _moments(x: torch.Tensor, welford: Optional[bool] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-(N, C) biased variance and mean, in float32 at least (float64 stays float64).

    `welford` (default: on CUDA outside torch.compile) uses `var_mean`, one fused pass on a GPU; on a CPU it
    is a slow Welford loop (29 ms against 0.9 ms for the alternative on a (5, 64, 128, 128) tensor), so
    there we take the mean and the mean of squares (var = E[x^2] - mean^2, accumulated in the wide dtype
    without copying x), which Inductor also fuses into a single pass.
    """
    dtype = _stat_dtype(x)
    if welford is None:
        welford = x.is_cuda and not torch.compiler.is_compiling()
    if welford:
        return torch.var_mean(x.to(dtype), dim=(2, 3), correction=0)
    mean = x.mean(dim=(2, 3), dtype=dtype)
    meansq = torch.linalg.vector_norm(x, dim=(2, 3), dtype=dtype).square() / (x.shape[2] * x.shape[3])
    return (meansq - mean * mean).clamp_min(0.0), mean


def _stat_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.promote_types(x.dtype, torch.float32)


def _apply(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    n, c = scale.shape
    return torch.addcmul(shift.view(n, c, 1, 1), x, scale.view(n, c, 1, 1)).to(x.dtype)


class _FusedSwitchNorm(torch.autograd.Function):
    """Eager-mode SwitchNorm with a hand-fused backward over the large tensor (see module doc)."""

    @staticmethod
    def forward(ctx, x, mean_weight, var_weight, weight, bias, running_mean, running_var, eps):
        var_in, mean_in = _moments(x)
        scale, shift, mean_bn, var_bn = _mix(mean_in, var_in, mean_weight, var_weight, weight, bias,
                                             running_mean, running_var, eps)
        ctx.eps = eps
        ctx.save_for_backward(x, mean_in, var_in, scale, mean_weight, var_weight, weight, bias,
                              running_mean, running_var)
        # The batch statistics go out too (not differentiable) so the module can update its running ones
        # without a second pass over x.
        mean_bn, var_bn = mean_bn.squeeze(0), var_bn.squeeze(0)
        ctx.mark_non_differentiable(mean_bn, var_bn)
        return _apply(x, scale, shift), mean_bn, var_bn

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, _grad_mean_bn, _grad_var_bn):
        x, mean_in, var_in, scale, mean_weight, var_weight, weight, bias, running_mean, running_var = \
            ctx.saved_tensors
        n, c, h, w = x.shape
        dtype = _stat_dtype(x)
        g = grad_out.to(dtype)
        xf = x.to(dtype)
        grad_shift = g.sum(dim=(2, 3))  # dL/dshift per (N, C)
        grad_scale = (g * xf).sum(dim=(2, 3))  # dL/dscale per (N, C)

        # Gradient through the tiny (N, C) mixing graph, recomputed with autograd.
        small = [mean_in, var_in, mean_weight, var_weight, weight, bias]
        leaves = [t.detach().requires_grad_(True) if t is not None else None for t in small]
        with torch.enable_grad():
            s, t, _, _ = _mix(*leaves, running_mean, running_var, ctx.eps)
            wanted = [leaf for leaf in leaves if leaf is not None]
            grads = iter(torch.autograd.grad((s, t), wanted, (grad_scale, grad_shift), allow_unused=True))
        g_mean_in, g_var_in, g_mw, g_vw, g_w, g_b = [next(grads) if leaf is not None else None for leaf in leaves]
        g_mean_in = torch.zeros_like(mean_in) if g_mean_in is None else g_mean_in
        g_var_in = torch.zeros_like(var_in) if g_var_in is None else g_var_in

        # d mean_in / dx = 1/HW; d var_in / dx = 2 (x - mean_in) / HW  =>  grad_x = g*scale + b*x + a.
        hw = float(h * w)
        b = 2.0 * g_var_in / hw
        a = g_mean_in / hw - b * mean_in
        grad_x = torch.addcmul(torch.addcmul(a.view(n, c, 1, 1), xf, b.view(n, c, 1, 1)), g, scale.view(n, c, 1, 1))

        def cast(grad, like):
            return None if grad is None or like is None else grad.to(like.dtype)

        return (grad_x.to(x.dtype), cast(g_mw, mean_weight), cast(g_vw, var_weight), cast(g_w, weight),
                cast(g_b, bias), None, None, None)


class SwitchNorm2d(nn.Module):
    """Learned softmax mix of IN, LN and BN statistics; running BN statistics in evaluation mode.

    Args:
        num_features: channels C of the (N, C, H, W) input.
        eps: added to the mixed variance.
        momentum: running = (1 - momentum) * running + momentum * batch (PyTorch BatchNorm convention).
        affine: learn a per-channel gamma (init 1) and beta (init 0).
        fused_backward: use the hand-fused backward in eager mode (off: plain autograd, for reference).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 fused_backward: bool = True) -> None:
        super().__init__()
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = bool(affine)
        self.fused_backward = bool(fused_backward)
        if self.affine:
            self.weight = nn.Parameter(torch.ones(self.num_features))
            self.bias = nn.Parameter(torch.zeros(self.num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        # Importance logits of (IN, LN, BN), separate for means and variances (paper, Eq. 3); zeros = equal mix.
        self.mean_weight = nn.Parameter(torch.zeros(3))
        self.var_weight = nn.Parameter(torch.zeros(3))
        self.register_buffer("running_mean", torch.zeros(self.num_features))
        self.register_buffer("running_var", torch.ones(self.num_features))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"SwitchNorm2d expects (N, C, H, W), got shape {tuple(x.shape)}")
        if self.training:
            running_mean = running_var = None
        else:
            running_mean = self.running_mean.to(_stat_dtype(x)).unsqueeze(0)
            running_var = self.running_var.to(_stat_dtype(x)).unsqueeze(0)

        if self.fused_backward and not torch.compiler.is_compiling():
            out, mean_bn, var_bn = _FusedSwitchNorm.apply(x, self.mean_weight, self.var_weight, self.weight,
                                                          self.bias, running_mean, running_var, self.eps)
            if self.training:
                self._update_running(mean_bn, var_bn)
            return out

        var_in, mean_in = _moments(x)
        scale, shift, mean_bn, var_bn = _mix(mean_in, var_in, self.mean_weight, self.var_weight, self.weight,
                                             self.bias, running_mean, running_var, self.eps)
        if self.training:
            self._update_running(mean_bn.squeeze(0), var_bn.squeeze(0))
        return _apply(x, scale, shift)

    @torch.no_grad()
    def _update_running(self, mean_bn: torch.Tensor, var_bn: torch.Tensor) -> None:
        self.running_mean.lerp_(mean_bn.detach().to(self.running_mean.dtype), self.momentum)
        self.running_var.lerp_(var_bn.detach().clamp_min(0.0).to(self.running_var.dtype), self.momentum)
