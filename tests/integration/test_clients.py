"""The spec's own client examples, run unchanged but for the base URL against a
real sightd: JavaScript and TypeScript (Node 20 fetch), Go net/http, C#
HttpClient, Java OkHttp, curl and Python httpx. Each sends the same three-file
v1 request and must read the same stream; each must also take its own error
path for a wrong key.

The clients live in tests/clients/; whatever must be built (tsc, go build,
dotnet build, javac) is built once per session into pytest's temporary
folders, never into the source tree. Go, Node and curl come with
`scripts/bootstrap --test`, so their absence fails; the .NET SDK, javac with
Debian's libokhttp-java, and Debian's tsc (node-typescript) are not installed
by it, so without them those clients are skipped, saying what is missing.
"""
import json
import os
import random
import shutil
import struct
import subprocess
from collections.abc import Generator
from pathlib import Path

import httpx
import pytest

from conftest import V1, Server, photo, png_bytes

from client_toolchains import CLIENTS_DIR, DOTNET_ENV, JAVA_JARS, _build  # noqa: F401

QUERY = "find me the serial number from the images"
FILES = ["opencv_scenetext01.jpg", "opencv_messi5.jpg", "skimage_coffee.png"]
METADATA = [
    {"is_yolo": False, "is_llm": False},
    {"is_yolo": True, "is_llm": False},
    {"is_yolo": False, "is_llm": True},
]
PHOTO_SIZE = (800, 600)  # FILES[0], width x height; checked against its SOF below
RUN_TIMEOUT = 60

CLIENTS = ["node", "typescript", "go", "dotnet", "java", "curl", "httpx"]


# ---- the spec's Python client, copied as-is but for the base URL ----

def predict_stream(
    base_url: str,
    api_key: str,
    query: str | None,
    file_paths: list[str],
    metadata: list[dict],
) -> Generator[dict, None, None]:
    files = [("files", open(p, "rb")) for p in file_paths]

    # metadata entries must be JSON strings
    data = {
        "api_key": api_key,
        "metadata": [json.dumps(m) for m in metadata],
    }
    if query:
        data["query"] = query

    with httpx.Client() as client:
        with client.stream(
            "POST",
            f"{base_url}/api/v1/inference/predict/stream",
            data=data,
            files=files,
        ) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line:
                    yield json.loads(line)

# ---- end of spec code ----


def jpeg_size(data):
    """(width, height) from a JPEG's first SOFn marker, read independently of sightd."""
    assert data[:2] == b"\xff\xd8"
    i = 2
    while i < len(data):
        assert data[i] == 0xFF, f"bad marker at {i}"
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        seglen = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + seglen
    raise AssertionError("no SOF marker")


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# ---- fixtures: the server and inputs ----

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """conftest's server with detection off, so that is_yolo gets
    yolo_unavailable: these tests are about the clients and the stream (an error
    line among done lines), not about detection."""
    tmp = tmp_path_factory.mktemp("sightd")
    s = Server(tmp, "--model", "none")
    yield s
    rc = s.stop()
    assert rc == 0, f"sightd exited with {rc}:\n{s.log_text()[-4000:]}"


@pytest.fixture(scope="session")
def photo_paths(tmp_path_factory):
    """The scenario's photos, copied under their own names (the clients send the basename)."""
    d = tmp_path_factory.mktemp("photos")
    paths = []
    for name in FILES:
        p = d / name
        p.write_bytes(photo(name))
        paths.append(str(p))
    return paths


@pytest.fixture(scope="session")
def big_png(tmp_path_factory):
    """A PNG of about 2 MB of incompressible pixels: big enough that curl sends
    `Expect: 100-continue` (its threshold is 1 MiB) and every client streams a
    body far larger than one socket buffer."""
    w = h = 820
    rng = random.Random(1)
    data = png_bytes(w, h, rows=[rng.randbytes(w * 3) for _ in range(h)])
    assert len(data) > 2_000_000
    p = tmp_path_factory.mktemp("big") / "big.png"
    p.write_bytes(data)
    return str(p), (w, h)


