"""A hub name on a machine whose hub does not answer fails within seconds, not after
huggingface_hub's half-minute of retries (harness.hub), and says it went offline."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from harness import hub


@pytest.mark.parametrize("model", [["hf:someone/some-vit"], ["timm:resnet18", "--model-option", "pretrained=true"]])
def test_a_hub_model_fails_fast_when_the_hub_does_not_answer(tmp_path, model):
    env = {k: v for k, v in os.environ.items() if k not in hub.VARIABLES}  # HF_HUB_OFFLINE not set
    env |= {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"), "COLUMNS": "200"}  # nobody there
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--model", *model, "--task", "fashion-mnist",
                           "--metric", "accuracy", "--store", str(tmp_path / "store")],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert time.perf_counter() - started < 30  # importing torch and timm included; the retries took 30-55 s
    assert "offline for this run" in proc.stderr and "HF_HUB_OFFLINE" in proc.stderr


def test_the_probe_gives_up_on_a_host_that_never_answers():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()  # accepts the connection, never sends a byte
    threading.Thread(target=server.accept, daemon=True).start()
    started = time.perf_counter()
    assert not hub.reachable(f"http://127.0.0.1:{server.getsockname()[1]}", timeout=1.0)
    assert time.perf_counter() - started < 2
    server.close()
