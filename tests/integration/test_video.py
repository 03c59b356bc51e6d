"""Video files through the real binary: clips made here with ffmpeg from the
test photos (a camera panning across the scikit-image astronaut while a
footballer cut from opencv's messi5 walks in), in H.264/MP4 and VP9/WebM;
frame lines in order, ByteTrack ids that hold, the done line's video and
tracks, truncated files and hostile ones (huge frames in the header, a flood
of tiny frames, an index claiming a billion frames, a looping edit list)."""
import json
import shutil
import struct
import subprocess
import time

import httpx
import pytest

from conftest import SIGHTD, V1, multipart, node_bin, photo_path, png_bytes  # noqa: F401 (node_bin: a fixture)
from fake_openai import FakeOpenAI
from test_web import playwright_dir  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                reason="ffmpeg (Debian) makes the clips: scripts/bootstrap --test installs it")

FPS, SECONDS = 25, 6


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=120)


def walk_args(seconds=SECONDS):
    """Inputs and filter of the walking clip: 640x360, a gray studio with the
    astronaut (a person in every frame) and the camera panning right; a second
    person walks in from the right edge after about a second."""
    astro = photo_path("skimage_astronaut.png")
    messi = photo_path("opencv_messi5.jpg")
    graph = ("[1:v]scale=480:480[a];[0:v][a]overlay=0:0[bg];"
             "[2:v]crop=56:104:0:77,scale=112:208[w];"
             "[bg]crop=640:360:x='t*20':y=60[cam];"
             "[cam][w]overlay=x='660-t*50':y=110,format=yuv420p")
    return ["-f", "lavfi", "-i", f"color=c=0x707070:s=1280x480:r={FPS}", "-loop", "1", "-i", str(astro),
            "-loop", "1", "-i", str(messi), "-filter_complex", graph, "-t", str(seconds), "-r", str(FPS)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    ffmpeg(*walk_args(), "-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart", str(d / "walk.mp4"))
    ffmpeg(*walk_args(), "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "600k",
           str(d / "walk.webm"))
    # Moov last (ffmpeg's default): what the edit-list crafting below needs.
    ffmpeg(*walk_args(2), "-c:v", "libx264", "-preset", "ultrafast", str(d / "short.mp4"))
    ffmpeg("-loop", "1", "-i", str(photo_path("skimage_astronaut.png")), "-vf", "scale=640:640,format=yuv420p",
           "-t", "3", "-r", "10", "-c:v", "libx264", "-preset", "ultrafast", str(d / "still.mp4"))
    # 30 000 frames of 16x16 in 3 s: a flood, in both containers.
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=16x16:r=10000", "-t", "3", "-c:v", "libx264", "-preset",
           "ultrafast", str(d / "flood.mp4"))
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=16x16:r=10000", "-t", "3", "-c:v", "libvpx", "-deadline",
           "realtime", "-cpu-used", "8", str(d / "flood.webm"))
    return d


def stream(server, name, data, meta, timeout=120):
    """The request's lines, each with the seconds since the request began."""
    t0 = time.monotonic()
    lines = []
    with httpx.stream("POST", server.url + V1, data={"api_key": server.key, "metadata": [json.dumps(meta)]},
                      files=[("files", (name, data, "application/octet-stream"))], timeout=timeout) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line:
                lines.append((json.loads(line), time.monotonic() - t0))
    return lines


def outcome(lines):
    """(frame lines, the file's done or error line), with the stream's shape checked."""
    evs = [e for e, _ in lines]
    assert evs[0]["status"] == "processing" and evs[-1]["status"] == "complete", evs[:1] + evs[-1:]
    frames = [e for e in evs if e["status"] == "frame"]
    ends = [e for e in evs if e["status"] in ("done", "error")]
    assert len(ends) == 1
    # Every frame line comes between processing and the file's last line.
    assert evs.index(ends[0]) == len(evs) - 2 and all(evs.index(f) < len(evs) - 2 for f in frames)
    return frames, ends[0]


def person_ids(frame):
    return [d["track_id"] for d in frame["result"]["yolo"]["detections"] if d["class"] == "person"]


