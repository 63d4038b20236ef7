"""The training step: losses select by masks (no boolean indexing, no ``nonzero``, no ``.item()``, so no
host synchronisation) and equal the indexing formulation they replaced, in float64; the EMA
updates all tensors at once with the same bits."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from detect.tasks.dense import masked_bce
from detect.tasks.segments.losses import diou_loss_1d, sigmoid_focal_loss
from detect.tasks.segments.targets import assign_targets


def _indexed_targets(points, segments, labels, num_classes, center_radius=1.5):
    """The previous assignment, which wrote the multi-hot rows through ``nonzero``."""
    t, lo, hi, stride = (points[:, i:i + 1] for i in range(4))
    gs, ge = segments[:, 0][None], segments[:, 1][None]
    left, right = t - gs, ge - t
    centre = (gs + ge) / 2
    inside = torch.minimum(t - torch.maximum(gs, centre - center_radius * stride),
                           torch.minimum(ge, centre + center_radius * stride) - t) > 0
    reach = torch.maximum(left, right)
    ok = inside & (reach >= lo) & (reach <= hi)
    lengths = (ge - gs).expand(points.shape[0], -1).masked_fill(~ok, float("inf"))
    shortest, _ = lengths.min(dim=1)
    chosen = ok & (lengths <= shortest[:, None] + 1e-3)
    cls = torch.zeros(points.shape[0], num_classes)
    rows, cols = torch.nonzero(chosen, as_tuple=True)
    cls[rows, labels[cols]] = 1.0
    return cls


def test_multi_hot_targets_equal_the_indexed_assignment():
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        strides = torch.tensor([1.0, 2.0, 4.0, 8.0])
        ranges = torch.tensor([[0, 4], [4, 8], [8, 16], [16, 1e4]])
        points = torch.cat([torch.stack([torch.arange(0, 256, s), *(torch.full((int(256 // s),), v) for v in
                                                                      (*ranges[k], s))], 1)
                            for k, s in enumerate(strides.tolist())])
        starts = torch.rand(12, generator=gen) * 230
        segments = torch.stack([starts, starts + 1 + torch.rand(12, generator=gen) * 25], 1)
        segments[5] = segments[4]                                        # equal lengths: both classes
        labels = torch.randint(0, 6, (12,), generator=gen)
        cls, _ = assign_targets(points, segments, labels, 6)
        assert torch.equal(cls, _indexed_targets(points, segments, labels, 6))
        assert cls.sum() > 0


def test_masked_losses_equal_indexed_ones_with_their_gradients():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 50, 7, dtype=torch.float64, generator=gen, requires_grad=True)
    targets = (torch.rand(3, 50, 7, generator=gen, dtype=torch.float64) > 0.8).double()
    valid = torch.rand(3, 50, generator=gen) > 0.3
    offsets = (torch.rand(3, 50, 2, generator=gen, dtype=torch.float64) * 5).requires_grad_()
    gt = torch.rand(3, 50, 2, generator=gen, dtype=torch.float64) * 5
    positive = valid & (torch.rand(3, 50, generator=gen) > 0.7)
    for ours, theirs, inputs in (
            (sigmoid_focal_loss(logits, targets, where=valid[..., None]),
             sigmoid_focal_loss(logits[valid], targets[valid]), logits),
            (diou_loss_1d(offsets, gt, where=positive), diou_loss_1d(offsets[positive], gt[positive]), offsets),
            (masked_bce(logits, targets, valid),
             F.binary_cross_entropy_with_logits(logits[valid], targets[valid]), logits)):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=0)
        g_ours, = torch.autograd.grad(ours, inputs)
        g_theirs, = torch.autograd.grad(theirs, inputs)
        torch.testing.assert_close(g_ours, g_theirs, rtol=1e-12, atol=1e-15)


def test_no_positives_give_a_zero_regression_loss_with_a_gradient_path():
    offsets = torch.rand(2, 10, 2, requires_grad=True)
    loss = diou_loss_1d(offsets, torch.zeros(2, 10, 2), where=torch.zeros(2, 10, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(offsets.grad, torch.zeros_like(offsets))


def test_ema_multi_tensor_update_is_bit_identical_to_the_per_tensor_one():
    from detect.engine.ema import ModelEma

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.BatchNorm1d(7))
    ema = ModelEma(model, 0.999)
    reference = {k: v.clone() for k, v in ema.module.state_dict().items()}
    for _ in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(3, 5))                      # moves the BatchNorm statistics and its counter
        ema.update(model)
        for k, cur in model.state_dict().items():
            if cur.dtype.is_floating_point:
                reference[k].mul_(0.999).add_(cur, alpha=1 - 0.999)
            else:
                reference[k].copy_(cur)
    for k, v in ema.module.state_dict().items():
        assert torch.equal(v, reference[k]), k
    assert ema.module.state_dict()["1.num_batches_tracked"] == 4


def test_a_captured_step_puts_back_what_its_warm_up_steps_changed():
    """The graph's warm-up steps update weights, moments, EMA and the loss normaliser; all of it
    goes back in place (the graph holds those tensors), fresh AdamW state to zero. The capture
    itself needs a GPU (benchmarks/graphed_step_check.py compares graphed and eager steps there)."""
    from detect.engine.ema import ModelEma
    from detect.engine.graphed_step import GraphedStep, keep_lr_tensors

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    criterion = torch.nn.Module()
    criterion.register_buffer("loss_normalizer", torch.tensor(100.0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ema = ModelEma(model, 0.9)
    step = GraphedStep(model, criterion, opt, ema, 1.0, amp=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    saved = step._snapshot()
    held = [model.weight, ema.module.weight, criterion.loss_normalizer]
    for _ in range(3):                                   # what warm-up steps do
        opt.zero_grad()
        model(torch.randn(5, 4)).square().sum().backward()
        opt.step()
        ema.update(model)
        criterion.loss_normalizer.mul_(0.9).add_(1.0)
    step._restore(saved)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert torch.equal(ema.module.weight, before["weight"]) and criterion.loss_normalizer.item() == 100.0
    assert held[0] is model.weight and held[1] is ema.module.weight and held[2] is criterion.loss_normalizer
    state = opt.state[model.weight]
    assert float(state["step"]) == 0 and not state["exp_avg"].any() and not state["exp_avg_sq"].any()
    assert not model.weight.grad.any()

    lr = torch.tensor(1e-2)
    opt.param_groups[0]["lr"] = 0.5                      # an older scheduler assigns a float
    keep_lr_tensors(opt, [lr])
    assert opt.param_groups[0]["lr"] is lr and lr.item() == 0.5


def test_graphed_steps_apply_to_segments_and_dense_models_that_never_wait_for_the_gpu():
    """``optim.cuda_graph`` on a model whose forward reads a count on the host (SG-Mamba's stem,
    MS-Temba v1's chunks) or a task without fixed-shape targets (clips) trains eagerly instead of
    failing at capture."""
    from types import SimpleNamespace

    from detect.engine.graphed_step import can_graph
    from detect.models import create_model
    from detect.models.registry import model_entry
    from detect.tasks.clips import ClipLoss
    from detect.tasks.dense import DenseLoss
    from detect.tasks.segments.config import SegmentsConfig
    from detect.tasks.segments.task import SegmentLoss

    cfg = SimpleNamespace(optim=SimpleNamespace(cuda_graph=True, accumulate=1))
    cuda = torch.device("cuda")
    segments, dense = SegmentLoss(SegmentsConfig(), 3), DenseLoss(0.3)
    temba = {v: create_model("ms-temba", num_classes=3, input_dim=6, embed_dims=[8, 12, 16], backend="torch",
                             variant=v) for v in ("v3", "v1")}
    tiny = {name: create_model(name, **{**model_entry(name).example, **model_entry(name).tiny})
            for name in ("actionmamba-dbm", "sg-mamba")}
    assert can_graph(cfg, cuda, 1, tiny["actionmamba-dbm"], segments)
    assert can_graph(cfg, cuda, 1, temba["v3"], dense) and not can_graph(cfg, cuda, 1, temba["v1"], dense)
    assert not can_graph(cfg, cuda, 1, tiny["sg-mamba"], segments)
    assert not can_graph(cfg, cuda, 1, torch.nn.Linear(2, 2), ClipLoss(0.0))
    assert not can_graph(cfg, torch.device("cpu"), 1, temba["v3"], dense)
    assert not can_graph(cfg, cuda, 2, temba["v3"], dense)
    cfg.optim.accumulate = 2
    assert not can_graph(cfg, cuda, 1, temba["v3"], dense)


def test_dense_loss_on_assigned_targets_equals_the_loss_on_the_batch():
    from detect.models import create_model
    from detect.tasks.dense import DenseLoss

    torch.manual_seed(0)
    model = create_model("ms-temba", num_classes=3, input_dim=6, embed_dims=[8, 12, 16], backend="torch")
    mask = torch.arange(20)[None] < torch.tensor([[20], [13]])
    batch = {"inputs": {"mask": mask}, "frames": (torch.rand(2, 20, 3) < 0.3).float() * mask[..., None]}
    out = model(torch.randn(2, 6, 20), mask)
    criterion = DenseLoss(0.3)
    assigned = criterion.assign(out, batch)
    assert set(assigned) == {"mask", "frames"}
    on_batch, on_targets = criterion(out, batch), criterion(out, assigned)
    assert on_batch.keys() == on_targets.keys()
    for name in on_batch:
        assert torch.equal(on_batch[name], on_targets[name]), name
