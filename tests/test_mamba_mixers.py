"""Mamba, ViM and DBM mixers: published sizes and key names, and padding that never leaks."""
import dataclasses

import pytest
import torch

from detect.layers import mamba
from detect.layers.mamba import DBM, MIXERS, Mamba, MambaConfig, ViM, reversal, reverse_within


def _count(m):
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_match_the_published_modules():
    assert _count(DBM(MambaConfig(512))) == 1_633_792            # ActionMamba DBM, d 512
    assert _count(ViM(MambaConfig(512, expand=2))) == 1_816_576  # ActionMamba ViM, d 512
    assert _count(Mamba(MambaConfig(384, expand=2))) == 963_840   # stock mamba_ssm.Mamba
    assert _count(ViM(MambaConfig(384, expand=2))) == 1_042_944   # Vim-v2


def test_vim_state_dict_with_published_key_names_loads_strictly():
    d, di, n, rank = 384, 768, 16, 24
    shapes = {"in_proj.weight": (2 * di, d), "out_proj.weight": (d, di)}
    for s in ("", "_b"):
        shapes |= {f"conv1d{s}.weight": (di, 1, 4), f"conv1d{s}.bias": (di,), f"x_proj{s}.weight": (rank + 2 * n, di),
                   f"dt_proj{s}.weight": (di, rank), f"dt_proj{s}.bias": (di,), f"D{s}": (di,)}
    shapes |= {"A_log": (di, n), "A_b_log": (di, n)}
    state = {k: torch.randn(v) for k, v in shapes.items()}
    model = ViM(MambaConfig(d, expand=2))
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.A_b_log, state["A_b_log"])


def test_no_weight_decay_flags():
    model = ViM(MambaConfig(32, expand=2))
    flagged = {name for name, p in model.named_parameters() if getattr(p, "_no_weight_decay", False)}
    assert flagged == {"A_log", "D", "A_b_log", "D_b"}


def test_reverse_within_valid_length():
    x = torch.arange(10.0).reshape(1, 1, 10).repeat(2, 1, 1)
    index = reversal(torch.tensor([10, 6]), 10)
    out = reverse_within(x, index)
    assert out[0, 0].tolist() == list(range(9, -1, -1))
    assert out[1, 0].tolist() == [5, 4, 3, 2, 1, 0, 6, 7, 8, 9]
    torch.testing.assert_close(reverse_within(out, index), x)
    assert reversal(None, 10) is None and torch.equal(reverse_within(x, None), x.flip(-1))


@pytest.mark.parametrize("name,expand", [("mamba", 1), ("vim", 2), ("dbm", 1)])
def test_padding_never_changes_valid_outputs(name, expand):
    torch.manual_seed(0)
    mixer = MIXERS[name](MambaConfig(16, expand=expand)).double()
    lengths = [23, 15, 6]
    x = torch.randn(3, 23, 16, dtype=torch.float64)
    x[1, 15:] = 100.0  # garbage in the padding: it must not matter
    x[2, 6:] = -50.0
    mask = torch.arange(23)[None] < torch.tensor(lengths)[:, None]
    batched = mixer(x, mask)
    for i, n in enumerate(lengths):
        alone = mixer(x[i:i + 1, :n])
        torch.testing.assert_close(batched[i, :n], alone[0], rtol=1e-10, atol=1e-10)


def test_a_plain_flip_would_leak_padding():
    """The check above has teeth: flipping the padded tensor (the public code) changes outputs."""
    torch.manual_seed(0)
    mixer = DBM(MambaConfig(16)).double()
    x = torch.randn(1, 20, 16, dtype=torch.float64)
    mask = torch.arange(20)[None] < 12
    lengths = torch.tensor([20])  # as if every step were valid: the backward scan starts in the padding
    xz = mixer.in_proj(x * mask[..., None]).transpose(1, 2)
    _, xz_b = xz.chunk(2, dim=1)
    leaky = reverse_within(xz_b, reversal(lengths, 20))[..., :12]
    right = reverse_within(xz_b, reversal(torch.tensor([12]), 20))[..., :12]
    assert not torch.allclose(leaky, right)


