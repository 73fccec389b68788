"""Peak CPU memory of inference, measured in a child process.

PyTorch's CPU allocator keeps no statistics (there is no CPU ``max_memory_allocated``), and
``tracemalloc`` sees only Python's allocator, not the tensors. The resident set of the evaluating
process is no use either: it holds the data sets, earlier models and memory that malloc kept after
earlier work, so a new peak may never show. So a fresh interpreter (``python -m
harness.hardware.memory``) imports torch and the model's code, notes its resident memory, receives
the model and one batch of real inputs, releases what loading left free (``malloc_trim``), resets
the kernel's high-water mark (``/proc/self/clear_refs``, Linux) and runs the forward pass. The
figure is that high-water mark less the resident memory before the model arrived: weights, inputs,
activations and what torch's CPU runtime allocates for them, the CPU counterpart of CUDA's
``max_memory_allocated`` after a reset.

Where the high-water mark cannot be reset (not Linux), ``ru_maxrss`` is used and also counts the
loading; the result says which.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import pickle
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass

import torch

from harness.hardware import timing


@dataclass(frozen=True)
class MemoryPeak:
    peak_mb: float  # the high-water mark during inference, above the process with torch imported
    baseline_mb: float  # resident memory of the child with torch imported, before the model
    loaded_mb: float  # resident memory with the model and inputs loaded, before inference
    method: str  # "clear_refs" (peak of the inference alone) or "ru_maxrss" (includes loading)


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def _resident_mb() -> float:
    rss = _status_mb("VmRSS")
    if rss is not None:
        return rss
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _reset_peak() -> bool:
    """Reset the kernel's peak resident size of this process to its current size (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024  # bytes on macOS, kB elsewhere


def _release_free_memory() -> None:
    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _measure_here() -> None:
    """The child's side: the request on stdin, the answer as JSON on stdout."""
    import gc
    import importlib

    for name in json.loads(sys.stdin.buffer.readline()):  # the model's code is not part of its memory
        importlib.import_module(name)
    baseline = _resident_mb()
    request = sys.stdin.buffer.read()
    module, batch, precision, threads = pickle.loads(request)
    del request
    torch.set_num_threads(threads)
    gc.collect()
    _release_free_memory()
    loaded = _resident_mb()
    method = "clear_refs" if _reset_peak() else "ru_maxrss"
    with torch.inference_mode(), timing.autocast(torch.device("cpu"), precision):
        module(batch)
    json.dump(asdict(MemoryPeak(_peak_mb() - baseline, baseline, loaded, method)), sys.stdout)


def peak_cpu_memory(module: torch.nn.Module, batch: torch.Tensor, *, precision: str = "fp32",
                    timeout: float = 600.0) -> MemoryPeak:  # fmt: skip
    """Peak resident memory of one forward pass of ``module`` on ``batch``, both on the CPU, as
    described above.

    The model travels to the child by pickle through a pipe: it is the object this process already
    holds, never a file, so nothing untrusted is unpickled. Raises ``RuntimeError`` when the model
    cannot be sent (a module that does not pickle) or the child fails.
    """
    try:
        # a clone: a slice of a larger tensor pickles its whole storage
        request = pickle.dumps((module, batch.clone(), precision, torch.get_num_threads()),
                               protocol=pickle.HIGHEST_PROTOCOL)  # fmt: skip
    except Exception as exc:  # what pickling raises varies by object
        raise RuntimeError(f"cannot send the model to a measuring process ({type(exc).__name__}: {exc})") from exc
    code = json.dumps(sorted({type(m).__module__ for m in module.modules()})).encode()
    try:
        done = subprocess.run([sys.executable, "-m", __name__], input=code + b"\n" + request, capture_output=True,
                              timeout=timeout, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the memory-measuring process gave no answer in {timeout:.0f} s") from None
    if done.returncode != 0:
        last = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise RuntimeError(f"the memory-measuring process failed (exit code {done.returncode}): {last[0]}")
    return MemoryPeak(**json.loads(done.stdout))


if __name__ == "__main__":
    _measure_here()
