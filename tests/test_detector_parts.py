"""Detector pieces against hand-made cases and straightforward references."""
import math

import pytest
import torch
import torch.nn.functional as F
import torchvision

from detect.models import create_model, model_config
from detect.layers.masked import LayerNorm
from detect.tasks.segments.losses import diou_loss_1d, sigmoid_focal_loss
from detect.tasks.segments.postprocess import fuse_class_scores, segment_iou, soft_nms, vote_boundaries
from detect.tasks.segments.targets import assign_targets
from detect.outputs import make_points


def test_points_and_ranges():
    pts = make_points([8, 4], [1, 2], [(0, 4), (4, 1e4)])
    assert pts[0][:, 0].tolist() == list(range(8)) and pts[1][:, 0].tolist() == [0, 2, 4, 6]
    assert pts[1][0, 1:].tolist() == [4, 1e4, 2]


def test_a_detectors_points_are_make_points_for_each_input_length():
    """The detector keeps rows for the longest input so far and hands out views: a shorter input
    after a longer one, and a longer one after that, get exactly ``make_points`` for their length."""
    model = create_model("actionformer", num_classes=3, head_dim=8,
                         backbone={"input_dim": 4, "embd_dim": 8, "n_head": 2, "max_seq_len": 64}).eval()
    ranges = list(model.cfg.regression_range)
    with torch.no_grad():
        for length in (64, 32, 128):
            out = model(torch.randn(1, 4, length), torch.ones(1, length, dtype=torch.bool))
            expected = make_points([length // s for s in model.strides], model.strides, ranges)
            assert all(torch.equal(a, b) for a, b in zip(out.points, expected)), length
    assert model._point_rows[0].shape[0] == 128


def test_attention_after_another_length_equals_a_fresh_model():
    """Nothing kept from a call at one length (attention band masks, point rows) leaks into another:
    a model that ran at 64 then 32 steps gives what a fresh copy gives at 32, and at 64 again what it gave."""
    import copy

    torch.manual_seed(0)
    model = create_model("actionformer", num_classes=3, head_dim=8,
                         backbone={"input_dim": 4, "embd_dim": 8, "n_head": 2, "max_seq_len": 64}).eval()
    fresh = copy.deepcopy(model)
    x = torch.randn(1, 4, 64)
    with torch.no_grad():
        first = model(x, torch.ones(1, 64, dtype=torch.bool)).cls_logits
        short = model(x[..., :32], torch.ones(1, 32, dtype=torch.bool)).cls_logits
        expected = fresh(x[..., :32], torch.ones(1, 32, dtype=torch.bool)).cls_logits
        again = model(x, torch.ones(1, 64, dtype=torch.bool)).cls_logits
    assert all(torch.equal(a, b) for a, b in zip(short, expected))
    assert all(torch.equal(a, b) for a, b in zip(again, first))


def test_assignment_hand_made():
    # Two levels: stride 1 for reach <= 4, stride 2 beyond.
    points = torch.cat(make_points([16, 8], [1, 2], [(0, 4), (4, 1e4)]))
    segments = torch.tensor([[2.0, 6.0], [8.0, 16.0]])
    labels = torch.tensor([1, 2])
    cls, reg = assign_targets(points, segments, labels, num_classes=3, center_radius=1.5)
    pos = {(int(points[i, 0]), int(points[i, 3])): (cls[i].argmax().item(), reg[i].tolist())
           for i in torch.nonzero(cls.sum(1)).flatten()}
    # [2, 6] (centre 4): level 0 centre region (2.5, 5.5) -> t = 3, 4, 5, reach <= 4; at level 1
    # the region (2, 6) holds t = 4 only, whose reach 2 is below that level's range [4, 1e4].
    # [8, 16] (centre 12): level 0 region (10.5, 13.5) -> t = 11, 12, 13, but only t = 12 has
    # reach <= 4 (ranges are inclusive, so 4 counts at both levels); level 1 region (9, 15) ->
    # t = 10, 12, 14, offsets in units of stride 2.
    assert pos == {(3, 1): (1, [1.0, 3.0]), (4, 1): (1, [2.0, 2.0]), (5, 1): (1, [3.0, 1.0]),
                   (12, 1): (2, [4.0, 4.0]), (10, 2): (2, [1.0, 3.0]), (12, 2): (2, [2.0, 2.0]),
                   (14, 2): (2, [3.0, 1.0])}


def test_shortest_segment_wins_and_equal_lengths_share():
    points = torch.cat(make_points([20], [1], [(0, 100)]))
    segments = torch.tensor([[0.0, 20.0], [8.0, 12.0], [8.0, 12.0]])
    labels = torch.tensor([0, 1, 2])
    cls, reg = assign_targets(points, segments, labels, num_classes=3, center_radius=0)
    assert cls[10].tolist() == [0, 1, 1] and reg[10].tolist() == [2.0, 2.0]
    assert cls[3].tolist() == [1, 0, 0] and reg[3].tolist() == [3.0, 17.0]
    empty_cls, empty_reg = assign_targets(points, torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), 3)
    assert empty_cls.sum() == 0 and empty_reg.sum() == 0


def test_channel_layer_norm_against_the_elementwise_definition():
    torch.manual_seed(0)
    ln = LayerNorm(6).double()
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    x = torch.randn(2, 6, 5, dtype=torch.float64) * 3 + 1
    mu = x.mean(1, keepdim=True)
    var = (x - mu).square().mean(1, keepdim=True)
    torch.testing.assert_close(ln(x), (x - mu) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias, rtol=1e-12, atol=1e-12)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, w, b: ln(x), (x, ln.weight, ln.bias))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # keeps the input's dtype, as the elementwise one did
        assert LayerNorm(6)(x.detach().bfloat16()).dtype == torch.bfloat16


