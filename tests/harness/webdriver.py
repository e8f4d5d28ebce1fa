"""A small W3C WebDriver client (stdlib only) for Debian's chromium through chromedriver: the
sign-in page's browser test. chromedriver runs in a process group of its own (with the
chromium it starts), which stop() ends by its id."""
import json
import os
import signal
import subprocess
import urllib.request

from .procs import free_port, port_accepts, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C element reference key


def available():
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


class WebDriverError(RuntimeError):
    pass


class Browser:
    """One headless chromium session: navigate, find, type, click, read."""

    def __init__(self, workdir, ca_file=None):
        self.workdir = workdir
        self.port = free_port()
        self.log = open(os.path.join(workdir, "chromedriver.log"), "ab")
        self.proc = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.session = None
        try:
            wait_until(lambda: port_accepts(self.port), timeout=20, what="chromedriver")
            self.session = self._new_session()
        except Exception:
            self.stop()
            raise

    def _call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise WebDriverError(f"{method} {path}: {e.code} {e.read()[:500]!r}") from None

    def _new_session(self):
        profile = os.path.join(self.workdir, "chromium-profile")
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}"]
        caps = {"browserName": "chrome", "acceptInsecureCerts": True,
                "goog:chromeOptions": {"binary": CHROMIUM, "args": args}}
        value = self._call("POST", "/session", {"capabilities": {"alwaysMatch": caps}},
                           timeout=90)
        return value["sessionId"]

    def _s(self, path):
        return f"/session/{self.session}{path}"

    def go(self, url):
        self._call("POST", self._s("/url"), {"url": url})

    @property
    def url(self):
        return self._call("GET", self._s("/url"))

    def find(self, css):
        value = self._call("POST", self._s("/element"), {"using": "css selector", "value": css})
        return value[ELEMENT]

    def type(self, css, text):
        element = self.find(css)
        self._call("POST", self._s(f"/element/{element}/clear"), {})
        self._call("POST", self._s(f"/element/{element}/value"), {"text": text})

    def click(self, css):
        self._call("POST", self._s(f"/element/{self.find(css)}/click"), {})

    def text(self, css="body"):
        return self._call("GET", self._s(f"/element/{self.find(css)}/text"))

    def cookies(self):
        return self._call("GET", self._s("/cookie"))

    def stop(self):
        if self.session:
            try:
                self._call("DELETE", self._s(""), timeout=20)
            except (OSError, WebDriverError):
                pass
            self.session = None
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.log.close()
