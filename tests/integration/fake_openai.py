"""A protocol-faithful fake of an OpenAI-compatible /v1/chat/completions
endpoint, scripted per test.

Every request is checked the way a real server would need it: JSON body with
the model, stream: true, a system message, a user message whose content is a
text part and an image_url part holding a data: URL; the data URL's image is
decoded from its header (JPEG SOF or PNG IHDR) so the tests can check the size
sent. A request that breaks the protocol is answered 400 and recorded in
`errors`, so a test fails with the reason.

`script` is a function of the checked request returning one response:
  ("stream", pieces, opts)   SSE chunks for each piece of text, then usage and [DONE]
                             opts: delay (s between chunks), finish ("stop", "content_filter"),
                             usage (dict or None), done (send [DONE]), forever (keep streaming)
  ("status", code, body, headers)   a plain HTTP answer
  ("raw", bytes_list, delay)        these bytes as an event stream
  ("hang", seconds)                 headers, then nothing but silence
"""
import base64
import json
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def image_size(data):
    """(format, width, height) from a JPEG or PNG header."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        w, h = struct.unpack(">II", data[16:24])
        return "png", w, h
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            seg = struct.unpack(">H", data[i + 2:i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return "jpeg", w, h
            i += 2 + seg
    raise ValueError("not a JPEG or PNG")


def chunk(delta=None, finish=None, model="fake-vlm", usage=None, choices=True):
    c = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    if choices:
        d = {} if delta is None else {"content": delta}
        c["choices"] = [{"index": 0, "delta": d, "finish_reason": finish}]
    else:
        c["choices"] = []
    if usage is not None:
        c["usage"] = usage
    return b"data: " + json.dumps(c).encode() + b"\n\n"


class FakeOpenAI:
    def __init__(self, model="fake-vlm", api_key=None):
        self.model = model
        self.api_key = api_key
        self.requests = []      # checked requests: dict(body, text, image=(fmt, w, h), headers, t)
        self.errors = []        # protocol violations seen
        self.disconnects = []   # times at which a client closed a stream early
        self.script = lambda req: ("stream", ["Hello."], {})
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection does, as many servers do

            def log_message(self, *a):
                pass

            def do_POST(self):
                fake.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- request checks ----

    def check(self, h, raw):
        if h.path != "/v1/chat/completions":
            return f"path {h.path}"
        if self.api_key is not None and h.headers.get("Authorization") != f"Bearer {self.api_key}":
            return "missing or wrong Authorization"
        if "json" not in (h.headers.get("Content-Type") or ""):
            return "Content-Type is not JSON"
        try:
            body = json.loads(raw)
        except ValueError:
            return "body is not JSON"
        if body.get("model") != self.model:
            return f"model {body.get('model')!r}"
        if body.get("stream") is not True:
            return "stream is not true"
        if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
            return "max_tokens"
        msgs = body.get("messages")
        if not isinstance(msgs, list) or len(msgs) != 2:
            return "messages must be [system, user]"
        if msgs[0].get("role") != "system" or not isinstance(msgs[0].get("content"), str) or not msgs[0]["content"]:
            return "no system message"
        parts = msgs[1].get("content")
        if msgs[1].get("role") != "user" or not isinstance(parts, list):
            return "user content must be a list of parts"
        texts = [p["text"] for p in parts if p.get("type") == "text"]
        urls = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
        if len(texts) != 1 or len(urls) != 1:
            return "want one text part and one image_url part"
        url = urls[0]
        if not url.startswith("data:image/"):
            return "image is not a data: URL"
        head, _, b64 = url.partition(",")
        if not head.endswith(";base64"):
            return "data URL is not base64"
        try:
            img = base64.b64decode(b64, validate=True)
            fmt, iw, ih = image_size(img)
        except (ValueError, struct.error) as e:
            return f"data URL image: {e}"
        if head != f"data:image/{fmt};base64":
            return f"data URL says {head} but holds {fmt}"
        return {"body": body, "text": texts[0], "image": (fmt, iw, ih), "headers": dict(h.headers), "t": time.time()}

    def handle(self, h):
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        req = self.check(h, raw)
        if isinstance(req, str):
            with self.lock:
                self.errors.append(req)
            return self.send(h, ("status", 400, {"error": {"message": "fake server: " + req}}, {}))
        with self.lock:
            self.requests.append(req)
        self.send(h, self.script(req))

    def send(self, h, resp):
        kind = resp[0]
        try:
            if kind == "status":
                _, code, body, headers = resp
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                h.send_response(code)
                h.send_header("Content-Type", "application/json")
                h.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    h.send_header(k, v)
                h.end_headers()
                h.wfile.write(data)
                return
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream")
            h.send_header("Cache-Control", "no-cache")
            h.end_headers()
            h.wfile.flush()
            if kind == "hang":
                time.sleep(resp[1])
                return
            if kind == "raw":
                for b in resp[1]:
                    h.wfile.write(b)
                    h.wfile.flush()
                    time.sleep(resp[2])
                return
            _, pieces, o = resp
            delay = o.get("delay", 0)
            h.wfile.write(chunk(""))  # role-only first chunk, as OpenAI sends
            h.wfile.write(b": keep-alive\n\n")
            i = 0
            while True:
                for p in pieces:
                    time.sleep(delay)
                    h.wfile.write(chunk(p))
                    h.wfile.flush()
                    i += 1
                if not o.get("forever") or i > 2000:
                    break
            h.wfile.write(chunk(finish=o.get("finish", "stop")))
            usage = o.get("usage", {"prompt_tokens": 812, "completion_tokens": i, "total_tokens": 812 + i})
            if usage is not None:
                h.wfile.write(chunk(usage=usage, choices=False))
            if o.get("done", True):
                h.wfile.write(b"data: [DONE]\n\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            with self.lock:
                self.disconnects.append(time.time())
