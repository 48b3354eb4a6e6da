"""Starts the real `switchyard` binary (SWITCHYARD_BIN) on 127.0.0.1 with a fresh data dir."""

import os
import re
import subprocess
import tempfile
import time

import pytest

LISTEN_RE = re.compile(r"^switchyard: listening on (http://\S+)")


class Gateway:
    def __init__(self, *extra_args, env=None):
        binary = os.environ.get("SWITCHYARD_BIN")
        if not binary:
            raise RuntimeError("SWITCHYARD_BIN is not set: run these tests through `make test`")
        self.data_dir = tempfile.mkdtemp(prefix="switchyard-py-")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD__")}
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [binary, "--data-dir", self.data_dir, *extra_args, "serve", "--listen", "127.0.0.1:0"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=full_env,
        )
        deadline = time.time() + 60
        self.url = None
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            m = LISTEN_RE.match(line)
            if m:
                self.url = m.group(1)
                break
        if self.url is None:
            self.proc.kill()
            raise RuntimeError("switchyard did not report its listening address")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def gateway():
    g = Gateway()
    yield g
    g.stop()
