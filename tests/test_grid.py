import numpy as np
import pytest

from extract.store import SnippetGrid, count_snippets


def test_drop_count_is_the_standard_formula():
    # video_validation_0000051: 5,091 decoded frames (gtad #48) -> 1,269 I3D snippets at 16/4.
    assert count_snippets(5091, 16, 4) == 1269
    for frames in range(8, 200):
        for window, stride in [(16, 4), (8, 3), (16, 16)]:
            expected = max((frames - window) // stride + 1, 1)
            assert count_snippets(frames, window, stride) == expected


@pytest.mark.parametrize("tail,expected", [("drop", 3), ("pad", 4), ("truncate", 4)])
def test_tail_policies(tail, expected):
    # 26 frames, window 16, stride 4: starts 0,4,8 fit; 12 would run 2 frames past the end.
    assert count_snippets(26, 16, 4, tail) == expected


@pytest.mark.parametrize("tail", ["drop", "pad", "truncate"])
def test_short_video_yields_one_snippet(tail):
    assert count_snippets(1, 16, 4, tail) == 1
    assert count_snippets(15, 16, 4, tail) == 1
    assert count_snippets(16, 16, 4, tail) == 1


def test_pad_covers_every_frame_and_drop_never_runs_past_the_end():
    for frames in range(17, 120):
        for window, stride in [(16, 4), (8, 3), (16, 16)]:
            n_drop = count_snippets(frames, window, stride, "drop")
            n_pad = count_snippets(frames, window, stride, "pad")
            assert (n_drop - 1) * stride + window <= frames
            assert (n_pad - 1) * stride + window >= frames
            assert (n_pad - 2) * stride + window < frames


def test_index_to_seconds_is_the_snippet_centre_and_inverts():
    grid = SnippetGrid(window=16, stride=4, fps=30.0, num_snippets=100)
    assert grid.index_to_seconds(0) == pytest.approx(8 / 30)
    assert grid.index_to_seconds(10) == pytest.approx((40 + 8) / 30)
    t = np.linspace(0, 20, 57)
    np.testing.assert_allclose(grid.index_to_seconds(grid.seconds_to_index(t)), t, atol=1e-12)
    np.testing.assert_allclose(grid.centre_seconds(), (np.arange(100) * 4 + 8) / 30)


def test_offset_and_explicit_starts():
    grid = SnippetGrid(window=8, stride=3, fps=10.0, num_snippets=4, offset=2)
    np.testing.assert_array_equal(grid.start_frames(), [2, 5, 8, 11])
    explicit = SnippetGrid(window=8, stride=3, fps=10.0, num_snippets=4, starts=(2, 5, 8, 11))
    g = np.array([-1.0, 0, 0.5, 2.25, 3, 5])
    np.testing.assert_allclose(explicit.index_to_seconds(g), grid.index_to_seconds(g))
    np.testing.assert_allclose(explicit.seconds_to_index(explicit.index_to_seconds(g)), g)
    irregular = SnippetGrid(window=8, stride=3, fps=10.0, num_snippets=3, starts=(0, 10, 11))
    assert irregular.index_to_seconds(1.5) == pytest.approx((10.5 + 4) / 10)


def test_dict_round_trip_and_validation():
    grid = SnippetGrid(window=16, stride=8, fps=29.97, num_snippets=7, tail="pad", starts=range(0, 56, 8))
    assert SnippetGrid.from_dict(grid.to_dict()) == grid
    with pytest.raises(ValueError, match="tail"):
        SnippetGrid(window=16, stride=4, fps=30, num_snippets=1, tail="wrap")
    with pytest.raises(ValueError, match="fps"):
        SnippetGrid(window=16, stride=4, fps=0, num_snippets=1)
    with pytest.raises(ValueError, match="explicit starts"):
        SnippetGrid(window=16, stride=4, fps=30, num_snippets=2, starts=(0,))
    with pytest.raises(ValueError, match="unknown snippet grid fields"):
        SnippetGrid.from_dict({**grid.to_dict(), "hop": 3})
