"""Converters from each native format, anonymisation, and the checker."""
import json

import pytest

from extract.annotations import AnnotationError, load_annotations
from extract.annotations.check import check
from extract.annotations.convert import CONVERTERS, ConvertOptions
from extract.cards import load_card
from extract.cli import main

THUMOS = load_card("thumos14").classes


def _convert(fmt, path, **opts):
    return CONVERTERS[fmt](path, ConvertOptions(**opts))


def test_activitynet_json_remapped_to_the_card(tmp_path):
    src = tmp_path / "anet.json"
    src.write_text(json.dumps({"version": "1.3", "database": {
        "v1": {"subset": "validation", "duration": 20.0, "fps": 30,
               "annotations": [{"label": "HighJump", "label_id": 1, "segment": [1.0, 2.5]}]}}}))
    result = _convert("activitynet", src, classes=THUMOS)
    ann = result.database["v1"].annotations[0]
    assert (ann.label, ann.label_id, ann.segment) == ("HighJump", 11, (1.0, 2.5))
    assert result.classes == THUMOS


def test_thumos_txt(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "HighJump_val.txt").write_text("video_validation_0000051 15.2 21.0\n"
                                                       "video_validation_0000051 30.0 31.5\n")
    (tmp_path / "ann" / "BaseballPitch_test.txt").write_text("video_test_0000004  2.5  6.0\n\n")
    (tmp_path / "ann" / "Ambiguous_test.txt").write_text("video_test_0000004 7 8\n")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"database": {"video_test_0000004": {"subset": "test", "duration": 25.0,
                                                                    "fps": 30.0, "annotations": []}}}))
    result = _convert("thumos-txt", tmp_path / "ann", classes=THUMOS, meta=load_annotations(meta).database)
    assert result.database["video_validation_0000051"].subset == "validation"
    assert [a.segment for a in result.database["video_validation_0000051"].annotations] == [(15.2, 21.0), (30.0, 31.5)]
    test = result.database["video_test_0000004"]
    assert (test.subset, test.duration, test.fps) == ("test", 25.0, 30.0)
    assert [a.label for a in test.annotations] == ["BaseballPitch"]  # Ambiguous is not a class


def test_charades_csv(tmp_path):
    src = tmp_path / "Charades_v1_test.csv"
    src.write_text("id,subject,scene,actions,length\n"
                   "46GP8,HR43,Kitchen,c092 11.90 21.20;c147 0.00 12.60,24.83\n"
                   "N11GT,0KZ7,Stairs,,30.0\n")
    result = _convert("charades-csv", src, classes=load_card("charades").classes, fps=24.0)
    video = result.database["46GP8"]
    assert video.subset == "testing" and video.duration == pytest.approx(24.83) and video.fps == 24.0
    assert [(a.label_id, a.label, a.segment) for a in video.annotations] == [
        (92, "Watching/Looking outside of a window", (11.9, 21.2)), (147, "Someone is cooking something", (0.0, 12.6))]
    assert result.database["N11GT"].annotations == []


def test_ms_temba_seconds_and_tsu_frames(tmp_path):
    src = tmp_path / "multithumos.json"
    src.write_text(json.dumps({"vid": {"subset": "training", "duration": 40.0, "actions": [[3, 1.5, 4.0]]}}))
    result = _convert("ms-temba", src)
    assert result.database["vid"].annotations[0].segment == (1.5, 4.0)
    assert result.classes == ["class_0", "class_1", "class_2", "class_3"]
    tsu = tmp_path / "smarthome_CS_51.json"
    tsu.write_text(json.dumps({"P02T01C06": {"subset": "testing", "duration": 5000, "actions": [[7, 250, 500]]}}))
    with pytest.raises(AnnotationError, match="give --fps"):
        _convert("tsu", tsu)
    video = _convert("tsu", tsu, fps=25.0).database["P02T01C06"]
    assert video.duration == 200.0 and video.annotations[0].segment == (10.0, 20.0)


@pytest.mark.parametrize("wrapped", [False, True])
def test_swallow_flat_or_wrapped(tmp_path, wrapped):
    clips = {"Zhang San_20230101_1": {"subset": "Train", "duration": 32.0, "annotations": [
        {"label": "UESOpen", "segment": [3.0, 3.6], "segment(frames)": [90, 108], "label_id": 0}]}}
    data = {"taxonomy": [], "version": "1", "database": clips} if wrapped else clips
    (tmp_path / "s.json").write_text(json.dumps(data))
    result = _convert("swallow", tmp_path / "s.json", classes=load_card("vfss_swallow").classes)
    video = result.database["Zhang San_20230101_1"]
    assert video.fps == 29.97 and video.annotations[0].label_id == 4  # renumbered by name


def test_label_list_and_smg_finelabels(tmp_path):
    (tmp_path / "train_list.txt").write_text("clip,label\nclips/a.mp4 3\nclips/b.mp4,0\n")
    result = _convert("label-list", tmp_path / "train_list.txt")
    assert result.database["clips/a.mp4"].subset == "train"
    assert result.database["clips/a.mp4"].annotations[0].segment is None
    assert result.database["clips/a.mp4"].annotations[0].label_id == 3
    (tmp_path / "smg").mkdir()
    (tmp_path / "smg" / "Sample0001_finelabels.csv").write_text("1,30,90\n17,100,160\n")
    smg = _convert("smg-finelabels", tmp_path / "smg", fps=30.0, subset="train")
    anns = smg.database["Sample0001"].annotations
    assert [(a.label_id, a.segment) for a in anns] == [(0, (1.0, 3.0)), (16, (100 / 30, 160 / 30))]