def test_channel_layer_norm_hands_the_kernel_one_dtype(monkeypatch):
    """CUDA's layer_norm refuses float32 weights for a bf16 input (the CPU kernel takes them, so a
    CPU run cannot show it): every call gets input, weight and bias of one dtype."""
    from detect.layers import masked

    seen, layer_norm = [], F.layer_norm
    monkeypatch.setattr(masked.F, "layer_norm", lambda x, shape, w, b, eps: seen.append((x.dtype, w.dtype, b.dtype))
                        or layer_norm(x, shape, w, b, eps))
    for dtype in (torch.float32, torch.bfloat16):
        out = LayerNorm(6)(torch.randn(2, 6, 5).to(dtype))
        assert out.dtype == dtype and seen[-1] == (dtype,) * 3, seen


def test_channel_layer_norm_keeps_its_cast_weights_for_inference_only():
    """Without gradients the bf16 weights are cast once and reused until the parameters change;
    with gradients they are cast every call (the cast is part of the graph that trains them)."""
    ln = LayerNorm(6)
    x = torch.randn(2, 6, 5).bfloat16()
    with torch.no_grad():
        first = ln.affine(torch.bfloat16)
        assert all(a is b for a, b in zip(ln.affine(torch.bfloat16), first))
        ln.weight.mul_(2)
        again = ln.affine(torch.bfloat16)
        assert again[0] is not first[0] and torch.equal(again[0], (ln.weight.view(-1) * 1).bfloat16())
        expected = ln(x)
    out = ln(x)
    assert out.requires_grad and torch.equal(out.detach(), expected)
    out.float().sum().backward()
    assert ln.weight.grad is not None and ln.weight.grad.dtype == torch.float32


def test_focal_loss_matches_torchvision():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 7, generator=g)
    targets = (torch.rand(50, 7, generator=g) > 0.8).float()
    expected = torchvision.ops.sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0, reduction="sum")
    torch.testing.assert_close(sigmoid_focal_loss(logits, targets), expected)


def test_diou_hand_computed():
    pred = torch.tensor([[1.0, 3.0]])   # segment [-1, 3] around t = 0
    target = torch.tensor([[2.0, 2.0]])  # segment [-2, 2]
    inter, union = 1 + 2, 4 + 4 - 3
    rho, c = 0.5 * ((3 - 1) - (2 - 2)), 2 + 3
    assert diou_loss_1d(pred, target).item() == pytest.approx(1 - inter / union + (rho / c) ** 2)
    assert diou_loss_1d(target, target).item() == pytest.approx(0.0)


def _soft_nms_reference(segs, scores, sigma, min_score, max_num):
    segs, scores = segs.tolist(), scores.tolist()
    kept = []
    while segs and len(kept) < max_num:
        i = max(range(len(scores)), key=lambda k: scores[k])
        s, sc = segs.pop(i), scores.pop(i)
        kept.append((s, sc))
        new_segs, new_scores = [], []
        for seg, score in zip(segs, scores):
            inter = max(0.0, min(s[1], seg[1]) - max(s[0], seg[0]))
            union = (s[1] - s[0]) + (seg[1] - seg[0]) - inter
            score *= math.exp(-(inter / union) ** 2 / sigma)
            if score >= min_score:
                new_segs.append(seg)
                new_scores.append(score)
        segs, scores = new_segs, new_scores
    return kept


def test_soft_nms_matches_a_straightforward_reference_per_class():
    g = torch.Generator().manual_seed(0)
    starts = torch.rand(120, generator=g) * 50
    segs = torch.stack([starts, starts + 1 + torch.rand(120, generator=g) * 10], 1).double()
    scores = torch.rand(120, generator=g).double()
    labels = torch.randint(0, 4, (120,), generator=g)
    got_segs, got_scores, got_labels = soft_nms(segs, scores, labels, 0.5, 0.001, 200)
    expected = []
    for c in range(4):
        expected += [(s, sc, c) for s, sc in _soft_nms_reference(segs[labels == c], scores[labels == c], 0.5, 0.001, 200)]
    expected.sort(key=lambda e: -e[1])
    expected = expected[:200]
    assert len(got_scores) == len(expected)
    torch.testing.assert_close(got_scores, torch.tensor([e[1] for e in expected], dtype=torch.float64))
    torch.testing.assert_close(got_segs, torch.tensor([e[0] for e in expected], dtype=torch.float64))
    assert got_labels.tolist() == [e[2] for e in expected]
    agnostic = soft_nms(segs, scores, labels, 0.75, 0.001, 100, class_agnostic=True)[1]
    ref = [sc for _, sc in _soft_nms_reference(segs, scores, 0.75, 0.001, 100)]
    torch.testing.assert_close(agnostic, torch.tensor(ref, dtype=torch.float64))