def test_vim_divide_out_halves_the_sum():
    torch.manual_seed(0)
    summed = ViM(MambaConfig(8, expand=2))
    averaged = ViM(MambaConfig(8, expand=2), divide_out=True)
    averaged.load_state_dict(summed.state_dict())
    x = torch.randn(2, 9, 8)
    torch.testing.assert_close(averaged(x) * 2, summed(x), rtol=1e-5, atol=1e-6)


def test_gradients_flow_to_every_parameter():
    model = DBM(MambaConfig(8))
    model(torch.randn(2, 7, 8)).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_vim_single_fused_scan_equals_two_separate_directions():
    """ViM stacks both directions' channels into one scan; check against two plain Mamba passes."""
    torch.manual_seed(0)
    cfg = MambaConfig(12, expand=2)
    vim = ViM(cfg).double()
    forward, backward = Mamba(cfg).double(), Mamba(cfg).double()
    state = vim.state_dict()
    forward.load_state_dict({k: v for k, v in state.items() if not (k.endswith("_b") or "_b." in k or k == "A_b_log")})
    backward.load_state_dict({"in_proj.weight": state["in_proj.weight"], "out_proj.weight": state["out_proj.weight"],
                              "A_log": state["A_b_log"], "D": state["D_b"],
                              **{k.replace("_b.", "."): v for k, v in state.items() if "_b." in k}})
    x = torch.randn(2, 11, 12, dtype=torch.float64)
    # out_proj is linear: out_proj(y_f + flip(y_b)) = out_proj(y_f) + out_proj(flip(y_b))
    expected = forward(x) + backward(x.flip(1)).flip(1)
    torch.testing.assert_close(vim(x), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name,expand", [("vim", 2), ("dbm", 1)])
def test_recomputing_around_the_scan_gives_the_same_gradients_without_scanning_again(name, expand, monkeypatch):
    """Recompute (the default in training) against saving everything: the same outputs and
    gradients (parameters and input); the conv and projections run twice, the scan once each way."""
    from detect.ops.selective_scan import ChunkedScan

    torch.manual_seed(0)
    mixer = MIXERS[name](MambaConfig(8, expand=expand)).double()
    x = torch.randn(2, 9, 8, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(9)[None] < torch.tensor([9, 5])[:, None]

    calls, conv_and_scan = [], mamba._conv_and_scan
    monkeypatch.setattr(mamba, "_conv_and_scan", lambda *a: calls.append("region") or conv_and_scan(*a))
    for way in ("forward", "backward"):
        original = getattr(ChunkedScan, way)
        monkeypatch.setattr(ChunkedScan, way,
                            staticmethod(lambda *a, way=way, f=original, **k: calls.append(way) or f(*a, **k)))

    def grads(recompute: bool):
        mixer.cfg = dataclasses.replace(mixer.cfg, recompute=recompute)
        mixer.zero_grad()
        x.grad = None
        calls.clear()
        out = mixer(x, mask)
        out.square().sum().backward()
        assert calls.count("region") == (2 if recompute else 1)
        assert calls.count("forward") == 1 and calls.count("backward") == 1, calls
        return out.detach(), [x.grad.clone()] + [p.grad.clone() for p in mixer.parameters()]

    saved, recomputed = grads(False), grads(True)
    torch.testing.assert_close(recomputed[0], saved[0], rtol=0, atol=0)
    for a, b in zip(recomputed[1], saved[1]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def _plain_branch(m, suffix: str, xz: torch.Tensor) -> torch.Tensor:
    """One direction of Mamba's inner function written out on one sequence ``xz (L, 2 di)``:
    causal conv + SiLU, projections, the scan oracle, the gate; ``(L, di)``."""
    from detect.ops.selective_scan import selective_scan_ref

    cfg = m.cfg
    x, z = xz.T[None].chunk(2, dim=1)                                      # (1, di, L)
    conv = getattr(m, f"conv1d{suffix}")
    x = torch.nn.functional.silu(torch.nn.functional.conv1d(x, conv.weight, conv.bias, padding=cfg.d_conv - 1,
                                                             groups=cfg.d_inner)[..., :x.shape[-1]])
    dt, B, C = torch.split(x[0].T @ getattr(m, f"x_proj{suffix}").weight.T, [cfg.rank, cfg.d_state, cfg.d_state], -1)
    delta = (dt @ getattr(m, f"dt_proj{suffix}").weight.T).T[None]
    A = -torch.exp(m.A_b_log if suffix else m.A_log)
    y = selective_scan_ref(x, delta, A, B.T[None], C.T[None], getattr(m, f"D{suffix}"), z=z,
                           delta_bias=getattr(m, f"dt_proj{suffix}").bias, delta_softplus=True)
    return y[0].T


def _plain_mixer(m, x: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """Each sequence alone, its valid steps only, reversed by slicing: the mixers' definitions."""
    out = torch.zeros(*x.shape[:2], m.out_proj.out_features, dtype=x.dtype)
    for i, n in enumerate(lengths):
        xz = x[i, :n] @ m.in_proj.weight.T
        if isinstance(m, DBM):
            xz_f, xz_b = xz.chunk(2, dim=1)
            y = torch.cat([_plain_branch(m, "", xz_f), _plain_branch(m, "", xz_b.flip(0)).flip(0)], 1)
        elif isinstance(m, ViM):
            y = _plain_branch(m, "", xz) + _plain_branch(m, "_b", xz.flip(0)).flip(0)
        else:
            y = _plain_branch(m, "", xz)
        out[i, :n] = y @ m.out_proj.weight.T
    return out


@pytest.mark.parametrize("name,expand", [("mamba", 1), ("vim", 2), ("dbm", 1)])
def test_mixers_equal_their_definition_written_out(name, expand):
    """Outputs and gradients in float64 against one sequence at a time through the plain formulas
    (no stacking of directions, batches or channels, no storage tricks)."""
    torch.manual_seed(0)
    mixer = MIXERS[name](MambaConfig(8, expand=expand)).double()
    lengths = [9, 5, 7]
    x = torch.randn(3, 9, 8, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(9)[None] < torch.tensor(lengths)[:, None]
    weights = torch.randn(3, 9, 8, dtype=torch.float64) * mask[..., None]
    ours = mixer(x, mask)
    grads = torch.autograd.grad((ours * weights).sum(), [x, *mixer.parameters()])
    plain = _plain_mixer(mixer, x, lengths)
    plain_grads = torch.autograd.grad((plain * weights).sum(), [x, *mixer.parameters()])
    torch.testing.assert_close(ours * mask[..., None], plain, rtol=1e-10, atol=1e-10)
    for a, b in zip(grads, plain_grads):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)   # the torch scan's backward: exp of chunk sums


def test_projections_and_joins_keep_the_scan_storage():
    """Projected and joined tensors are stored as rows (C, Bt, L) with time contiguous, so the
    conv and the scan read them as they are and ``to_rows`` is a view, not a copy."""
    from detect.layers.mamba import cat_rows, project_in, to_rows

    linear = torch.nn.Linear(6, 10, bias=False)
    x = torch.randn(3, 7, 6)
    xz = project_in(linear, x)
    torch.testing.assert_close(xz, linear(x).transpose(1, 2))
    a, b = xz.chunk(2, dim=1)
    for joined, expected in ((cat_rows([a, reverse_within(b, None)], 1), torch.cat([a, b.flip(-1)], 1)),
                             (cat_rows([a, reverse_within(b, reversal(torch.tensor([7, 3, 5]), 7))], 0), None)):
        assert joined.stride(-1) == 1
        assert to_rows(joined).data_ptr() == joined.data_ptr() and to_rows(joined)._base is not None
        if expected is not None:
            torch.testing.assert_close(joined, expected)
    both = cat_rows([a, b], 0)
    torch.testing.assert_close(both, torch.cat([a, b], 0))
