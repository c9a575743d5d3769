"""Losses against independent float64 references written here, on fresh random inputs."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdplatform.train import losses

TEMPERATURES = [0.5, 1.0, 2.0, 4.0]


# --- independent float64 references (numpy, explicit formulas) -----------------------------------


def np_log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def np_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p ‖ q) per row, with 0 · log(0 / q) = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0).sum(-1)


def np_probs(logits: torch.Tensor, temperature: float) -> np.ndarray:
    return np.exp(np_log_softmax(logits.detach().double().numpy() / temperature))


def ref_loss(name: str, s: torch.Tensor, t: torch.Tensor, mask: torch.Tensor, T: float, beta=0.5) -> float:
    ps, pt = np_probs(s, T), np_probs(t, T)
    if name == "forward_kl":
        per = np_kl(pt, ps)
    elif name == "reverse_kl":
        per = np_kl(ps, pt)
    else:
        m = beta * pt + (1 - beta) * ps
        per = beta * np_kl(pt, m) + (1 - beta) * np_kl(ps, m)
    sel = per[mask.numpy()]
    return T**2 * float(sel.mean()) if sel.size else 0.0


def rand_case(shape=(3, 7), vocab=11, scale=3.0, seed=0, p_mask=0.6):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(*shape, vocab, generator=g) * scale
    t = torch.randn(*shape, vocab, generator=g) * scale
    mask = torch.rand(shape, generator=g) < p_mask
    mask.view(-1)[0] = True
    return s, t, mask


KD = {"forward_kl": losses.forward_kl, "reverse_kl": losses.reverse_kl, "jsd": losses.jsd}


# --- values against references --------------------------------------------------------------------


@pytest.mark.parametrize("T", TEMPERATURES)
@pytest.mark.parametrize("name", ["forward_kl", "reverse_kl"])
def test_kl_matches_float64_reference(name, T):
    for seed in range(3):
        s, t, mask = rand_case(seed=seed)
        got = KD[name](s, t, mask, T)
        assert got.dtype == torch.float32
        assert got.item() == pytest.approx(ref_loss(name, s, t, mask, T), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("T", TEMPERATURES)
@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
def test_jsd_matches_float64_reference(beta, T):
    for seed in range(3):
        s, t, mask = rand_case(seed=seed)
        got = losses.jsd(s, t, mask, T, beta)
        assert got.item() == pytest.approx(ref_loss("jsd", s, t, mask, T, beta), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("T", TEMPERATURES)
def test_forward_kl_matches_torch_kl_div(T):
    s, t, mask = rand_case(seed=7)
    # F.kl_div takes (input, target) = (log Q, log P) and returns KL(P ‖ Q): the reverse of the maths order.
    log_q, log_p = F.log_softmax(s / T, -1), F.log_softmax(t / T, -1)
    per = F.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1)
    want = T**2 * per[mask].mean()
    torch.testing.assert_close(losses.forward_kl(s, t, mask, T), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("T", [1.0, 2.0])
def test_forward_kl_gradient_is_t_times_prob_difference(T):
    """d/ds [T² KL(P_t ‖ P_s)] = T (P_s − P_t) per counted position, divided by the count; 0 elsewhere."""
    s, t, mask = rand_case(seed=3)
    s.requires_grad_(True)
    (grad,) = torch.autograd.grad(losses.forward_kl(s, t, mask, T), s)
    want = T * (np_probs(s, T) - np_probs(t, T)) * mask.numpy()[..., None] / mask.sum().item()
    np.testing.assert_allclose(grad.numpy(), want, rtol=1e-4, atol=1e-7)


# --- identities and degenerate inputs -------------------------------------------------------------


@pytest.mark.parametrize("name", list(KD))
def test_equal_inputs_give_zero(name):
    s, _, mask = rand_case(seed=1)
    assert KD[name](s, s.clone(), mask, 2.0).item() == pytest.approx(0.0, abs=1e-6)


def test_different_inputs_give_positive_loss():
    s, t, mask = rand_case(seed=2)
    for name in KD:
        assert KD[name](s, t, mask, 1.0).item() > 1e-3


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_jsd_vanishes_at_beta_edges(beta):
    """beta = 0 makes M = P_s and beta = 1 makes M = P_t; the surviving term is KL(P ‖ P) = 0."""
    s, t, mask = rand_case(seed=4)
    s[..., :3] = float("-inf")  # a KL(P_t ‖ P_s) term would be infinite here; it must not leak as NaN
    s.requires_grad_(True)
    out = losses.jsd(s, t, mask, 1.0, beta)
    (grad,) = torch.autograd.grad(out, s)
    assert out.item() == pytest.approx(0.0, abs=1e-6)
    assert torch.isfinite(grad).all()
    assert grad.abs().max().item() < 1e-6


@pytest.mark.parametrize("chunk_size", [None, 2])
@pytest.mark.parametrize("name", [*KD, "cross_entropy"])
def test_empty_mask_returns_differentiable_zero(name, chunk_size):
    s, t, _ = rand_case(seed=5)
    s.requires_grad_(True)
    t.requires_grad_(True)
    mask = torch.zeros(s.shape[:-1], dtype=torch.bool)
    if name == "cross_entropy":
        out = losses.cross_entropy(s, torch.zeros(mask.shape, dtype=torch.long), mask, chunk_size=chunk_size)
    else:
        out = KD[name](s, t, mask, 2.0, chunk_size=chunk_size)
    assert out.item() == 0.0
    assert out.grad_fn is not None
    out.backward()
    assert s.grad is not None and torch.equal(s.grad, torch.zeros_like(s))


def test_unmasked_garbage_does_not_leak():
    s, t, mask = rand_case(seed=6)
    s2, t2 = s.clone(), t.clone()
    s2[~mask] = float("nan")
    t2[~mask] = float("-inf")
    s2.requires_grad_(True)
    for name in KD:
        out = KD[name](s2, t2, mask, 1.0)
        assert out.item() == pytest.approx(KD[name](s, t, mask, 1.0).item(), rel=1e-6)
        (grad,) = torch.autograd.grad(out, s2)
        assert torch.isfinite(grad).all()


@pytest.mark.parametrize("chunk_size", [None, 3])
def test_minus_inf_logits_are_safe(chunk_size):
    """Banned tokens (-inf in both) are simply absent; -inf in the teacher only is P_t = 0 there."""
    s, t, mask = rand_case(seed=8, vocab=16)
    s[..., :4] = float("-inf")
    t[..., :4] = float("-inf")
    t[..., 4:6] = float("-inf")
    s.requires_grad_(True)
    for name in KD:
        out = KD[name](s, t, mask, 2.0, chunk_size=chunk_size)
        (grad,) = torch.autograd.grad(out, s)
        assert torch.isfinite(grad).all(), name
        if name == "reverse_kl":  # P_s > 0 where P_t = 0: genuinely infinite, but never NaN
            assert out.item() == float("inf")
            continue
        assert out.item() == pytest.approx(ref_loss(name, s, t, mask, 2.0), rel=1e-5), name


@pytest.mark.parametrize("name", list(KD))
def test_bf16_inputs_are_finite_and_close_to_fp32(name):
    s, t, mask = rand_case(seed=9, vocab=512)
    s16, t16 = s.bfloat16(), t.bfloat16()
    got = KD[name](s16, t16, mask, 2.0)
    assert got.dtype == torch.float32 and torch.isfinite(got)
    # Computed in float32 inside, so it equals the fp32 loss of the rounded logits ...
    torch.testing.assert_close(got, KD[name](s16.float(), t16.float(), mask, 2.0), rtol=1e-6, atol=1e-7)
    # ... and rounding the logits to bf16 only perturbs the loss slightly.
    assert got.item() == pytest.approx(KD[name](s, t, mask, 2.0).item(), rel=3e-2)
    huge = KD[name](s16 * 300, t16 * 300, mask, 1.0)
    assert torch.isfinite(huge)


# --- chunking -------------------------------------------------------------------------------------


def _value_and_grads(fn, s, t, **kw):
    s = s.detach().requires_grad_(True)
    t = t.detach().requires_grad_(True)
    out = fn(s, t, **kw)
    gs, gt = torch.autograd.grad(out, (s, t))
    return out, gs, gt


@pytest.mark.parametrize("name", list(KD))
def test_chunked_equals_unchunked_at_50k_vocab(name):
    s, t, mask = rand_case(shape=(2, 5), vocab=50_000, seed=10, p_mask=0.7)
    assert mask.sum() > 3
    ref = _value_and_grads(lambda a, b, **kw: KD[name](a, b, mask, 2.0, **kw), s, t)
    got = _value_and_grads(lambda a, b, **kw: KD[name](a, b, mask, 2.0, **kw), s, t, chunk_size=3)
    for r, g in zip(ref, got, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-9)
    assert ref[1].abs().max() > 0 and ref[2].abs().max() > 0


@pytest.mark.parametrize("chunk_size", [1, 2, 5, 1000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_chunked_equals_unchunked_small(chunk_size, dtype):
    s, t, mask = rand_case(seed=11)
    s, t = s.to(dtype), t.to(dtype)
    for name in KD:
        ref = _value_and_grads(lambda a, b, n=name: KD[n](a, b, mask, 1.5), s, t)
        got = _value_and_grads(lambda a, b, n=name: KD[n](a, b, mask, 1.5, chunk_size=chunk_size), s, t)
        for r, g in zip(ref, got, strict=True):
            assert g.dtype == r.dtype
            # bf16 gradients may differ by one bf16 rounding step (see _ChunkedSum).
            tol = {} if dtype == torch.bfloat16 else {"rtol": 1e-5, "atol": 1e-7}
            torch.testing.assert_close(g, r, **tol)


def test_chunked_values_without_grad():
    s, t, mask = rand_case(seed=12)
    with torch.no_grad():
        for name in KD:
            torch.testing.assert_close(KD[name](s, t, mask, 1.0, chunk_size=2), KD[name](s, t, mask, 1.0))


def _graph_bytes(fn) -> int:
    """Bytes of tensors that the autograd graph of ``fn()`` still holds for backward."""
    saved = []

    def pack(x):
        saved.append(weakref.ref(x))
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        out = fn()
    storages = {}
    for ref in saved:
        x = ref()
        if x is not None and x.numel() > 1:
            storages[x.untyped_storage().data_ptr()] = x.untyped_storage().nbytes()
    del out
    return sum(storages.values())


def test_chunking_keeps_one_gradient_buffer_not_all_intermediates():
    s, t, mask = rand_case(shape=(2, 8), vocab=4096, seed=13, p_mask=1.0)
    s.requires_grad_(True)
    one = s.numel() * s.element_size()
    unchunked = _graph_bytes(lambda: losses.forward_kl(s, t, mask, 2.0))
    chunked = _graph_bytes(lambda: losses.forward_kl(s, t, mask, 2.0, chunk_size=4))
    assert unchunked >= 2 * one
    assert chunked <= 1.1 * one


# --- vocabulary widths ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(KD))
def test_padded_widths_slice_to_shared_vocab(name):
    g = torch.Generator().manual_seed(14)
    s = torch.randn(2, 6, 64 + 7, generator=g) * 3
    t = torch.randn(2, 6, 64 + 20, generator=g) * 3
    mask = torch.rand(2, 6, generator=g) < 0.7
    mask[0, 0] = True
    got = KD[name](s, t, mask, 2.0, vocab_size=64)
    assert got.item() == pytest.approx(ref_loss(name, s[..., :64], t[..., :64], mask, 2.0), rel=1e-5)
    default = KD[name](s, t, mask, 2.0)  # the narrower width (71) by default
    assert default.item() == pytest.approx(ref_loss(name, s[..., :71], t[..., :71], mask, 2.0), rel=1e-5)
    chunked = KD[name](s, t, mask, 2.0, vocab_size=64, chunk_size=2)
    torch.testing.assert_close(chunked, got)
    with pytest.raises(ValueError, match="vocab_size"):
        KD[name](s, t, mask, 2.0, vocab_size=72)


# --- cross entropy --------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [None, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cross_entropy_matches_torch(chunk_size, dtype):
    s, _, mask = rand_case(seed=15, vocab=50)
    labels = torch.randint(0, 50, mask.shape, generator=torch.Generator().manual_seed(0))
    labels[~mask] = -100  # ignored positions may hold anything
    x = s.to(dtype).requires_grad_(True)
    got = losses.cross_entropy(x, labels, mask, chunk_size=chunk_size)
    want = F.cross_entropy(s.to(dtype).float()[mask], labels[mask])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    (grad,) = torch.autograd.grad(got, x)
    y = s.to(dtype).float().requires_grad_(True)
    (want_grad,) = torch.autograd.grad(F.cross_entropy(y[mask], labels[mask]), y)
    rtol = 1e-2 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(grad.float(), want_grad, rtol=rtol, atol=1e-6)


# --- dispatch and validation ----------------------------------------------------------------------


def test_kd_loss_dispatches_by_name():
    s, t, mask = rand_case(seed=16)
    for name, fn in KD.items():
        assert torch.equal(losses.kd_loss(name, s, t, mask, 2.0), fn(s, t, mask, 2.0))
    skewed = losses.kd_loss("jsd", s, t, mask, 2.0, beta=0.2)
    torch.testing.assert_close(skewed, losses.jsd(s, t, mask, 2.0, 0.2))
    assert skewed.item() != losses.jsd(s, t, mask, 2.0).item()


def test_kd_loss_unknown_name_lists_choices():
    s, t, mask = rand_case(seed=17)
    with pytest.raises(ValueError, match="forward_kl, jsd, reverse_kl") as err:
        losses.kd_loss("kl", s, t, mask, 1.0)
    assert "'kl'" in str(err.value)


def test_invalid_arguments_are_rejected():
    s, t, mask = rand_case(seed=18)
    with pytest.raises(ValueError, match="mask"):
        losses.forward_kl(s, t, mask[:, :-1], 1.0)
    with pytest.raises(TypeError, match="bool"):
        losses.forward_kl(s, t, mask.long(), 1.0)
    with pytest.raises(ValueError, match="temperature"):
        losses.reverse_kl(s, t, mask, 0.0)
    with pytest.raises(ValueError, match="beta"):
        losses.jsd(s, t, mask, 1.0, beta=1.5)
    with pytest.raises(ValueError, match="chunk_size"):
        losses.forward_kl(s, t, mask, 1.0, chunk_size=0)
