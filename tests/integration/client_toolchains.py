"""The clients' toolchains, each built once per test session (the fixtures are
made visible to every test module through conftest.py)."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CLIENTS_DIR = Path(__file__).resolve().parents[1] / "clients"


# ---- fixtures: toolchains, each built once per session ----

def _need(tool, why):
    """A toolchain that scripts/bootstrap --test installs: missing means a broken set-up."""
    path = shutil.which(tool)
    if not path:
        pytest.fail(f"{tool} not found on PATH: {why} (scripts/bootstrap --test installs it)")
    return path


def _build(cmd, cwd, env=None, timeout=300):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")


@pytest.fixture(scope="session")
def node_bin():
    node = _need("node", "the JavaScript client needs Node 20+")
    v = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    # The spec's browser code relies on global fetch, FormData, File and Blob.
    if int(v.lstrip("v").split(".")[0]) < 20:
        pytest.fail(f"node {v} is too old: the spec's client needs Node 20's global fetch/FormData/File")
    return node


@pytest.fixture(scope="session")
def ts_client(node_bin, tmp_path_factory):
    tsc = shutil.which("tsc")
    if not tsc:
        pytest.skip("tsc not found: Node 20 cannot run TypeScript; install Debian's node-typescript "
                    "(apt-get install node-typescript) to check the spec's TypeScript client")
    out = tmp_path_factory.mktemp("ts")
    _build([tsc, "-p", "tsconfig.json", "--outDir", str(out)], cwd=CLIENTS_DIR / "node")
    return [node_bin, str(out / "predict.mjs")]


@pytest.fixture(scope="session")
def go_client(tmp_path_factory):
    go = _need("go", "the Go client is built with it")
    tmp = tmp_path_factory.mktemp("go")
    # Own GOPATH/GOCACHE and no proxy: nothing is downloaded, nothing written
    # outside the temporary folder (the client uses the standard library only).
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPATH=str(tmp / "gopath"), GOCACHE=str(tmp / "cache"),
               GOPROXY="off", GOSUMDB="off", CGO_ENABLED="0")
    exe = tmp / "predict"
    _build([go, "build", "-o", str(exe), "."], cwd=CLIENTS_DIR / "go", env=env)
    return [str(exe)]


DOTNET_ENV = {"DOTNET_CLI_TELEMETRY_OPTOUT": "1", "DOTNET_NOLOGO": "1", "DOTNET_SKIP_FIRST_TIME_EXPERIENCE": "1"}


@pytest.fixture(scope="session")
def dotnet_client(tmp_path_factory):
    dotnet = shutil.which("dotnet")
    if not dotnet:
        pytest.skip("dotnet not found: the .NET 10 SDK is needed to check the spec's C# client "
                    "(scripts/bootstrap does not install it)")
    # Build a copy: dotnet writes obj/ next to the project, and the source tree stays clean.
    tmp = tmp_path_factory.mktemp("dotnet")
    src = tmp / "src"
    src.mkdir()
    for name in ("Program.cs", "SightClient.csproj", "nuget.config"):
        shutil.copy(CLIENTS_DIR / "dotnet" / name, src / name)
    out = tmp / "out"
    env = dict(os.environ, **DOTNET_ENV)
    _build([dotnet, "build", "-c", "Release", "-o", str(out), "SightClient.csproj"], cwd=src, env=env)
    return [dotnet, str(out / "predict.dll")]


JAVA_JARS = ["/usr/share/java/okhttp.jar", "/usr/share/java/okio.jar"]


@pytest.fixture(scope="session")
def java_client(tmp_path_factory):
    javac, java = shutil.which("javac"), shutil.which("java")
    if not javac or not java:
        pytest.skip("javac/java not found: a JDK (11+) is needed to check the spec's Java OkHttp client "
                    "(scripts/bootstrap does not install it)")
    missing = [j for j in JAVA_JARS if not os.path.exists(j)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not found: install Debian's libokhttp-java (OkHttp 3.13 and okio) "
                    "to check the spec's Java client; Maven Central is not used")
    out = tmp_path_factory.mktemp("java")
    cp = ":".join(JAVA_JARS)
    _build([javac, "-cp", cp, "-d", str(out), "Predict.java"], cwd=CLIENTS_DIR / "java")
    return [java, "-cp", f"{out}:{cp}", "Predict"]


@pytest.fixture(scope="session")
def curl_bin():
    return _need("curl", "the curl example is run with it")