# ---- running a client ----

class Outcome:
    def __init__(self, rc, chunks, errors, stdout="", stderr=""):
        self.rc, self.chunks, self.errors, self.stdout, self.stderr = rc, chunks, errors, stdout, stderr

    def __repr__(self):
        return f"rc={self.rc}\nstdout:\n{self.stdout[-3000:]}\nstderr:\n{self.stderr[-3000:]}"


def run_cli(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env)
    chunks, errors = [], []
    for line in r.stdout.splitlines():
        if line.startswith("ERROR "):
            errors.append(line)
        elif line.strip():
            chunks.append(json.loads(line))
    return Outcome(r.returncode, chunks, errors, r.stdout, r.stderr)


def curl_cmd(curl, url, key, query, metadata, paths):
    # What a user would type: the files, then one -F per metadata entry.
    cmd = [curl, "-sS", "-N", "-v", "--fail-with-body", "-F", f"api_key={key}", "-F", f"query={query}"]
    for p in paths:
        cmd += ["-F", f"files=@{p}"]
    for m in metadata:
        cmd += ["-F", f"metadata={json.dumps(m)}"]
    return cmd + [url + V1]


@pytest.fixture
def run_client(request, client):
    """run(url, key, query, metadata, paths) -> Outcome, for the parametrised client."""
    if client == "httpx":
        def run(url, key, query, metadata, paths):
            try:
                return Outcome(0, list(predict_stream(url, key, query, paths, metadata)), [])
            except httpx.HTTPStatusError as e:
                return Outcome(1, [], [e])
        return run
    if client == "curl":
        curl = request.getfixturevalue("curl_bin")
        return lambda url, key, query, metadata, paths: run_cli(curl_cmd(curl, url, key, query, metadata, paths))
    prefix = {
        "node": lambda: [request.getfixturevalue("node_bin"), str(CLIENTS_DIR / "node" / "predict.mjs")],
        "typescript": lambda: request.getfixturevalue("ts_client"),
        "go": lambda: request.getfixturevalue("go_client"),
        "dotnet": lambda: request.getfixturevalue("dotnet_client"),
        "java": lambda: request.getfixturevalue("java_client"),
    }[client]()
    env = dict(os.environ, **DOTNET_ENV) if client == "dotnet" else None
    return lambda url, key, query, metadata, paths: run_cli(
        [*prefix, url, key, query, json.dumps(metadata), *paths], env=env)


@pytest.fixture(params=CLIENTS)
def client(request):
    return request.param


# ---- the tests ----

def test_photo_dimensions_are_what_the_jpeg_says():
    assert jpeg_size(photo(FILES[0])) == PHOTO_SIZE


def check_stream(chunks, names, outcomes):
    """outcomes[i] is "done" or an error code; each file's processing comes
    before its done/error; complete is last with the right counts."""
    assert chunks, "no lines"
    per_file = {}
    for c in chunks[:-1]:
        assert c["status"] in ("processing", "done", "error"), c
        per_file.setdefault(c["index"], []).append(c)
    assert sorted(per_file) == list(range(len(names))), chunks
    for i, name in enumerate(names):
        lines = per_file[i]
        assert [c["status"] for c in lines] == ["processing", "done" if outcomes[i] == "done" else "error"], lines
        assert all(c["filename"] == name for c in lines), lines
        if outcomes[i] != "done":
            assert lines[1]["error"]["code"] == outcomes[i], lines[1]
            assert lines[1]["error"]["message"]
    last = chunks[-1]
    ok = sum(1 for o in outcomes if o == "done")
    assert last["status"] == "complete", last
    assert (last["total"], last["succeeded"], last["failed"]) == (len(names), ok, len(names) - ok), last
    assert isinstance(last["time_ms"], (int, float))
    return per_file