def test_iou_voting_and_fusion():
    a = torch.tensor([[0.0, 10.0]])
    b = torch.tensor([[5.0, 15.0], [20.0, 30.0], [3.0, 3.0]])
    assert segment_iou(a, b)[0].tolist() == pytest.approx([5 / 15, 0.0, 0.0])
    kept, pool = torch.tensor([[0.0, 10.0]]), torch.tensor([[0.0, 10.0], [1.0, 11.0], [50.0, 60.0], [2.0, 12.0]])
    scores = torch.tensor([0.5, 0.25, 0.9, 0.3])   # IoUs with the kept one: 1, 9/11, 0, 8/12 (below 0.7)
    voted = vote_boundaries(kept, pool, scores, iou_thresh=0.7)
    # ActionFormer's seg_voting: weights (IoU >= thr) * IoU * score = 0.5 and 9/11 * 0.25
    w = torch.tensor([0.5, 9 / 11 * 0.25])
    assert voted[0].tolist() == pytest.approx(((w[0] * pool[0] + w[1] * pool[1]) / w.sum()).tolist())
    intended = vote_boundaries(kept, pool, scores, iou_thresh=0.7, weighting="iou-offset")
    w = torch.tensor([1 * 2.0, 9 / 11 * 1.75])      # IoU * (score + 1.5)
    assert intended[0].tolist() == pytest.approx(((w[0] * pool[0] + w[1] * pool[1]) / w.sum()).tolist())
    from detect.tasks.segments.postprocess import PostprocessConfig

    with pytest.raises(ValueError, match="voting_thresh applies to class-agnostic NMS"):
        PostprocessConfig(voting_thresh=0.7)       # multiclass NMS: ActionFormer never votes there
    with pytest.raises(ValueError, match="voting_weights must be one of"):
        PostprocessConfig(multiclass_nms=False, voting_thresh=0.7, voting_weights="score")
    segs, scores, classes = fuse_class_scores(torch.tensor([[0.0, 1.0], [2.0, 3.0]]), torch.tensor([0.64, 0.25]),
                                              torch.tensor([0.1, 0.25, 0.0, 0.5]), topk=2)
    assert classes.tolist() == [3, 1, 3, 1] and scores.tolist() == pytest.approx([math.sqrt(0.32),
                                                                                  0.4, math.sqrt(0.125), 0.25])


def test_detector_sizes_match_the_published_configs():
    def size(name, d, inp, ncls):
        m = create_model(name, num_classes=ncls, head_dim=d, backbone={"input_dim": inp, "embd_dim": d})
        return sum(p.numel() for p in m.parameters()) / 1e6
    assert size("actionmamba-dbm", 512, 3200, 20) == pytest.approx(20.3, abs=0.05)
    assert size("actionmamba-vim", 512, 3200, 20) == pytest.approx(21.6, abs=0.05)
    assert size("actionmamba-dbm", 256, 3200, 1) == pytest.approx(6.4, abs=0.05)


def test_config_rejects_ignored_keys():
    with pytest.raises(TypeError, match="use_abs_pe"):
        model_config("actionmamba-dbm", num_classes=2, backbone={"use_abs_pe": True})
    with pytest.raises(ValueError, match="6 regression ranges for 8 pyramid levels"):
        model_config("actionmamba-dbm", num_classes=2, backbone={"arch": (2, 2, 7)})


def test_voting_reproduces_actionformers_seg_voting():
    """Fixture: inputs and outputs of ``seg_voting`` from happyharrycn/actionformer_release at 61ea7eb
    (libs/utils/nms.py, run from a scratch checkout in float64; the module's compiled NMS is not needed)."""
    from pathlib import Path

    fixture = torch.load(Path(__file__).parent / "fixtures" / "actionformer_seg_voting.pt", weights_only=True)
    for case in fixture["cases"]:
        ours = vote_boundaries(case["kept"], case["segs"], case["scores"], float(case["thresh"]))
        torch.testing.assert_close(ours, case["voted"], rtol=0, atol=1e-12)
        other = vote_boundaries(case["kept"], case["segs"], case["scores"], float(case["thresh"]), "iou-offset")
        assert (other - case["voted"]).abs().max() > 1e-6   # the fixture tells the two weightings apart
