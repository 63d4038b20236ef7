"""Clinical videos (file names with patient names) extracted under the ids that
`extract annotations convert --anonymize` gave their annotations, with no trace of the names."""
import json

from test_extract_skeleton import traced
from videos import make_video

from extract.annotations import AnnotationSet, VideoAnnotations
from extract.annotations.anonymize import anonymize
from extract.cli import main
from extract.store import open_store


def test_stores_use_the_annotations_anonymised_ids_and_never_the_names(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    make_video(videos / "DOE_JANE_20240101_0930", 12, fps=30.0, width=64, height=48)
    (videos / "SMITH_JOHN_20240202_1015.mp4").write_bytes(b"not a video")
    mapping = tmp_path / "ids.mapping.json"
    names = ["DOE_JANE_20240101_0930", "SMITH_JOHN_20240202_1015"]
    ann = anonymize(AnnotationSet({n: VideoAnnotations("Test", 0.4, 30.0) for n in names}, ["AllTime"]), mapping)
    out = tmp_path / "maps"
    code = main(["skeleton", "--video-dir", str(videos), "--out", str(out), "--pose", "vfss", "--pose-weights",
                 str(traced(tmp_path / "tiny.pt")), "--frame-size", "64", "--device", "cpu", "--workers", "0",
                 "--anonymize", str(mapping), "--keep-going"])
    assert code == 0
    with open_store(out) as maps, open_store(tmp_path / "maps_pose") as pose:
        assert set(maps.ids) <= set(ann.database) and len(maps.ids) == 1
        assert set(pose.failures) <= set(ann.database) and len(pose.failures) == 1
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".json", ".jsonl", ".h5")
              and p != mapping and any(n.encode() in p.read_bytes() or n.split("_")[0].encode() in p.read_bytes()
                                       for n in names)]
    assert leaked == []
    assert set(json.loads(mapping.read_text())["ids"].values()) == set(names)  # the private mapping has them
