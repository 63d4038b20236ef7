"""The Triton Soft-NMS kernel agrees with the tensor-operation reference, run on the CPU through
Triton's interpreter (a subprocess: the interpreter is chosen when kernels are defined)."""
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("triton")

SCRIPT = textwrap.dedent("""
    import torch
    from detect.tasks.segments.postprocess import soft_nms_rounds
    from detect.ops.soft_nms_triton import soft_nms_rows

    g = torch.Generator().manual_seed(0)
    rows, width = 5, 150
    counts = torch.tensor([150, 97, 1, 0, 40])
    S = torch.rand(rows, width, generator=g)
    S[0, 10:20] = 0.75                                    # ties: the lowest column goes first
    S[1, :30] = torch.rand(30, generator=g) * 0.002      # some under min_score from the start
    starts = torch.rand(rows, width, generator=g) * 40
    X = torch.stack([starts, starts + torch.rand(rows, width, generator=g) * 8], -1)
    X[0, 5] = X[0, 5, :1].expand(2)                       # a zero-length segment (IoU 0)
    X[4] = X[4, :1]                                       # one row of identical segments
    for r in range(rows):
        S[r, counts[r]:] = -1.0
    for rounds, block in ((60, 32), (150, 64), (7, 256)):
        ref_col, ref_score = soft_nms_rounds(S.clone(), X, 0.5, 0.001, rounds)
        col, score = soft_nms_rows(S.clone(), X, counts, 0.5, 0.001, rounds, block=block)
        n = len(ref_col)
        assert torch.equal(col[:n].long(), ref_col), (rounds, block, col[:n], ref_col)
        assert (col[n:] == -1).all()
        alive = ref_col >= 0
        torch.testing.assert_close(score[:n][alive], ref_score[alive], rtol=1e-6, atol=1e-7)
    print("agree")
""")


def test_the_kernel_picks_the_same_segments_with_the_same_scores():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0 and "agree" in proc.stdout, proc.stderr[-3000:]