def check_walk(frames, done, codec):
    assert len(frames) == SECONDS * 5  # 5 frames a second by default
    assert [f["frame"] for f in frames] == [5 * i for i in range(len(frames))]
    assert [f["time_ms"] for f in frames] == [200 * i for i in range(len(frames))]
    assert all(f["index"] == 0 and f["filename"].startswith("walk") for f in frames)
    v = done["result"]["video"]
    assert (v["frames"], v["width"], v["height"], v["codec"], v["fps"]) == (len(frames), 640, 360, codec, 25)
    assert abs(v["duration_ms"] - SECONDS * 1000) <= 100
    # The astronaut is in every frame: the track of the first frame's person.
    first = person_ids(frames[0])
    assert len(first) == 1 and first[0] is not None
    kept = sum(first[0] in person_ids(f) for f in frames)
    assert kept >= 0.9 * len(frames), kept
    ids = {i for f in frames for i in person_ids(f) if i is not None}
    assert 2 <= len(ids) <= 2 + 2, ids  # two people, plus two at most
    # The walker enters from the right after a second and is tracked from then on.
    walker = [i for i in ids if i != first[0]]
    tracks = {t["track_id"]: t for t in done["result"]["tracks"]}
    astro = tracks[first[0]]
    assert astro["class"] == "person" and astro["first_ms"] == 0 and astro["last_ms"] == 200 * (len(frames) - 1)
    assert astro["frames"] >= 0.9 * len(frames) and 0.5 < astro["best_confidence"] <= 1
    longest = max(walker, key=lambda i: tracks[i]["frames"])
    assert 600 <= tracks[longest]["first_ms"] <= 2500 and tracks[longest]["frames"] >= 15
    assert done["result"]["timing_ms"]["track"] >= 0


def test_h264_mp4_frames_in_order_with_tracks(server, clips):
    frames, done = outcome(stream(server, "walk.mp4", (clips / "walk.mp4").read_bytes(),
                                  {"is_yolo": True, "track": True}))
    assert done["status"] == "done", done
    check_walk(frames, done, "h264")


def test_vp9_webm_frames_in_order_with_tracks(server, clips):
    frames, done = outcome(stream(server, "walk.webm", (clips / "walk.webm").read_bytes(),
                                  {"is_yolo": True, "track": True}))
    assert done["status"] == "done", done
    check_walk(frames, done, "vp9")