def test_canonical_round_trip_and_duplicate_ids(tmp_path):
    src = tmp_path / "a.json"
    src.write_text('{"database": {"v": {"subset": "test", "duration": 3, "fps": 30, "annotations": []}, '
                   '"v": {"subset": "test", "duration": 4, "annotations": []}}}')
    with pytest.raises(AnnotationError, match="'v' appears twice"):
        load_annotations(src)


def test_convert_cli_with_anonymize_is_stable(tmp_path, capsys):
    clips = {"Li Si_20230101_120000_1": {"subset": "Test", "duration": 32.0, "annotations": [
        {"label": "UESOpen", "segment": [3.0, 3.6]}]}}
    (tmp_path / "s.json").write_text(json.dumps(clips))
    args = ["annotations", "convert", "--from", "swallow", str(tmp_path / "s.json"), "--dataset", "vfss_swallow",
            "--anonymize", "--mapping", str(tmp_path / "map.json")]
    assert main(args + ["--out", str(tmp_path / "a.json")]) == 0
    assert main(args + ["--out", str(tmp_path / "b.json")]) == 0
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert a == b and "Li Si" not in (tmp_path / "a.json").read_text()
    (new_id,) = a["database"]
    mapping = json.loads((tmp_path / "map.json").read_text())
    assert mapping["ids"] == {new_id: "Li Si_20230101_120000_1"}
    assert (tmp_path / "map.json").stat().st_mode & 0o077 == 0


def _bad_file(tmp_path):
    database = {
        "ok": {"subset": "test", "duration": 10.0, "fps": 30.0,
               "annotations": [{"label": "HighJump", "label_id": 11, "segment": [1.0, 2.0]}]},
        "dup": {"subset": "test", "duration": 10.0, "fps": 30.0, "annotations": [
            {"label": "HighJump", "label_id": 11, "segment": [1.0, 2.0]},
            {"label": "HighJump", "label_id": 11, "segment": [1.0004, 2.0]}]},
        "zero": {"subset": "test", "duration": 10.0, "fps": 30.0,
                 "annotations": [{"label": "Diving", "label_id": 7, "segment": [3.0, 3.0]}]},
        "inverted": {"subset": "test", "duration": 10.0, "fps": 30.0,
                     "annotations": [{"label": "Diving", "label_id": 7, "segment": [5.0, 4.0]}]},
        "outside": {"subset": "test", "duration": 10.0, "fps": 30.0,
                    "annotations": [{"label": "Diving", "label_id": 7, "segment": [12.0, 13.0]}]},
        "overhang": {"subset": "test", "duration": 10.0, "fps": 30.0,
                     "annotations": [{"label": "Diving", "label_id": 7, "segment": [9.0, 10.5]}]},
        "unknown": {"subset": "test", "duration": 10.0, "fps": 30.0,
                    "annotations": [{"label": "Curling", "label_id": 20, "segment": [1.0, 2.0]}]},
        "nometa": {"subset": "test", "annotations": []},
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"database": database}))
    return path


def test_check_names_every_problem(tmp_path):
    result = load_annotations(_bad_file(tmp_path))
    findings = {(f.level, f.video, f.message.split(":")[-1].strip().split(" ")[0]) for f in
                check(result, classes=THUMOS, store_ids={"ok", "dup", "extra"})}
    text = "\n".join(str(f) for f in check(result, classes=THUMOS, store_ids={"ok", "dup", "extra"}))
    assert "warning: video 'dup': annotation 1 (HighJump): duplicate" in text
    assert "warning: video 'zero': annotation 0 (Diving): zero-length segment" in text
    assert "error: video 'inverted': annotation 0 (Diving): inverted segment" in text
    assert "error: video 'outside': annotation 0 (Diving): starts at 12.0s, after the video ends" in text
    assert "warning: video 'overhang': annotation 0 (Diving): ends 0.500s after the video" in text
    assert "error: video 'unknown': annotation 0 (Curling): label 'Curling' is not a class" in text
    assert "error: video 'nometa': missing 'duration'" in text and "warning: video 'nometa': missing 'fps'" in text
    assert "error: video 'zero': not in the feature store" in text
    assert "warning: video 'extra': in the feature store but not in the annotations" in text
    assert not any(f[1] == "ok" for f in findings)


def test_check_cli_exit_codes(tmp_path, capsys):
    assert main(["annotations", "check", str(_bad_file(tmp_path)), "--dataset", "thumos14"]) == 1
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"database": {"ok": {"subset": "test", "duration": 10.0, "fps": 30.0,
                    "annotations": [{"label": "HighJump", "label_id": 11, "segment": [1.0, 2.0]}]}}}))
    # label_id 11 is HighJump's place in the card, but the file carries no class list of its own
    assert main(["annotations", "check", str(good), "--dataset", "thumos14", "--json"]) == 0
