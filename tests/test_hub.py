"""Hub pull from a local fake Hub cache (split archives), safe extraction, and push."""
import io
import json
import tarfile
import zipfile

import numpy as np
import pytest

from extract.archives import UnsafeArchiveError, join_parts, safe_extract
from extract.cards import load_card
from extract.hub import HubError, download_snapshot, pull, push
from extract.store import open_store

REPO = "cg1177/thumos14_internvideo2_6b_w16_s4"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _pt_bytes(array) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(torch.from_numpy(array), buf)
    return buf.getvalue()


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A Hugging Face cache holding the THUMOS14 IV2 repo as a 3-part split tarball."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    rng = np.random.default_rng(0)
    arrays = {f"video_test_{i:07d}": rng.standard_normal((30 + i, 3200)).astype(np.float32) for i in range(1, 5)}
    tarball = _tar_bytes({f"thumos/features/{vid}_spatial_feature.pt": _pt_bytes(a) for vid, a in arrays.items()})
    repo = tmp_path / "cache" / "datasets--cg1177--thumos14_internvideo2_6b_w16_s4"
    snap = repo / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    third = len(tarball) // 3 + 1
    for k in range(3):
        (snap / f"thumos14_iv2.tar.gz.part{k}").write_bytes(tarball[k * third:(k + 1) * third])
    (snap / "README.md").write_text("THUMOS14 InternVideo2-6B features")
    annotations = tmp_path / "thumos14.json"
    database = {vid: {"subset": "test", "duration": 10.0, "fps": 30.0, "annotations": []} for vid in arrays}
    database["video_test_0000099"] = {"subset": "test", "duration": 5.0, "fps": 25.0, "annotations": []}
    annotations.write_text(json.dumps({"database": database}))
    return tmp_path / "cache", arrays, annotations


def test_pull_split_archive_repo_into_a_store(tmp_path, fake_hub):
    cache, arrays, annotations = fake_hub
    summary = pull(REPO, load_card("thumos14"), tmp_path / "store", annotations=annotations,
                   snapshot=lambda repo, rev: download_snapshot(repo, rev, cache_dir=str(cache)))
    assert summary["written"] == 4 and not summary["failed"]
    assert summary["missing"] == ["video_test_0000099"] and summary["unannotated"] == []
    store = open_store(tmp_path / "store")
    assert store.ids == sorted(arrays)
    for vid, a in arrays.items():
        np.testing.assert_array_equal(store.read(vid), a)
        grid = store.grid(vid)
        assert (grid.window, grid.stride, grid.fps) == (16, 4, 30.0)
        assert grid.index_to_seconds(0) == pytest.approx(8 / 30)
    assert store.info.preprocessing["hub_repo"] == REPO
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".hub-pull-")]  # temp data removed


def test_pull_offline_without_cache_says_what_to_do(tmp_path, fake_hub):
    with pytest.raises(HubError, match="not in the local Hugging Face cache"):
        download_snapshot("cg1177/not_downloaded", cache_dir=str(tmp_path / "empty"))


def test_native_fps_repo_needs_annotations(tmp_path, fake_hub):
    cache, _, _ = fake_hub
    with pytest.raises(HubError, match="pass --annotations"):
        pull(REPO, load_card("thumos14"), tmp_path / "store",
             snapshot=lambda repo, rev: download_snapshot(repo, rev, cache_dir=str(cache)))


def test_join_parts_orders_numerically(tmp_path):
    for k in range(12):
        (tmp_path / f"a.tar.part{k}").write_bytes(bytes([k]))
    (joined,) = join_parts(tmp_path, tmp_path)
    assert joined.read_bytes() == bytes(range(12))


def _evil_tars(tmp_path):
    def tar_with(*infos):
        path = tmp_path / f"evil{len(list(tmp_path.glob('evil*')))}.tar"
        with tarfile.open(path, "w") as tf:
            tf.addfile(*_file("ok.txt", b"fine"))
            for info in infos:
                tf.addfile(*info)
        return path

    def _file(name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        return info, io.BytesIO(data)

    def _special(name, kind, target=""):
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        return (info,)

    return [tar_with(_file("../escaped.txt", b"x")),
            tar_with(_file(str(tmp_path / "absolute.txt"), b"x")),
            tar_with(_special("link", tarfile.SYMTYPE, str(tmp_path / "outside"))),
            tar_with(_special("hard", tarfile.LNKTYPE, "../../etc/passwd")),
            tar_with(_special("dev", tarfile.CHRTYPE))]


def test_malicious_tar_archives_are_rejected_whole(tmp_path):
    for archive in _evil_tars(tmp_path):
        target = tmp_path / f"out_{archive.stem}"
        with pytest.raises(UnsafeArchiveError):
            safe_extract(archive, target)
        assert list(target.iterdir()) == []  # not even the harmless member
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "absolute.txt").exists()


def test_malicious_zip_archives_are_rejected(tmp_path):
    traversal = tmp_path / "t.zip"
    with zipfile.ZipFile(traversal, "w") as zf:
        zf.writestr("../escaped.txt", "x")
    link = tmp_path / "l.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    for archive in (traversal, link):
        with pytest.raises(UnsafeArchiveError):
            safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists() and not list((tmp_path / "out").iterdir())


def test_pull_refuses_a_repo_with_a_malicious_archive(tmp_path, fake_hub):
    cache, _, annotations = fake_hub
    snap = cache / "datasets--cg1177--thumos14_internvideo2_6b_w16_s4" / "snapshots" / COMMIT
    (snap / "extra.tar").write_bytes(_evil_tars(tmp_path)[0].read_bytes())
    with pytest.raises(UnsafeArchiveError):
        pull(REPO, load_card("thumos14"), tmp_path / "store", annotations=annotations,
             snapshot=lambda repo, rev: download_snapshot(repo, rev, cache_dir=str(cache)))
    assert not (tmp_path / "escaped.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".hub-pull-")]


class FakeApi:
    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))

    def upload_file(self, **kw):
        self.calls.append(("upload_file", kw["path_in_repo"], kw["path_or_fileobj"]))

    def upload_folder(self, **kw):
        self.calls.append(("upload_folder", kw["folder_path"], kw["allow_patterns"]))


def test_push_uploads_sealed_files_and_a_card(tmp_path, fake_hub):
    cache, _, annotations = fake_hub
    pull(REPO, load_card("thumos14"), tmp_path / "store", annotations=annotations,
         snapshot=lambda repo, rev: download_snapshot(repo, rev, cache_dir=str(cache)))
    api = FakeApi()
    url = push(tmp_path / "store", "me/thumos14_iv2_store", card=load_card("thumos14"), api=api)
    assert url.endswith("datasets/me/thumos14_iv2_store")
    kinds = [c[0] for c in api.calls]
    assert kinds == ["create_repo", "upload_file", "upload_folder"]
    readme = api.calls[1][2].decode()
    assert "videos: 4" in readme and "THUMOS14" in readme
    assert "shards/*.h5" in api.calls[2][2] and not any("staging" in p or "lock" in p for p in api.calls[2][2])
