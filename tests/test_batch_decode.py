"""Decoding a whole inference batch at once gives each video exactly the detections of decoding
it alone (``decode_to_host``), whether a level's candidates fit under ``pre_nms_topk`` or not,
per class or class-agnostic, with voting, and for a video with no candidates at all."""
import dataclasses

import pytest
import torch

from detect.outputs import DetectorOutput
from detect.tasks.segments.decode import decode_batch_to_host, decode_to_host
from detect.tasks.segments.postprocess import PostprocessConfig


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                              reason="the Triton Soft-NMS path needs a CUDA GPU"))]


def random_output(lengths: list[int], classes: int, seed: int, strides=(1, 2, 4, 8),
                  device: str = "cpu") -> DetectorOutput:
    g = torch.Generator().manual_seed(seed)
    padded = max(lengths)
    logits, offsets, masks = [], [], []
    for s in strides:
        t = -(-padded // s)
        logits.append(torch.randn(len(lengths), t, classes, generator=g) * 3 - 3)
        offsets.append(torch.rand(len(lengths), t, 2, generator=g) * 4)
        masks.append(torch.arange(t)[None] < torch.tensor([-(-n // s) for n in lengths])[:, None])
    logits[0][-1] = -30.0                                    # nothing above the threshold on one level
    return DetectorOutput([x.to(device) for x in logits], [x.to(device) for x in offsets],
                          [x.to(device) for x in masks], list(strides), [])


@pytest.mark.parametrize("pp", [
    PostprocessConfig(),                                                  # per class; level 0 over pre_nms_topk
    PostprocessConfig(pre_nms_topk=100000),                               # every candidate fits
    PostprocessConfig(multiclass_nms=False, max_seg_num=25),              # class-agnostic, capped
    PostprocessConfig(multiclass_nms=False, voting_thresh=0.7),           # voting: decoded per video
    PostprocessConfig(pre_nms_thresh=0.5, duration_thresh=1.5, min_score=0.2),
], ids=["per-class", "all-fit", "agnostic", "voting", "strict"])
@pytest.mark.parametrize("device", DEVICES)
def test_batch_decoding_equals_decoding_each_video(pp, device):
    out = random_output([300, 41, 7, 256], classes=5, seed=0, device=device)
    out.cls_logits[0][2] = -30.0                              # video 2: no candidate on any level
    for level in out.cls_logits:
        level[2] = -30.0
    batched = decode_batch_to_host(out, pp)
    assert len(batched) == 4 and len(batched[2][1]) == 0
    for i, (segs, scores, labels) in enumerate(batched):
        ref = decode_to_host(out, i, pp)
        assert len(ref[1]) == len(scores) and (i == 2 or len(scores) > 0)
        torch.testing.assert_close(segs, ref[0], rtol=0, atol=0)
        torch.testing.assert_close(scores, ref[1], rtol=0, atol=0)
        assert torch.equal(labels, ref[2])


def test_the_topk_cut_keeps_each_levels_best_candidates():
    pp = dataclasses.replace(PostprocessConfig(), pre_nms_topk=30, pre_nms_thresh=0.0, min_score=0.0)
    out = random_output([200, 180], classes=3, seed=1)
    for i, (segs, scores, labels) in enumerate(decode_batch_to_host(out, pp)):
        ref = decode_to_host(out, i, pp)
        torch.testing.assert_close(scores, ref[1], rtol=0, atol=0)
        torch.testing.assert_close(segs, ref[0], rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_tied_scores_break_as_decoding_each_video_breaks_them(device):
    """Saturated logits tie at score 1.0: Soft-NMS then picks by candidate order, which must be
    decode_level's (by position when every candidate fits under ``pre_nms_topk``)."""
    pp = PostprocessConfig(pre_nms_topk=100000)
    out = random_output([120, 90], classes=2, seed=2, device=device)
    for level in out.cls_logits:
        level[:, ::3] = 30.0                                   # sigmoid(30) == 1.0 in float32
    for i, (segs, scores, labels) in enumerate(decode_batch_to_host(out, pp)):
        ref = decode_to_host(out, i, pp)
        assert (ref[1] == 1.0).sum() > 1
        torch.testing.assert_close(segs, ref[0], rtol=0, atol=0)
        torch.testing.assert_close(scores, ref[1], rtol=0, atol=0)
        assert torch.equal(labels, ref[2])


def test_thresholds_outside_probabilities_are_refused():
    """Soft-NMS marks padding and dropped candidates with -1: a threshold at or below it would
    bring them back to life, so thresholds must be probabilities."""
    for field in ("min_score", "pre_nms_thresh"):
        with pytest.raises(ValueError, match=rf"^{field} must be in \[0, 1\), got -1"):
            PostprocessConfig(**{field: -1.0})