def test_three_files_stream(server, client, run_client, photo_paths):
    out = run_client(server.url, server.key, QUERY, METADATA, photo_paths)
    assert out.rc == 0 and not out.errors, out
    # is_llm: the local provider answers when no LLM endpoint is configured.
    per_file = check_stream(out.chunks, FILES, ["done", "yolo_unavailable", "done"])
    assert per_file[2][1]["result"]["llm"]["provider"] == "local", per_file[2]
    result = per_file[0][1]["result"]
    assert result["image"] == {"width": PHOTO_SIZE[0], "height": PHOTO_SIZE[1], "format": "jpeg"}, result
    # Neither stage was asked for on file 0.
    assert "yolo" not in result and "llm" not in result, result
    assert {"decode", "total"} <= set(result["timing_ms"]), result


def assert_refused_401(client, out):
    """Each client's own error path for a wrong key (shared by the v1 and v2 tests)."""
    if client == "curl":
        # --fail-with-body: exit 22, the server's JSON refusal still printed.
        assert out.rc == 22, out
        assert out.chunks == [{"detail": {"code": "invalid_api_key",
                                          "message": "the API key is unknown or revoked"}}], out
        assert "returned error: 401" in out.stderr, out
        return
    assert out.rc != 0 and not out.chunks, out
    if client == "httpx":
        (e,) = out.errors
        assert e.response.status_code == 401
    else:
        assert out.rc == 3, out
        (line,) = out.errors
        assert line.startswith("ERROR 401 "), line
        if client in ("node", "typescript", "go"):
            # These read the body: the server's detail.message comes through.
            assert line == "ERROR 401 the API key is unknown or revoked", line


def test_wrong_key_takes_the_clients_error_path(server, client, run_client, photo_paths):
    assert_refused_401(client, run_client(server.url, "sk_not_a_key", QUERY, METADATA, photo_paths))


def test_large_file(server, client, run_client, big_png):
    path, (w, h) = big_png
    assert png_size(Path(path).read_bytes()) == (w, h)
    out = run_client(server.url, server.key, QUERY, [{"is_yolo": False, "is_llm": False}], [path])
    assert out.rc == 0 and not out.errors, out
    per_file = check_stream(out.chunks, ["big.png"], ["done"])
    assert per_file[0][1]["result"]["image"] == {"width": w, "height": h, "format": "png"}
    if client == "curl":
        # The path this test is for: curl waits for "100 Continue" before the body.
        assert "Expect: 100-continue" in out.stderr, out


def test_dotnet_multipart_shape_without_dotnet(server, photo_paths):
    """The bytes .NET's MultipartFormDataContent sends (as captured from the C#
    client), so the shape is checked even where no .NET SDK is installed: a
    quoted boundary parameter, unquoted (token) name= and filename= values as
    RFC 7578/2183 allow, filename*= beside filename=, and text/plain fields."""
    boundary = "775c7cab-3373-4421-9035-3aae3f28becb"
    bus = Path(photo_paths[0]).read_bytes()

    def field(name, value):
        return (f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Disposition: form-data; name={name}\r\n\r\n{value}\r\n").encode()

    body = (field("api_key", server.key) + field("query", QUERY)
            + (f"--{boundary}\r\nContent-Disposition: form-data; name=files; filename=bus.jpg; "
               f"filename*=utf-8''bus.jpg\r\n\r\n").encode() + bus + b"\r\n"
            + field("metadata", json.dumps({"is_yolo": False, "is_llm": False}))
            + f"--{boundary}--\r\n".encode())
    r = httpx.post(server.url + V1, content=body, timeout=RUN_TIMEOUT,
                   headers={"Content-Type": f'multipart/form-data; boundary="{boundary}"'})
    assert r.status_code == 200, r.text
    chunks = [json.loads(line) for line in r.text.splitlines() if line]
    check_stream(chunks, ["bus.jpg"], ["done"])
