"""What ran a run (benchmark/runtime/environment.py): config.json's ``environment`` and the GPU
check's provenance line."""
import json
import platform

import torch

from benchmark.runtime.environment import environment, provenance_line


def test_the_environment_names_the_device_and_every_library_that_ran():
    import mmcv
    import mmengine
    import mmseg
    import numpy

    from benchmark.runtime.mmcv_without_ops import has_compiled_ops

    env = environment("cpu")
    assert env["device"] == "cpu" and env["device_name"].strip()
    assert env["torch"] == torch.__version__ and env["cuda"] == torch.version.cuda
    assert env["cudnn"] == (torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None)
    assert (env["mmcv"], env["mmengine"], env["mmseg"], env["numpy"], env["python"]) == (
        mmcv.__version__, mmengine.__version__, mmseg.__version__, numpy.__version__, platform.python_version())
    assert env["mmcv_compiled_ops"] is has_compiled_ops()
    assert json.loads(json.dumps(env)) == env  # config.json holds it as it is


def test_the_environment_keeps_what_earlier_runs_recorded():
    assert {"python", "torch", "mmcv", "mmengine", "mmseg", "machine"} <= set(environment("cpu"))


def test_the_provenance_line_names_the_device_and_the_versions():
    line = provenance_line("cpu")
    assert line.startswith(environment("cpu")["device_name"])
    assert f"torch {torch.__version__}" in line and "cuDNN" in line and "mmcv" in line
    if torch.version.cuda is None:
        assert "CUDA none" in line
