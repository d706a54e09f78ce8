"""Low-rank adaptation (LoRA) as a small module, and the spectral measures of a weight update.

A `LoRALinear` wraps a frozen `nn.Linear` with weight W0 and adds a trainable low-rank product:

    y = x W0^T + b + (alpha / r) * x A^T B^T,   A: (r, in), B: (out, r)

A is drawn like a linear layer's weight (Kaiming-uniform, from a seed) and B starts at zero, so
at initialisation the wrapped layer computes exactly what the base layer computes (Hu et al. 2021).
The update it stands for is Delta W = (alpha / r) B A; `merge_lora` folds it into the weight.

The effective rank of a matrix is Roy & Vetterli's (2007): with singular values s_i and
p_i = s_i / sum_j s_j, erank = exp(-sum_i p_i log p_i), which is k for k equal non-zero singular
values and between 1 and k otherwise. `energy_rank` is the number of singular values needed to
explain a share (90% by default) of the squared Frobenius norm ("the rank needed to explain 90% of
the variance", Biderman et al. 2024).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Iterable

import torch
from torch import nn

# the linear layers of a TinyLM block that LoRA adapts: attention in and out, MLP in and out
TARGETS = ("attn.qkv", "attn.proj", "mlp.0", "mlp.2")
TARGET_LABELS = {"attn.qkv": "attention in (qkv)", "attn.proj": "attention out", "mlp.0": "MLP in", "mlp.2": "MLP out"}


class LoRALinear(nn.Module):
    """A frozen linear layer plus a scaled low-rank update (alpha / rank) * B A with B zero at start."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, *, seed: int):
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.rank = int(rank)
        self.alpha = float(alpha)
        self.scale = self.alpha / self.rank
        w = base.weight
        gen = torch.Generator().manual_seed(seed)
        # nn.Linear's default weight init (Kaiming-uniform with a = sqrt(5)): U(-1/sqrt(in), 1/sqrt(in))
        bound = 1.0 / math.sqrt(base.in_features)
        a = (torch.rand((self.rank, base.in_features), generator=gen) * 2 - 1) * bound
        self.A = nn.Parameter(a.to(w.device, w.dtype))
        self.B = nn.Parameter(torch.zeros((base.out_features, self.rank), device=w.device, dtype=w.dtype))

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * ((x @ self.A.t()) @ self.B.t())

    def delta_weight(self) -> torch.Tensor:
        """The update the adapter stands for, (alpha / rank) B A, shaped like the base weight."""
        return self.scale * (self.B @ self.A)

    def merged(self) -> nn.Linear:
        """A plain linear layer with weight W0 + (alpha / rank) B A and the base bias."""
        out = nn.Linear(self.in_features, self.out_features, bias=self.base.bias is not None)
        out = out.to(self.base.weight.device, self.base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.delta_weight())
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def _replace(model: nn.Module, path: str, module: nn.Module) -> None:
    head, _, last = path.rpartition(".")
    model.get_submodule(head)._modules[last] = module


def target_paths(model: nn.Module, targets: Iterable[str] = TARGETS) -> list[str]:
    """Names of the linear layers to adapt: every module whose name ends with one of `targets`."""
    targets = tuple(targets)
    paths = [name for name, m in model.named_modules()
             if isinstance(m, (nn.Linear, LoRALinear)) and any(name.endswith(t) for t in targets)]
    if not paths:
        raise ValueError(f"no linear layer of the model ends with any of {targets}")
    return paths


def add_lora(model: nn.Module, rank: int, alpha: float, *, seed: int, targets: Iterable[str] = TARGETS) -> nn.Module:
    """A copy of `model` with every target linear layer wrapped in a `LoRALinear` and every other
    parameter frozen: only the adapters' A and B train. Layer i's A is drawn from seed + i."""
    out = copy.deepcopy(model)
    for p in out.parameters():
        p.requires_grad_(False)
    for i, path in enumerate(target_paths(out, targets)):
        base = out.get_submodule(path)
        _replace(out, path, LoRALinear(base, rank, alpha, seed=seed + i))
    return out


def lora_modules(model: nn.Module) -> dict[str, LoRALinear]:
    """The adapters of a model by the name of the layer they wrap."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def merge_lora(model: nn.Module) -> nn.Module:
    """A copy of `model` with each adapter folded into its layer's weight (plain `nn.Linear` again)."""
    out = copy.deepcopy(model)
    for path, m in lora_modules(out).items():
        _replace(out, path, m.merged())
    return out


def target_weights(model: nn.Module, targets: Iterable[str] = TARGETS) -> dict[str, torch.Tensor]:
    """The current weight of every target layer (the merged weight for an adapted layer), detached."""
    out = {}
    for path in target_paths(model, targets):
        m = model.get_submodule(path)
        w = m.base.weight + m.delta_weight() if isinstance(m, LoRALinear) else m.weight
        out[path] = w.detach().clone()
    return out


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameters that receive gradients."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def lora_parameter_count(shapes: Iterable[tuple[int, int]], rank: int) -> int:
    """Trainable numbers of rank-`rank` adapters on layers of shape (out, in): rank * (in + out) each."""
    return sum(rank * (o + i) for o, i in shapes)


# --------------------------------------------------------------------------- spectra


def singular_values(matrix: torch.Tensor) -> torch.Tensor:
    """Singular values, largest first (float64, on the CPU)."""
    return torch.linalg.svdvals(matrix.detach().to("cpu", torch.float64))


def effective_rank(matrix: torch.Tensor | None = None, *, values: torch.Tensor | None = None) -> float:
    """Roy & Vetterli's effective rank exp(H(p)), p_i = s_i / sum(s): 1 for a rank-one matrix,
    k for k equal singular values; 0 for the zero matrix. Pass a matrix or its singular values."""
    s = singular_values(matrix) if values is None else values.to(torch.float64)
    total = float(s.sum())
    if total <= 0.0:
        return 0.0
    p = s[s > 0] / total
    return float(torch.exp(-(p * torch.log(p)).sum()))


def energy_rank(matrix: torch.Tensor | None = None, *, values: torch.Tensor | None = None, share: float = 0.9) -> int:
    """The smallest k whose top-k singular values hold at least `share` of sum(s^2); 0 for the zero matrix."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share}")
    s = singular_values(matrix) if values is None else values.to(torch.float64)
    energy = s ** 2
    total = float(energy.sum())
    if total <= 0.0:
        return 0
    cumulative = torch.cumsum(energy, 0) / total
    return int(torch.searchsorted(cumulative, torch.tensor(share, dtype=torch.float64) - 1e-12).item()) + 1


def gaussian_effective_rank(shape: tuple[int, int], *, seed: int = 0) -> float:
    """The effective rank of one i.i.d. Gaussian matrix of `shape` (a reference: what noise looks like)."""
    gen = torch.Generator().manual_seed(seed)
    return effective_rank(torch.randn(shape, generator=gen, dtype=torch.float64))


__all__ = [
    "TARGETS",
    "TARGET_LABELS",
    "LoRALinear",
    "add_lora",
    "effective_rank",
    "energy_rank",
    "gaussian_effective_rank",
    "lora_modules",
    "lora_parameter_count",
    "merge_lora",
    "singular_values",
    "target_paths",
    "target_weights",
    "trainable_parameters",
]
