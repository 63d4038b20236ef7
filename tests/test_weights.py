"""The weights registry against a local fake Hugging Face cache: download, verify, refuse."""
import io
from pathlib import Path

import pytest
import torch

from extract import weights
from extract.cli import main

COMMIT = "a" * 40


@pytest.fixture
def fake_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMBA_TAD_PRETRAINED", str(tmp_path / "pretrained"))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def put(entry, payload: bytes):
        repo = tmp_path / "pretrained" / "hf" / f"models--{entry.repo_id.replace('/', '--')}"
        target = repo / "snapshots" / COMMIT / entry.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(COMMIT)
        return target

    return put


def _state_bytes(value=1.0):
    buf = io.BytesIO()
    torch.save({"w": torch.full((2,), value)}, buf)
    return buf.getvalue()


def test_missing_weights_name_the_download_command(fake_cache):
    with pytest.raises(weights.MissingWeightsError, match="run: python -m extract download i3d-rgb-imagenet"):
        weights.resolve("i3d-rgb-imagenet")


def test_download_verifies_and_records_the_hash(fake_cache):
    entry = weights.REGISTRY["i3d-rgb-imagenet"]
    fake_cache(entry, _state_bytes())
    path = weights.download("i3d-rgb-imagenet")
    assert weights.load_state_dict(path)["w"].tolist() == [1.0, 1.0]
    assert weights.resolve("i3d-rgb-imagenet") == path
    assert weights._recorded()["i3d-rgb-imagenet"] == {"sha256": weights.sha256_of(path), "revision": COMMIT}
    fake_cache(entry, _state_bytes(2.0))  # the cached file is replaced behind our back
    with pytest.raises(weights.MissingWeightsError, match="sha256 .* expected"):
        weights.resolve("i3d-rgb-imagenet")


def test_registry_sha256_is_enforced(fake_cache, monkeypatch):
    entry = weights.REGISTRY["i3d-flow-imagenet"]
    monkeypatch.setitem(weights.REGISTRY, entry.name, weights.WeightsEntry(**{**entry.__dict__, "sha256": "0" * 64}))
    fake_cache(entry, _state_bytes())
    with pytest.raises(weights.MissingWeightsError, match="corrupt or was replaced"):
        weights.download(entry.name)


def test_pickles_with_code_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran code",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        weights.load_state_dict(path)


def test_cli_lists_and_downloads(fake_cache, capsys):
    fake_cache(weights.REGISTRY["i3d-rgb-swallow"], _state_bytes())
    assert main(["weights"]) == 0
    out = capsys.readouterr().out
    assert "i3d-rgb-imagenet" in out and "not downloaded: python -m extract download" in out and "licence" in out
    assert main(["download", "i3d-rgb-swallow"]) == 0
    capsys.readouterr()
    assert main(["download", "i3d-nope"]) == 1
    assert capsys.readouterr().err.startswith("error: unknown weights 'i3d-nope'; known: i3d-rgb-imagenet")


def test_the_first_download_pins_its_commit(fake_cache):
    entry = weights.REGISTRY["i3d-rgb-charades"]
    first = fake_cache(entry, _state_bytes())
    assert weights.download(entry.name) == first
    # the repo moves on: main now points at another commit with another file
    repo = first.parents[len(entry.filename.split("/")) + 1]         # models--ORG--NAME
    newer = repo / "snapshots" / ("b" * 40) / entry.filename
    newer.parent.mkdir(parents=True)
    newer.write_bytes(_state_bytes(3.0))
    (repo / "refs" / "main").write_text("b" * 40)
    from huggingface_hub import hf_hub_download

    assert Path(hf_hub_download(entry.repo_id, entry.filename, cache_dir=weights.weights_dir() / "hf",
                                local_files_only=True)) == newer    # what an unpinned lookup now gets
    assert weights.resolve(entry.name) == first  # still the pinned commit, not main
    assert weights.listing()[2]["revision"] == COMMIT and weights.listing()[2]["pinned_by"] == "first download"


def test_offline_download_says_the_hub_is_unreachable(fake_cache, capsys, monkeypatch):
    import huggingface_hub

    asked = []
    real = huggingface_hub.hf_hub_download
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **kw: asked.append(kw) or real(*a, **kw))
    assert main(["download", "i3d-flow-charades"]) == 1
    err = capsys.readouterr().err
    assert asked and asked[0]["local_files_only"]  # offline: no network attempt (and no retries) at all
    assert err.startswith("error: cannot download 'i3d-flow-charades': HF_HUB_OFFLINE is set and the file is not in ")
    assert "--weights /path/to/flow_charades.pt" in err


def test_gated_weights_explain_the_licence_and_the_token(fake_cache, monkeypatch):
    import huggingface_hub
    import huggingface_hub.constants
    from huggingface_hub.errors import GatedRepoError

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    def gated(*args, **kwargs):
        error = GatedRepoError.__new__(GatedRepoError)  # its constructor wants an HTTP response object
        Exception.__init__(error, "403 Client Error: access to this repo is restricted")
        raise error

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", gated)
    with pytest.raises(weights.MissingWeightsError) as err:
        weights.download("internvideo2-1b-k400-f8")
    message = str(err.value)
    assert "huggingface.co/OpenGVLab/InternVideo2-Stage1-1B-224p-f8-K400" in message
    assert "HF_TOKEN" in message and "--checkpoint" in message


def test_sharded_weights_come_as_a_verified_folder(fake_cache):
    from dataclasses import replace

    entry = weights.REGISTRY["internvideo2-6b-stage2"]
    first = fake_cache(replace(entry, filename="model-00001-of-00002.safetensors"), b"one")
    fake_cache(replace(entry, filename="model-00002-of-00002.safetensors"), b"two")
    folder = weights.download("internvideo2-6b-stage2")
    assert folder == first.parent and weights.resolve("internvideo2-6b-stage2") == folder
    first.write_bytes(b"changed")  # a shard replaced behind our back
    with pytest.raises(weights.MissingWeightsError, match="corrupt or was replaced"):
        weights.resolve("internvideo2-6b-stage2")
