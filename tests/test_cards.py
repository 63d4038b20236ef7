"""Every dataset card validates against the schema, and the schema catches mistakes."""
import pytest
import yaml

from extract.cards import CardError, cards_dir, list_cards, load_card, parse_card

EXPECTED = {"thumos14", "activitynet", "hacs", "fineaction", "charades", "tsu", "multithumos", "vfss_swallow",
            "smg", "imigue", "ma52"}


def test_all_cards_present_and_valid():
    assert set(list_cards()) == EXPECTED
    for name in EXPECTED:
        card = load_card(name)
        assert card.id == name and card.num_classes > 0
        assert card.classes is None or len(card.classes) == card.num_classes


@pytest.mark.parametrize("name,tiou", [("thumos14", [0.3, 0.4, 0.5, 0.6, 0.7]),
                                       ("vfss_swallow", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])])
def test_protocol_facts(name, tiou):
    assert load_card(name).evaluation["tiou"] == tiou


def test_anet_family_thresholds_and_feature_grids():
    for name in ("activitynet", "hacs", "fineaction"):
        card = load_card(name)
        assert card.evaluation["tiou"] == pytest.approx([0.5 + 0.05 * i for i in range(10)])
    fs = load_card("thumos14").feature_set("cg1177/thumos14_internvideo2_6b_w16_s4")
    assert (fs.window, fs.stride, fs.fps, fs.dim, fs.prefix_suffix) == (16, 4, "native", 3200, ("", "_spatial_feature"))
    assert load_card("activitynet").feature_sets[0].prefix_suffix == ("v_", "_spatial_pool_feature_6")
    assert load_card("charades").evaluation == {"metric": "frame-map", "mode": "full"}
    assert load_card("tsu").evaluation["mode"] == "ms-tct-25"
    assert load_card("smg").evaluation["topk"] == [1, 5]


def _thumos():
    return yaml.safe_load((cards_dir() / "thumos14.yaml").read_text())


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.pop("task"), "missing field 'task'"),
    (lambda d: d.update(task="tracking"), "'task' must be one of"),
    (lambda d: d.update(num_classes=21), "'classes' has 20 names"),
    (lambda d: d["classes"].__setitem__(1, "BaseballPitch"), "19 distinct"),
    (lambda d: d.update(classes=None), "classes_source"),
    (lambda d: d["evaluation"].update(tiou=[0.3, 1.2]), "'tiou' must be thresholds"),
    (lambda d: d["evaluation"].update(metric="frame-map"), "metric of a segment-detection dataset"),
    (lambda d: d["splits"].pop("val_holdout"), "val_holdout"),
    (lambda d: d["annotations"].update(format="xml"), "'format' must be one of"),
    (lambda d: d["feature_sets"][0].update(file_pattern="x.npy"), "must contain {id}"),
    (lambda d: d["feature_sets"][0].update(window=True), "'window' must be int"),
    (lambda d: d.update(colour="blue"), "unknown fields"),
])
def test_schema_rejects_mistakes(mutate, message):
    d = _thumos()
    mutate(d)
    with pytest.raises(CardError, match=message):
        parse_card(d, "thumos14.yaml")


def test_unknown_card_lists_the_known_ones():
    with pytest.raises(CardError, match="no dataset card 'thumos15'.*thumos14"):
        load_card("thumos15")
