"""Snippets from chunked frame streams: grid arithmetic, tail policy, chunk-size invariance."""
import numpy as np
import pytest

from extract.snippets import snippet_batches
from extract.store import count_snippets


def _frames(n):
    return np.arange(n, dtype=np.int32).reshape(n, 1, 1, 1)


def _snippets(n, window, stride, tail, chunk, batch):
    frames = _frames(n)
    chunks = (frames[i:i + chunk] for i in range(0, n, chunk))
    out = list(snippet_batches(chunks, window, stride, tail, batch))
    return np.concatenate(out)[..., 0, 0, 0] if out else np.zeros((0, window), int)


@pytest.mark.parametrize("tail", ["drop", "pad"])
@pytest.mark.parametrize("n", [1, 5, 16, 17, 26, 100, 101])
@pytest.mark.parametrize("window,stride", [(16, 4), (8, 3), (16, 16)])
def test_grid_and_tail(n, window, stride, tail):
    got = _snippets(n, window, stride, tail, chunk=7, batch=5)
    assert len(got) == count_snippets(n, window, stride, tail)
    for k, snippet in enumerate(got):
        expected = np.minimum(np.arange(k * stride, k * stride + window), n - 1)  # pad repeats the last frame
        np.testing.assert_array_equal(snippet, expected)


def test_independent_of_chunk_and_batch_size():
    reference = _snippets(203, 16, 4, "drop", chunk=203, batch=1000)
    for chunk in (1, 3, 64):
        for batch in (1, 7, 32):
            np.testing.assert_array_equal(_snippets(203, 16, 4, "drop", chunk, batch), reference)


def test_memory_stays_bounded():
    """10,000 frames of 32x32x3 (30 MB) stream through with a few chunks held at a time."""
    import tracemalloc

    def chunks():
        for i in range(0, 10_000, 50):
            yield np.full((50, 32, 32, 3), i % 255, np.uint8)

    tracemalloc.start()
    count = sum(out.shape[0] for out in snippet_batches(chunks(), 16, 4, batch=8))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == count_snippets(10_000, 16, 4)
    assert peak < 3_000_000, peak


def test_truncate_is_refused_for_snippet_models():
    with pytest.raises(ValueError, match="whole windows"):
        list(snippet_batches([_frames(5)], 4, 2, "truncate"))
