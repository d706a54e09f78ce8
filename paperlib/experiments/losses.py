"""Losses shared by the experiments, each checked against a hand computation in the tests."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a target distribution per row: mean of -sum_k q_k log p_k."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    y: torch.Tensor,
    *,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, y).

    The T^2 factor keeps the soft-target gradients on the scale of the hard-label ones.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    t = temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=1), F.softmax(teacher_logits / t, dim=1), reduction="batchmean"
    )
    hard = F.cross_entropy(student_logits, y)
    return alpha * t * t * soft + (1.0 - alpha) * hard


def soft_target_cross_entropy(logits: torch.Tensor, target_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * cross-entropy of the softened targets softmax(target_logits / T) (Hinton et al.; used by LwF).

    Unlike `distillation_loss` it has no hard-label term and keeps the targets' entropy in its
    value (its gradients equal those of the KL form).
    """
    target = torch.softmax(target_logits / temperature, dim=1)
    return soft_cross_entropy(logits / temperature, target) * temperature**2


def confidence_loss(logits: torch.Tensor, weak_probs: torch.Tensor, alpha: float) -> torch.Tensor:
    """Burns et al.'s auxiliary confidence loss: (1 - a) CE(f, weak) + a CE(f, hardened f).

    The student's own argmax (detached) is the hardened target, so it may disagree with the weak labels.
    """
    hardened = logits.detach().argmax(1)
    return (1.0 - alpha) * soft_cross_entropy(logits, weak_probs) + alpha * F.cross_entropy(logits, hardened)
