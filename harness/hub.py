"""The Hugging Face hub from a machine that may have no network.

``huggingface_hub`` retries a host it cannot reach for half a minute or more, warning at each try,
before the error that ``HF_HUB_OFFLINE=1`` gives at once. So before its first request a process sends
the hub (``HF_ENDPOINT``, default https://huggingface.co) one HEAD request and waits at most
``PROBE_SECONDS`` for any HTTP answer; where none comes, it goes offline for the rest of the run (``HF_HUB_OFFLINE`` and
``HF_DATASETS_OFFLINE``, also in the libraries already imported): what is cached still loads, the rest
fails with the offline hint."""

from __future__ import annotations

import logging
import os
import sys
import threading
import urllib.error
import urllib.request

PROBE_SECONDS = 3.0
VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
log = logging.getLogger(__name__)
_probed: dict[str, bool] = {}


def offline(datasets: bool = False) -> bool:
    """Whether the hub is off for this process (``HF_HUB_OFFLINE``; for data sets also
    ``HF_DATASETS_OFFLINE``)."""
    names = VARIABLES if datasets else VARIABLES[:1]
    return any(os.environ.get(v, "") not in ("", "0") for v in names)


def reachable(endpoint: str, timeout: float = PROBE_SECONDS) -> bool:
    """Whether the endpoint gives any HTTP answer (an error status included) within ``timeout`` seconds
    (name lookup included: the request runs in a thread that is abandoned when the time is up)."""
    answer: list[bool] = []

    def probe() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout).close()
            answer.append(True)
        except urllib.error.HTTPError:
            answer.append(True)
        except (OSError, ValueError):
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer and answer[0])


def before_hub_access() -> None:
    """Go offline for this process where the hub cannot be reached (once per endpoint)."""
    if offline():
        return
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if endpoint not in _probed:
        _probed[endpoint] = reachable(endpoint)
    if _probed[endpoint]:
        return
    log.warning("the Hugging Face hub (%s) did not answer within %.0f s: offline for this run, only cached "
                "models and data load (set HF_HUB_OFFLINE=1 to skip this check)", endpoint, PROBE_SECONDS)  # fmt: skip
    for name in VARIABLES:
        os.environ[name] = "1"
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].constants.HF_HUB_OFFLINE = True
    if "datasets" in sys.modules:
        config = sys.modules["datasets"].config
        config.HF_HUB_OFFLINE = config.HF_DATASETS_OFFLINE = True
