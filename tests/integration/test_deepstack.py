"""POST /v1/vision/detection: the DeepStack / CodeProject.AI detection API that
Frigate, Blue Iris, Home Assistant and Agent DVR send frames to."""
import time

import httpx
import pytest

from conftest import photo, png_bytes

DS = "/v1/vision/detection"
STREET = "opencv_scenetext01.jpg"  # 800x600: a sign, two people, a car


def ds(s, image=None, key=None, headers=None, **fields):
    data = dict(fields)
    if key is not None:
        data["api_key"] = key
    files = {"image": ("frame.jpg", image, "image/jpeg")} if image is not None else {"other": ("x", b"x")}
    return httpx.post(s.url + DS, data=data, files=files, headers=headers or {}, timeout=60)


def test_street_photo_answers_like_deepstack(server):
    r = ds(server, photo(STREET), key=server.key)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["success"] is True and j["count"] == len(j["predictions"]) > 0
    labels = [p["label"] for p in j["predictions"]]
    assert "car" in labels and labels.count("person") >= 2, labels
    confs = [p["confidence"] for p in j["predictions"]]
    assert confs == sorted(confs, reverse=True) and min(confs) >= 0.4
    for p in j["predictions"]:
        assert set(p) == {"label", "confidence", "x_min", "y_min", "x_max", "y_max"}
        assert all(type(p[k]) is int for k in ("x_min", "y_min", "x_max", "y_max"))
        assert 0 <= p["x_min"] < p["x_max"] <= 800 and 0 <= p["y_min"] < p["y_max"] <= 600
    assert type(j["inferenceMs"]) is int and type(j["processMs"]) is int
    assert 0 <= j["inferenceMs"] <= j["processMs"]


def test_min_confidence_and_header_key(server):
    low = ds(server, photo(STREET), headers={"X-API-Key": server.key}, min_confidence="0.05").json()
    high = ds(server, photo(STREET), headers={"Authorization": f"Bearer {server.key}"}, min_confidence="0.8").json()
    assert low["success"] and high["success"]
    assert low["count"] > high["count"]
    assert all(p["confidence"] >= 0.8 for p in high["predictions"])
    assert min(p["confidence"] for p in low["predictions"]) < 0.4


@pytest.mark.parametrize("case,status", [("no_key", 401), ("bad_key", 401), ("no_image", 400),
                                         ("not_image", 400), ("bad_conf", 400)])
def test_errors_have_deepstack_shape(server, case, status):
    img = photo(STREET)
    r = {"no_key": lambda: ds(server, img),
         "bad_key": lambda: ds(server, img, key="sk-not-a-key"),
         "no_image": lambda: ds(server, None, key=server.key),
         "not_image": lambda: ds(server, b"this is not an image", key=server.key),
         "bad_conf": lambda: ds(server, img, key=server.key, min_confidence="2")}[case]()
    assert r.status_code == status, r.text
    j = r.json()
    assert j["success"] is False and j["code"] == status and isinstance(j["error"], str) and j["error"]


def test_too_large_and_rate_limited(start_server):
    s = start_server("--max-file-size", "1000")
    r = ds(s, png_bytes(200, 200), key=s.key)
    assert r.status_code == 413 and r.json()["code"] == 413 and r.json()["success"] is False
    kid = next(line.split()[0] for line in s.keys("list").splitlines()[1:] if line.split()[2] == "test")
    s.keys("update", kid, "--rate", "1/h", "--burst", "1")
    time.sleep(0.5)  # a running server applies a key change within 0.2 s (the key cache's poll)
    codes = [ds(s, png_bytes(32, 32, pixel=lambda x, y: (0, 0, 0)), key=s.key).status_code for _ in range(2)]
    assert codes == [200, 429]
    r = ds(s, png_bytes(32, 32, pixel=lambda x, y: (0, 0, 0)), key=s.key)
    assert r.json() == {"success": False, "error": r.json()["error"], "code": 429} and r.headers.get("retry-after")


def test_get_is_405(server):
    r = httpx.get(server.url + DS)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
