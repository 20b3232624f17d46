"""What ran: the device, its name, and the library versions (``config.json``'s ``environment``, the
perf suite's machine line, the GPU check's provenance line). Nothing here changes a result."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess

import torch


def cpu_name() -> str | None:
    """The CPU model and the number of CPUs the OS reports (Linux), else None."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        return None
    return None


def is_cuda(device) -> bool:
    return torch.device(device).type == "cuda"


def device_name(device) -> str:
    """The GPU's name for a CUDA device, else the CPU model."""
    if is_cuda(device):
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_name() or platform.processor() or platform.machine()


def gpu_driver() -> str | None:
    """The NVIDIA driver version (nvidia-smi), else torch's CUDA driver API version, else None."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20)
            lines = out.stdout.strip().splitlines()
            if out.returncode == 0 and lines:
                return lines[0].strip()
        except (OSError, subprocess.SubprocessError):
            pass
    api = getattr(torch._C, "_cuda_getDriverVersion", None)
    try:
        version = int(api()) if api else 0
    except Exception:  # no driver, no CUDA build
        version = 0
    return f"CUDA driver API {version // 1000}.{version % 1000 // 10}" if version else None


def mmcv_compiled_ops() -> bool:
    """Whether mmcv loaded its own compiled ops (False for mmcv-lite with the stand-in)."""
    from benchmark.runtime.mmcv_without_ops import has_compiled_ops

    try:
        return has_compiled_ops()
    except ImportError:
        return False


def device_facts(device) -> dict:
    """The device as given, its name, and for a GPU its memory and the driver."""
    facts = dict(device=str(device), device_name=device_name(device))
    if is_cuda(device):
        props = torch.cuda.get_device_properties(torch.device(device))
        facts.update(device_memory_gib=round(props.total_memory / 2**30, 1), gpu_driver=gpu_driver())
    return facts


def library_versions() -> dict:
    """Python and every library a run's numbers go through (CUDA and cuDNN: None without them)."""
    import mmcv
    import mmengine
    import mmseg
    import numpy

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return dict(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
                cudnn=cudnn, mmcv=mmcv.__version__, mmcv_compiled_ops=mmcv_compiled_ops(),
                mmengine=mmengine.__version__, mmseg=mmseg.__version__, numpy=numpy.__version__)


def environment(device) -> dict:
    """``config.json``'s ``environment``: the library versions, the machine, the device and its name."""
    return dict(library_versions(), machine=platform.machine(), **device_facts(device))


def provenance_line(device) -> str:
    """One line: device name (memory, driver on a GPU); torch, CUDA, cuDNN, mmcv, mmengine, mmseg."""
    facts, versions = device_facts(device), library_versions()
    where = facts["device_name"]
    if is_cuda(device):
        where += f", {facts['device_memory_gib']} GiB, driver {facts['gpu_driver'] or 'unknown'}"
    ops = "with" if versions["mmcv_compiled_ops"] else "without"
    return (f"{where}; torch {versions['torch']}, CUDA {versions['cuda'] or 'none'}, cuDNN "
            f"{versions['cudnn'] or 'none'}, mmcv {versions['mmcv']} ({ops} compiled ops), mmengine "
            f"{versions['mmengine']}, mmseg {versions['mmseg']}, numpy {versions['numpy']}, "
            f"Python {versions['python']}")
