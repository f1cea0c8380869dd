"""The numerical code paths a run takes, pinned: the same bytes from a notebook on any x86-64 CPU with AVX2.

Unless told, every numerical library a run uses picks its kernels from the CPU it finds, and each pick changes the
last bits of some result, which training and the claims' rounding then carry into the written numbers. Measured
(``tests/test_determinism.py``; README, "Reproducibility") on an AMD EPYC with AVX-512, one variable at a time:

- **MKL** (torch's BLAS and LAPACK: every ``Linear`` layer, ``torch.linalg``) dispatches by vendor and ISA.
  ``MKL_CBWR=AVX2`` does *not* fix it across vendors: on a non-Intel CPU MKL honours only the ``AUTO`` and
  ``COMPATIBLE`` branches and runs ``AUTO`` for any other (measured: ``AVX2``, ``AVX2,STRICT``, ``AVX512`` and
  ``SSE4_2`` give ``AUTO``'s bytes on AMD), while an Intel CPU runs its true AVX2 branch. ``COMPATIBLE`` (SSE2
  without the approximate ``rcpps``/``rsqrtps``) is the branch MKL documents as the same on Intel and compatible
  CPUs. ``STRICT`` applies to
  the AVX2 and AVX-512 branches only; with one thread it has nothing to add.
- **ATen** (torch's own vectorised kernels: activations, softmax, Adam's elementwise steps, reductions) runs
  AVX-512, AVX2 or plain code; ``avx2`` is the widest every AVX2 CPU can run.
- **oneDNN** (torch's convolutions) JIT-compiles for the widest ISA; capped at AVX2 its ``jit:avx2`` kernels block
  by shape and register count, not by cache size. ``ONEDNN_DEFAULT_FPMATH_MODE=STRICT`` keeps float32 in float32
  on CPUs with bfloat16 or AMX units (a host's ``BF16`` would not).
- **OpenBLAS** (NumPy's and SciPy's BLAS and LAPACK: the measure's products and eigendecompositions) picks a core
  type (``SkylakeX`` on AVX-512, ``Zen`` or ``Haswell`` on AVX2); ``Haswell`` kernels run on every AVX2 CPU.
- **NumPy**'s own SIMD loops (float64 ``exp``, ``log``, ``tanh``...) have AVX-512 versions that round differently
  from the AVX2 ones (without them ``exp`` and ``log`` are the C library's); its AVX-512 targets are switched off (a
  target the CPU lacks is ignored).
- **OpenCV** (dense SIFT of the classic representations) dispatches some kernels (colour conversion, resizing) to
  AVX-512; switched off (on a CPU without AVX-512, OpenCV says once on stderr that it was not there to switch off).
- **Threads**: MKL, oneDNN, ATen's reductions and OpenBLAS split work by thread count; one thread everywhere
  (``make replicate`` runs notebooks side by side instead), and ``PYTHONHASHSEED=0`` for set and dict order.

:func:`pinned_environment` applies these over a process environment (the runner starts every kernel with it);
:func:`in_effect` records what a process actually runs with (every claim file's provenance holds it). On a CPU
other than x86-64 with AVX2 the ISA settings are left out (the threads and hash seed stay): bytes then match
between machines of the same kind only.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ISA_SETTINGS",
    "THREAD_VARIABLES",
    "CLEARED",
    "pinned_environment",
    "settings",
    "in_effect",
]

#: the code paths every x86-64 CPU with AVX2 runs alike (see the module docstring for why each)
ISA_SETTINGS: dict[str, str] = {
    "MKL_CBWR": "COMPATIBLE",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "ONEDNN_DEFAULT_FPMATH_MODE": "STRICT",
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "OPENCV_CPU_DISABLE": "AVX512F,AVX512-COMMON,AVX512-SKX",
}
#: the thread counts of OpenMP (torch, oneDNN), MKL, OpenBLAS and numexpr
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
#: a host's own choices that would override or contradict the pinned ones: removed from a pinned environment
CLEARED = (
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_DEBUG_CPU_TYPE",
    "DNNL_MAX_CPU_ISA",
    "DNNL_DEFAULT_FPMATH_MODE",
    "ONEDNN_CPU_ISA_HINTS",
    "NPY_ENABLE_CPU_FEATURES",
)


def _has_avx2() -> bool:
    """Whether this CPU is x86-64 with AVX2 and FMA (Linux: ``/proc/cpuinfo``; elsewhere assumed for x86-64)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return True
    return {"avx2", "fma"} <= set(flags.split(":", 1)[-1].split())


def settings(threads: int = 1) -> dict[str, str]:
    """The pinned variables for this machine: the ISA settings (x86-64 with AVX2 only), ``threads`` threads for
    every library, ``PYTHONHASHSEED=0``."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    pinned = dict(ISA_SETTINGS) if _has_avx2() else {}
    pinned.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    pinned["PYTHONHASHSEED"] = "0"
    return pinned


def pinned_environment(base: Mapping[str, str] | None = None, *, threads: int = 1) -> dict[str, str]:
    """``base`` (default ``os.environ``) with :func:`settings` applied over the host's values and :data:`CLEARED`
    removed: the environment a kernel or worker starts with."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in CLEARED}
    env.update(settings(threads))
    return env


def in_effect() -> dict[str, Any]:
    """What this process runs with: every variable :func:`pinned_environment` sets (None when unset) and any it
    clears that is set,
    NumPy's widest SIMD target when NumPy is imported, and torch's CPU capability when torch is imported and runs
    another than ``ATEN_CPU_CAPABILITY`` asks (a kernel that ignored the setting shows it; nothing is imported here,
    so a run that never imports torch, such as one served from the cache, writes the same record)."""
    pinned = sorted({*ISA_SETTINGS, *THREAD_VARIABLES, "PYTHONHASHSEED"})
    variables = {k: os.environ.get(k) for k in pinned} | {k: os.environ[k] for k in CLEARED if k in os.environ}
    record: dict[str, Any] = {"variables": dict(sorted(variables.items()))}
    if "numpy" in sys.modules:
        record["numpy_simd"] = _numpy_simd()
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "backends"):
        capability = torch.backends.cpu.get_cpu_capability()
        if capability != os.environ.get("ATEN_CPU_CAPABILITY", "").upper():
            record["torch_cpu_capability"] = capability
    return record


def _numpy_simd() -> str | None:
    """NumPy's widest dispatch target this process uses (its baseline when none is enabled)."""
    try:
        from numpy._core._multiarray_umath import __cpu_baseline__, __cpu_dispatch__, __cpu_features__
    except ImportError:  # NumPy < 2 or another layout: nothing to report
        return None
    enabled = [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]
    return (enabled or list(__cpu_baseline__) or [None])[-1]
