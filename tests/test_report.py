"""``python -m detect report``: a self-contained page, checked in a real browser (headless Chromium
through Selenium) when one is installed; without one the browser test is skipped, saying why."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from detect.cli import main
from detect.demo import make_sample
from detect.engine.score import score_file


def _run_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A finished run's files (no checkpoint) over three sample videos, with noisy detections."""
    video_dir, annotations = make_sample(tmp_path / "sample", videos=3)
    database = json.loads(annotations.read_text())["database"]
    for entry in database.values():
        entry["subset"] = "test"
    annotations.write_text(json.dumps({"classes": ["flash", "slide"], "database": database}))
    rng = np.random.default_rng(0)
    results = {vid: [{"label": a["label"] if k else "slide", "score": float(rng.uniform(0.2, 1.0)),
                      "segment": [a["segment"][0] + float(rng.normal(0, 0.3)), a["segment"][1]]}
                     for a in entry["annotations"] for k in range(2)] for vid, entry in database.items()}
    run = tmp_path / "run"
    run.mkdir()
    dets = run / "test_detections.json"
    dets.write_text(json.dumps({"results": results}))
    _, test = score_file(annotations, dets, "test")
    (run / "summary.json").write_text(json.dumps({"task": "segments", "metric": "average_mAP", "test": test,
                                                  "files": [str(dets)]}))
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"annotations": str(annotations), "test_split": "test"},
                                                     "model": {"name": "actionmamba-dbm"}}))
    (run / "log.jsonl").write_text("".join(json.dumps({"epoch": e, "step": 3 * e + 3, "final_loss": 1.0 / (e + 1),
                                                       "lr": 1e-4, **({"val_average_mAP": 0.1 * e} if e % 2 else {})})
                                           + "\n" for e in range(6)))
    return run, video_dir


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    run, videos = _run_folder(tmp)
    out = tmp / "report.html"
    assert main(["report", str(run), "--videos", str(videos), "--out", str(out)]) == 0
    return out


def test_page_is_self_contained(report):
    html = report.read_text()
    assert not re.search(r'(src|href)="(https?:)?//', html), "the page must not load anything from the network"
    assert html.count("<figure>") >= 6 and "data:image/jpeg;base64," in html
    for heading in ("Config and feature recipe", "Metrics", "Per-class AP", "Precision-recall", "Videos",
                    "Error analysis", "Training curves"):
        assert f">{heading}</h2>" in html
    images = re.findall(r"<img [^>]*>", html)
    assert images and all('alt="frame of ' in img for img in images)


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 1
    assert "has no summary.json" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            driver = shutil.which("chromedriver")
            if driver:
                return shutil.which(name), driver
    return None


def test_page_renders_in_a_real_browser(report):
    found = _chromium()
    if found is None:
        pytest.skip("no Chromium with chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    selenium = pytest.importorskip("selenium", reason="selenium is in the dev extra")
    from selenium import webdriver
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    assert selenium
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=found[1]))
    try:
        driver.get(report.as_uri())
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        figures = driver.find_elements(By.CSS_SELECTOR, "figure")
        assert len(figures) >= 6
        for svg in driver.find_elements(By.CSS_SELECTOR, "svg.figure, svg.timeline"):
            assert svg.size["width"] > 100 and svg.size["height"] > 50
        for img in driver.find_elements(By.CSS_SELECTOR, "img"):
            assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 0
        tip = driver.find_element(By.ID, "tip")
        assert not tip.is_displayed()
        detection = driver.find_elements(By.CSS_SELECTOR, "rect.det")[0]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", detection)
        ActionChains(driver).move_to_element(detection).perform()
        assert tip.is_displayed()
        score = re.search(r"score (\d\.\d{3})", detection.get_attribute("aria-label")).group(1)
        assert f"score {score}" in tip.text
        caption = driver.find_elements(By.CSS_SELECTOR, "#videos figcaption")[0]
        ActionChains(driver).move_to_element(caption).perform()
        assert not tip.is_displayed()
        driver.execute_script("arguments[0].focus()", detection)   # keyboard users get the same
        assert tip.is_displayed() and f"score {score}" in tip.text
    finally:
        driver.quit()