def test_fps_and_max_frames(server, clips):
    data = (clips / "walk.mp4").read_bytes()
    # Every frame, capped at 12.
    frames, done = outcome(stream(server, "walk.mp4", data, {"is_yolo": True, "fps": 0, "max_frames": 12}))
    assert [f["frame"] for f in frames] == list(range(12))
    assert [f["time_ms"] for f in frames] == [40 * i for i in range(12)]
    assert done["result"]["video"]["frames"] == 12 and "tracks" not in done["result"]
    # Two a second: the first frame at or after each half second (frames are
    # 40 ms apart); no tracking: no track_id.
    frames, done = outcome(stream(server, "walk.mp4", data, {"is_yolo": True, "fps": 2}))
    assert [f["time_ms"] for f in frames] == [-(-500 * i // 40) * 40 for i in range(12)]
    assert all("track_id" not in d for f in frames for d in f["result"]["yolo"]["detections"])


def test_still_clip_keeps_one_track(server, clips):
    frames, done = outcome(stream(server, "still.mp4", (clips / "still.mp4").read_bytes(),
                                  {"is_yolo": True, "track": True}))
    assert done["status"] == "done" and len(frames) == 15
    ids = [person_ids(f) for f in frames]
    assert all(i == [1] for i in ids), ids
    assert [t["track_id"] for t in done["result"]["tracks"] if t["class"] == "person"] == [1]


def test_truncated_file_gives_its_frames_then_its_error(server, clips):
    data = (clips / "walk.mp4").read_bytes()
    lines = stream(server, "cut.mp4", data[: len(data) * 85 // 100], {"is_yolo": True})
    frames, end = outcome(lines)
    assert end["status"] == "error" and end["error"]["code"] == "corrupt_video", end
    assert 5 <= len(frames) < SECONDS * 5
    assert [f["frame"] for f in frames] == [5 * i for i in range(len(frames))]
    assert lines[-1][0]["failed"] == 1
    # WebM too (its container has no index to tell: the declared duration does).
    data = (clips / "walk.webm").read_bytes()
    frames, end = outcome(stream(server, "cut.webm", data[: len(data) * 6 // 10], {"is_yolo": False}))
    assert end["status"] == "error" and end["error"]["code"] == "corrupt_video" and 5 <= len(frames) < 30, end


def huge_frames(mp4):
    """The H.264 sample entry says 65535x65535 (4.3 gigapixels a frame)."""
    b = bytearray(mp4)
    at = b.find(b"avc1", b.find(b"stsd")) + 4 + 24
    struct.pack_into(">HH", b, at, 65535, 65535)
    return bytes(b)


def billion_frames(mp4):
    """The time-to-sample table claims a billion frames."""
    b = bytearray(mp4)
    struct.pack_into(">I", b, b.find(b"stts") + 12, 1_000_000_000)
    return bytes(b)


def boxes(b, start, end):
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack_from(">I4s", b, i)
        if size < 8 or i + size > end:
            return
        yield i, size, kind
        i += size


def looping_edit_list(mp4, n=100_000):
    """An edit list of n entries, each replaying the whole clip (moov last)."""
    b = bytearray(mp4)
    moov, msize = next((i, s) for i, s, k in boxes(b, 0, len(b)) if k == b"moov")
    assert moov + msize == len(b)
    trak, tsize = next((i, s) for i, s, k in boxes(b, moov + 8, moov + msize) if k == b"trak")
    tkhd, ksize = next((i, s) for i, s, k in boxes(b, trak + 8, trak + tsize) if k == b"tkhd")
    entries = struct.pack(">IiHH", 2000, 0, 1, 0) * n
    elst = struct.pack(">I4sII", 16 + len(entries), b"elst", 0, n) + entries
    edts = struct.pack(">I4s", 8 + len(elst), b"edts") + elst
    b[tkhd + ksize:tkhd + ksize] = edts
    struct.pack_into(">I", b, trak, tsize + len(edts))
    struct.pack_into(">I", b, moov, msize + len(edts))
    return bytes(b)


@pytest.mark.parametrize("kind", ["huge_frames", "billion_frames", "flood_mp4", "flood_webm", "edit_list"])
def test_hostile_files_end_within_a_second(server, clips, kind):
    if kind == "huge_frames":
        data, codes = huge_frames((clips / "walk.mp4").read_bytes()), {"video_too_large"}
    elif kind == "billion_frames":
        data, codes = billion_frames((clips / "walk.mp4").read_bytes()), {"video_too_many_frames"}
    elif kind.startswith("flood"):
        data, codes = (clips / f"flood.{kind[6:]}").read_bytes(), {"video_too_many_frames"}
    else:
        data, codes = looping_edit_list((clips / "short.mp4").read_bytes()), None
    lines = stream(server, "hostile", data, {"is_yolo": True})
    frames, end = outcome(lines)
    t_processing = next(t for e, t in lines if e["status"] == "processing")
    t_end = next(t for e, t in lines if e is end)
    assert t_end - t_processing < 1.0, (kind, t_end - t_processing)
    if codes is None:
        # The edit list is ignored: the clip's 10 frames, each decoded once.
        assert end["status"] == "done" and end["result"]["video"]["decoded_frames"] == 2 * FPS, end
        assert len(frames) == 10
    else:
        assert end["status"] == "error" and end["error"]["code"] in codes, end
        assert len(frames) <= 1


def test_limits_from_the_command_line(start_server, clips):
    s = start_server("--max-video-seconds", "3", "--max-frames", "4")
    frames, end = outcome(stream(s, "walk.mp4", (clips / "walk.mp4").read_bytes(), {"is_yolo": False}))
    assert end["status"] == "error" and end["error"]["code"] == "video_too_long" and not frames, end
    frames, end = outcome(stream(s, "short.mp4", (clips / "short.mp4").read_bytes(), {"is_yolo": False, "max_frames": 9}))
    assert end["status"] == "done" and len(frames) == 4  # a request may lower the cap, never raise it
    s2 = start_server("--max-pixels", "100000")
    frames, end = outcome(stream(s2, "walk.mp4", (clips / "walk.mp4").read_bytes(), {"is_yolo": False}))
    assert end["status"] == "error" and end["error"]["code"] == "video_too_large", end


@pytest.mark.parametrize("meta,where", [
    ({"fps": -1}, "fps"), ({"fps": "5"}, "fps"), ({"fps": 1000}, "fps"), ({"max_frames": 0}, "max_frames"),
    ({"max_frames": 2.5}, "max_frames"), ({"track": "yes"}, "track"), ({"track_stream": ""}, "track_stream"),
    ({"track_stream": "a b"}, "track_stream"), ({"track_stream": "x" * 65}, "track_stream")])
def test_invalid_video_metadata_is_422(server, meta, where):
    r = httpx.post(server.url + V1, data={"api_key": server.key, "metadata": [json.dumps({"is_yolo": True, **meta})]},
                   files=[("files", ("a.mp4", b"\0\0\0\x18ftypisom", "video/mp4"))])
    assert r.status_code == 422, r.text
    err = r.json()["detail"]
    assert err["code"] == "invalid_metadata" and where in err["message"], err


LLM_KEY = "sk-video-0123456789"


@pytest.fixture
def fake():
    f = FakeOpenAI(api_key=LLM_KEY)
    yield f
    f.close()


def ask(server, data, meta, query):
    """One video with a query: its lines, in order, each a dict."""
    form = multipart(server.key, [("short.mp4", data, "video/mp4")], [json.dumps(meta)], query=query)
    with httpx.Client(timeout=120) as c, c.stream("POST", server.url + V1, **form) as r:
        assert r.status_code == 200, r.read()
        return [json.loads(x) for x in r.iter_lines() if x.strip()]


def jpeg_rgb(data, w, h):
    """A JPEG's pixels (RGB rows), decoded by ffmpeg."""
    p = subprocess.run(["ffmpeg", "-v", "error", "-f", "jpeg_pipe", "-i", "-", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                       input=data, capture_output=True, check=True, timeout=60)
    assert len(p.stdout) == w * h * 3
    return p.stdout


def test_llm_on_a_video_asks_once_about_a_contact_sheet(start_server, fake, clips):
    sent = []

    def script(req):
        sent.append(req["body"]["messages"][1]["content"][1]["image_url"]["url"])
        return ("stream", ["Two people", ", one walks in."], {"usage": {"prompt_tokens": 900, "completion_tokens": 6,
                                                                          "total_tokens": 906}})
    fake.script = script
    s = start_server("--llm-url", fake.url, "--llm-model", fake.model, "--llm-max-image-side", "400",
                     "--llm-timeout", "20", env={"SIGHT_LLM_API_KEY": LLM_KEY})
    from test_limits import key_id, usage
    s.keys("update", key_id(s), "--quota-llm-tokens", "500/day")
    lines = ask(s, (clips / "short.mp4").read_bytes(), {"is_yolo": True, "track": True, "is_llm": True},
                "who walks in?")
    kinds = [m["status"] for m in lines]
    done = next(m for m in lines if m["status"] == "done")
    deltas = [i for i, k in enumerate(kinds) if k == "llm_delta"]
    frames = [i for i, k in enumerate(kinds) if k == "frame"]
    assert len(frames) >= 8 and deltas and max(frames) < min(deltas) and max(deltas) < kinds.index("done"), kinds
    assert "".join(lines[i]["delta"] for i in deltas) == "Two people, one walks in."
    llm = done["result"]["llm"]
    assert llm["provider"] == "openai" and llm["response"] == "Two people, one walks in."
    assert llm["usage"]["prompt_tokens"] == 900 and done["result"]["timing_ms"]["llm"] > 0
    assert done["result"]["video"]["frames"] == len(frames) and done["result"]["tracks"]
    # One request; its image is a 2x2 grid of 640x360 frames, each cell at most 400 / 2 on its long side.
    (req,) = fake.requests
    assert req["image"] == ("jpeg", 400, 226) and llm["image"] == {"width": 400, "height": 226}
    assert "Question: who walks in?" in req["text"] and "2x2 contact sheet of 4 frames" in req["text"]
    assert req["text"].count(" t=") == 4 and "- person (" in req["text"] and "#1 person" in req["text"]
    rgb = jpeg_rgb(__import__("base64").b64decode(sent[0].split(",", 1)[1]), 400, 226)

    def cell_mean(cx, cy):
        vals = [rgb[(y * 400 + x) * 3 + c] for y in range(cy * 113 + 10, cy * 113 + 100, 4)
                for x in range(cx * 200 + 10, cx * 200 + 190, 4) for c in range(3)]
        return sum(vals) / len(vals)
    means = [cell_mean(i % 2, i // 2) for i in range(4)]
    assert all(m > 60 for m in means), means  # every cell holds a frame (empty ones are near black)
    assert len({round(m) for m in means}) > 1, means  # and not the same one (the camera pans)
    # Usage counts the call as for an image; a spent token quota refuses the next video's call.
    day = usage(s)["usage"][-1]
    assert day["llm_calls"] == 1 and day["llm_prompt_tokens"] == 900 and day["llm_completion_tokens"] == 6
    lines = ask(s, (clips / "short.mp4").read_bytes(), {"is_yolo": True, "is_llm": True}, "who?")
    end = next(m for m in lines if m["status"] in ("done", "error"))
    assert end["status"] == "error" and end["error"]["code"] == "llm_quota_exceeded", end
    assert len(fake.requests) == 1


def test_llm_on_a_video_with_the_local_analyser(server, clips):
    lines = ask(server, (clips / "short.mp4").read_bytes(), {"is_llm": True}, "How many people are there?")
    done = next(m for m in lines if m["status"] in ("done", "error"))
    assert done["status"] == "done", done
    llm = done["result"]["llm"]
    assert llm["provider"] == "local" and "person" in llm["response"].lower(), llm
    # Detection ran on the kept frames for grounding only: the frame lines do not show it.
    assert "yolo" not in done["result"] and all("yolo" not in m["result"] for m in lines if m["status"] == "frame")


def test_heif_and_avif_brands_stay_images(server):
    """An ISO BMFF file with an image's brand is never handed to the video demuxer."""
    for brand in (b"heic", b"avif", b"mif1"):
        data = struct.pack(">I4s4sI4s", 24, b"ftyp", brand, 0, b"mif1") + b"\0" * 64
        frames, end = outcome(stream(server, "x", data, {"is_yolo": True}))
        assert end["status"] == "error" and not end["error"]["code"].endswith("video"), end


def test_detect_command_takes_videos(clips):
    r = subprocess.run([SIGHTD, "detect", str(clips / "short.mp4"), "--track"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["status"] for x in lines] == ["frame"] * 10 + ["done"]
    assert lines[-1]["result"]["video"]["frames"] == 10 and lines[-1]["result"]["tracks"]


def predict_image(server, data, meta, key=None):
    r = httpx.post(server.url + V1, data={"api_key": key or server.key, "metadata": [json.dumps(meta)]},
                   files=[("files", ("f.png", data, "image/png"))], timeout=60)
    assert r.status_code == 200, r.text
    done = [json.loads(x) for x in r.text.splitlines() if x][-2]
    assert done["status"] == "done", done
    return done["result"]["yolo"]["detections"]


def test_track_on_images_and_streams_between_requests(server):
    astro = photo_path("skimage_astronaut.png").read_bytes()
    messi = photo_path("opencv_messi5.jpg").read_bytes()
    # One image alone: each confident box is a track of its own, from 1.
    dets = predict_image(server, messi, {"is_yolo": True, "track": True})
    strong = [d["track_id"] for d in dets if d["confidence"] >= 0.6]
    assert sorted(strong) == list(range(1, len(strong) + 1)) and len(strong) >= 3
    assert all(d["track_id"] is None for d in dets if d["confidence"] < 0.5)
    # A stream: an empty frame first, then the astronaut: her first sight
    # (not the stream's first frame) starts a track that her second confirms.
    gray = png_bytes(320, 240, pixel=lambda x, y: (128, 128, 128))
    cam1 = {"is_yolo": True, "track_stream": "cam-1"}
    assert predict_image(server, gray, cam1) == []
    assert [d["track_id"] for d in predict_image(server, astro, cam1)] == [None]
    again = [d["track_id"] for d in predict_image(server, astro, cam1)]
    assert again == [1]
    # Another name, or another key with the same name: trackers of their own,
    # whose first frame confirms at once.
    assert [d["track_id"] for d in predict_image(server, astro, {"is_yolo": True, "track_stream": "cam-2"})] == [1]
    other = server.keys("create", "--name", "other").strip()
    assert [d["track_id"] for d in predict_image(server, gray, cam1, key=other)] == []
    assert [d["track_id"] for d in predict_image(server, astro, cam1, key=other)] == [None]
    # The first key's stream goes on with its track.
    assert [d["track_id"] for d in predict_image(server, astro, cam1)] == again


def test_v2_url_of_a_video(start_server, clips):
    """A v2 item's URL may name a video; its video keys are checked like v1's."""
    import http.server
    import threading
    body = (clips / "short.mp4").read_bytes()

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = http.server.ThreadingHTTPServer(("127.0.0.2", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        s = start_server("--url-allow", "127.0.0.2/32")
        url = f"http://127.0.0.2:{srv.server_address[1]}/clip.mp4"
        item = {"image_url": url, "is_yolo": True, "track": True, "fps": 2}
        lines = []
        with httpx.stream("POST", s.url + V1 + "/v2", json={"api_key": s.key, "data": [item]}, timeout=60) as r:
            assert r.status_code == 200
            lines = [json.loads(x) for x in r.iter_lines() if x]
        frames = [x for x in lines if x["status"] == "frame"]
        done = next(x for x in lines if x["status"] == "done")
        assert [f["time_ms"] for f in frames] == [0, 520, 1000, 1520] and done["filename"] == "clip.mp4"
        assert done["result"]["video"]["frames"] == 4 and done["result"]["tracks"]
        r = httpx.post(s.url + V1 + "/v2", json={"api_key": s.key, "data": [dict(item, fps=-2)]})
        assert r.status_code == 422 and r.json()["detail"]["code"] == "invalid_item", r.text
    finally:
        srv.shutdown()


def test_playground_plays_a_video_with_its_tracks(server, clips, playwright_dir, node_bin, tmp_path):  # noqa: F811
    """The playground (web/) in Debian's chromium: tests/web/e2e_video.mjs."""
    out = tmp_path / "shots"
    r = subprocess.run([node_bin, str(playwright_dir / "e2e_video.mjs"), server.url, server.key, str(clips / "walk.webm"),
                        str(out)], capture_output=True, text=True, timeout=300)
    print(r.stdout)
    assert r.returncode == 0, f"e2e_video.mjs failed:\n{r.stdout}\n{r.stderr}"
    assert (out / "playground-video.png").stat().st_size > 10000


def test_batch_endpoint_puts_frames_in_the_result(server, clips):
    r = httpx.post(server.url + "/api/v1/inference/predict/batch", timeout=120,
                   data={"api_key": server.key, "metadata": [json.dumps({"is_yolo": True, "track": True, "fps": 2})]},
                   files=[("files", ("short.mp4", (clips / "short.mp4").read_bytes(), "video/mp4"))])
    assert r.status_code == 200, r.text
    f = r.json()["result"]["files"][0]
    assert f["status"] == "done"
    frames = f["result"]["frames"]
    assert [x["time_ms"] for x in frames] == [0, 520, 1000, 1520] and f["result"]["video"]["frames"] == 4
    assert all(set(x) == {"frame", "time_ms", "result"} for x in frames)
    assert frames[-1]["result"]["yolo"]["detections"][0]["track_id"] == 1
