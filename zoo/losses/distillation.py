"""Attention distillation (the zoo's voice-conversion headline): a student decoder learns where to attend from a
frozen teacher by the cross-entropy between their attention distributions, as in knowledge distillation
(Hinton et al. 2015) applied to alignments."""

from __future__ import annotations

from torch import Tensor

from zoo.sequence import lengths_to_mask


def attention_distillation_loss(
    p_teacher: Tensor, p_student: Tensor, dec_lengths: Tensor, enc_lengths: Tensor, eps: float = 1e-8
) -> Tensor:
    """CE(p_teacher, p_student) = -sum_n p_teacher[t, n] log p_student[t, n], summed over valid encoder steps n and
    averaged over the valid decoder steps t of the whole batch.

    p_teacher, p_student: (B, T_dec, T_enc) attention weights (rows sum to 1 over valid encoder steps);
    dec_lengths, enc_lengths: (B,). Padded cells of either axis never count; the teacher is treated as a
    constant target (detached). ``eps`` keeps log 0 finite where the student puts no mass. Returns a float32 scalar.
    """
    if p_teacher.shape != p_student.shape:
        raise ValueError(
            f"teacher and student alignments must have the same shape, but got {tuple(p_teacher.shape)} "
            f"and {tuple(p_student.shape)} (same reduction factor and encoder downsampling needed)"
        )
    if not eps > 0:
        raise ValueError(f"eps must be positive, but got {eps}")
    _, t_dec, t_enc = p_student.shape
    device = p_student.device
    dec = lengths_to_mask(dec_lengths.to(device), t_dec)  # (B, T_dec)
    cells = dec.unsqueeze(2) & lengths_to_mask(enc_lengths.to(device), t_enc).unsqueeze(1)  # (B, T_dec, T_enc)
    ce = -(p_teacher.detach().float() * (p_student.float() + eps).log())  # (B, T_dec, T_enc)
    return ce.masked_fill(~cells, 0.0).sum() / dec.sum().clamp(min=1)


__all__ = ["attention_distillation_loss"]
