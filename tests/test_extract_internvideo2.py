"""InternVideo2: the public key layout, strict loading of every accepted file form, an
independent float64 reference forward, position-embedding interpolation, and extraction."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from videos import make_video

from extract.cli import main
from extract.models.internvideo2 import InternVideo2, InternVideo2Config, interpolate_pos_embed
from extract.models.internvideo2_load import CheckpointError, infer_config, load_internvideo2
from extract.store import count_snippets, open_store

pytestmark = pytest.mark.timeout(300)
FIXTURE = Path(__file__).parent / "fixtures" / "internvideo2_b14_k400_f8.json"
TINY = dict(embed_dim=48, depth=3, num_heads=4, mlp_ratio=4.0, img_size=28, num_frames=4, attn_pool_num_heads=4,
            clip_embed_dim=24, num_classes=5)


def tiny_model(seed=0, **fields) -> InternVideo2:
    torch.manual_seed(seed)
    model = InternVideo2(InternVideo2Config(**{**TINY, **fields})).eval()
    with torch.no_grad():  # layer scale far from its 1e-5 init, so the blocks matter in the checks
        for name, p in model.named_parameters():
            if name.endswith("gamma") or "norm" in name:
                p.copy_(torch.rand_like(p) + 0.5)
    return model


def test_the_public_layout_builds_key_for_key():
    keys = {k: tuple(v) for k, v in json.loads(FIXTURE.read_text())["keys"].items()}
    cfg = infer_config(keys, FIXTURE)
    assert (cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.num_frames, cfg.num_classes) == (768, 12, 12, 8, 400)
    with torch.device("meta"):
        ours = {k: tuple(v.shape) for k, v in InternVideo2(cfg).state_dict().items()}
    assert ours == keys


def _save(state, path: Path, form: str) -> Path:
    if form == "stage1-model":
        torch.save({"model": state}, path / "a.pth")
        return path / "a.pth"
    if form == "module-backbone":
        torch.save({"module": {f"backbone.{k}": v for k, v in state.items()}}, path / "b.pt")
        return path / "b.pt"
    if form == "stage2":
        full = {f"vision_encoder.{k}": v for k, v in state.items()}
        full.update({"vision_encoder.clip_decoder.0.head.weight": torch.zeros(2), "vision_encoder.img_pos_embed":
                     torch.zeros(1, 17, 48), "vision_proj.weight": torch.zeros(3, 3), "text_encoder.x": torch.zeros(1)})
        torch.save(full, path / "s2.pt")
        return path / "s2.pt"
    from safetensors.torch import save_file  # sharded, as the 6B stage-2 release

    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for shard, keys in shards.items():
        save_file({f"vision_encoder.{k}": state[k].contiguous() for k in keys}, str(path / shard))
    index = {"weight_map": {f"vision_encoder.{k}": shard for shard, keys in shards.items() for k in keys}}
    (path / "model.safetensors.index.json").write_text(json.dumps(index))
    return path


@pytest.mark.parametrize("form", ["stage1-model", "module-backbone", "stage2", "sharded-safetensors"])
def test_every_published_file_form_loads_strictly_to_the_same_features(tmp_path, form):
    model = tiny_model()
    path = _save(model.state_dict(), tmp_path, form)
    loaded, report = load_internvideo2(path, num_heads=4, attn_pool_num_heads=4, img_size=28)
    x = torch.randn(2, 3, 4, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded.features(x), model.features(x), rtol=0, atol=0)
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    if form == "stage2":
        assert report.prefix == "vision_encoder." and sorted(report.ignored) == [
            "text_encoder.x", "vision_encoder.clip_decoder.0.head.weight", "vision_encoder.img_pos_embed",
            "vision_proj.weight"]


def test_a_checkpoint_that_does_not_fit_is_refused_by_name(tmp_path):
    state = tiny_model().state_dict()
    torch.save({**state, "blocks.0.attn.extra": torch.zeros(1)}, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match="unexpected \\['blocks.0.attn.extra'\\]"):
        load_internvideo2(tmp_path / "extra.pt", num_heads=4, attn_pool_num_heads=4, img_size=28)
    del state["blocks.1.ls2.gamma"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="missing \\['blocks.1.ls2.gamma'\\]"):
        load_internvideo2(tmp_path / "missing.pt", num_heads=4, attn_pool_num_heads=4, img_size=28)
    torch.save({"weird.blocks.0.attn.qkv.weight": torch.zeros(1)}, tmp_path / "prefix.pt")
    with pytest.raises(CheckpointError, match="unknown key prefix 'weird.'"):
        load_internvideo2(tmp_path / "prefix.pt")


def reference_features(state: dict, cfg: dict, x: torch.Tensor, layer: int) -> torch.Tensor:
    """The public forward written out in float64 from its formulas: explicit softmax attention,
    the public RMSNorm, q/k norms over all heads, tanh GELU, pos_embed at its own size."""
    s = {k: v.double() for k, v in state.items()}
    c, heads = cfg["embed_dim"], cfg["num_heads"]

    def rms(t, w):
        return w * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6))

    t = F.conv3d(x.double(), s["patch_embed.proj.weight"], s["patch_embed.proj.bias"], stride=(1, 14, 14))
    b = t.shape[0]
    t = t.flatten(3).permute(0, 2, 3, 1).reshape(b, -1, c)  # B x T x HW x C, frames first
    t = torch.cat([s["cls_token"].expand(b, -1, -1), t], 1) + s["pos_embed"]
    for i in range(layer):
        p = f"blocks.{i}."
        h = rms(t, s[p + "norm1.weight"])
        q, k, v = (h @ s[p + "attn.qkv.weight"].T).chunk(3, -1)
        q, k = rms(q, s[p + "attn.q_norm.weight"]), rms(k, s[p + "attn.k_norm.weight"])
        q, k, v = (z.reshape(b, -1, heads, c // heads).transpose(1, 2) for z in (q, k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // heads), -1) @ v
        att = att.transpose(1, 2).reshape(b, -1, c) @ s[p + "attn.proj.weight"].T + s[p + "attn.proj.bias"]
        t = t + s[p + "ls1.gamma"] * att
        h = rms(t, s[p + "norm2.weight"]) @ s[p + "mlp.fc1.weight"].T + s[p + "mlp.fc1.bias"]
        h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
        t = t + s[p + "ls2.gamma"] * (h @ s[p + "mlp.fc2.weight"].T + s[p + "mlp.fc2.bias"])
    return t[:, 1:].mean(1)


@pytest.mark.parametrize("layer", [1, 3])
def test_features_match_an_independent_float64_reference(layer):
    model = tiny_model().double()
    x = torch.randn(2, 3, 4, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        ours = model.features(x, layer)
    ref = reference_features(model.state_dict(), TINY, x, layer)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    assert model.resolve_layer(-1) == 3 and model.resolve_layer(-3) == 1
    with pytest.raises(ValueError, match="layer 4 is outside 1..3"):
        model.resolve_layer(4)


def test_features_do_not_depend_on_the_batch():
    model = tiny_model()
    x = torch.randn(3, 3, 8, 42, 42)  # another frame count and size than the checkpoint's: interpolated
    with torch.no_grad():
        batched = model.features(x)
        alone = torch.cat([model.features(x[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-6)


def test_position_embedding_interpolation():
    c, frames, grid = 3, 4, 2
    t_idx = torch.arange(frames).repeat_interleave(grid * grid).double()
    y_idx = torch.arange(grid).repeat_interleave(grid).repeat(frames).double()
    x_idx = torch.arange(grid).repeat(grid * frames).double()
    pos = torch.cat([torch.full((1, 1, c), 7.0, dtype=torch.float64),
                     torch.stack([t_idx, y_idx, x_idx], -1)[None]], 1)  # channels: t, y, x of each token
    assert interpolate_pos_embed(pos, frames, grid, (frames, grid, grid)) is pos
    out = interpolate_pos_embed(pos, frames, grid, (8, 4, 4))
    assert out.shape == (1, 1 + 8 * 16, c) and torch.equal(out[0, 0], pos[0, 0])
    tokens = out[0, 1:].reshape(8, 4, 4, c)  # (t, y, x) order
    assert torch.all(tokens[..., 0].diff(dim=0) >= 0) and torch.allclose(tokens[..., 0].std(dim=(1, 2)),
                                                                         torch.zeros(8, dtype=torch.float64))
    assert torch.all(tokens[..., 2].diff(dim=2) > 0) and torch.all(tokens[..., 1].diff(dim=1) > 0)
    torch.testing.assert_close(tokens[..., 2].mean(), torch.tensor(0.5, dtype=torch.float64))  # symmetric


def test_extract_internvideo2_writes_block_features_and_records_them(tmp_path):
    model = tiny_model()
    torch.save({"model": model.state_dict()}, tmp_path / "tiny.pth")
    # YAML 1.1 reads 1e-05 as a string; a config file's numbers are numbers
    (tmp_path / "tiny.yaml").write_text("num_heads: 4\nattn_pool_num_heads: 4\nimg_size: 28\ninit_values: 1e-05\n")
    videos = tmp_path / "videos"
    videos.mkdir()
    make_video(videos / "a", 23, fps=24.0, width=48, height=40)
    out = tmp_path / "store"
    assert main(["internvideo2", "--video-dir", str(videos), "--out", str(out), "--checkpoint",
                 str(tmp_path / "tiny.pth"), "--model-config", str(tmp_path / "tiny.yaml"), "--size", "28",
                 "--window", "8", "--stride", "4", "--snippet-frames", "4", "--layer", "-2", "--device", "cpu",
                 "--workers", "0"]) == 0
    with open_store(out) as store:
        feats = store.read("a")
        assert feats.shape == (count_snippets(23, 8, 4, "pad"), 48) and np.isfinite(feats).all()
        assert store.info.model["layer"] == 2 and store.info.preprocessing["frame_indices"] == [0, 2, 5, 7]
        assert "class token excluded" in store.info.preprocessing["pooled"]
    with pytest.raises(SystemExit, match="^error: layer 9 is outside 1..3"):
        main(["internvideo2", "--video-dir", str(videos), "--out", str(tmp_path / "bad"), "--checkpoint",
              str(tmp_path / "tiny.pth"), "--model-config", str(tmp_path / "tiny.yaml"), "--layer", "9",
              "--device", "cpu", "--workers", "0"])
    assert not (tmp_path / "bad").exists()  # refused before a store was created
    (tmp_path / "wrong.yaml").write_text("num_heads: four\n")
    with pytest.raises(SystemExit, match=r"^error: .*wrong\.yaml\.num_heads: expected a number, got 'four'$"):
        main(["internvideo2", "--video-dir", str(videos), "--out", str(tmp_path / "bad"), "--checkpoint",
              str(tmp_path / "tiny.pth"), "--model-config", str(tmp_path / "wrong.yaml"), "--device", "cpu"])
