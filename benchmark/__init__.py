"""Active-learning benchmark harness for semantic segmentation with sparse pixel labels."""
from benchmark.runtime import mmcv_without_ops

__version__ = "0.1.0"

mmcv_without_ops.install()  # before anything imports mmseg: mmseg imports mmcv.ops at import time
