"""What every layer asks of the process it runs in: its rank among DDP ranks (``distributed``),
stage timings on queued GPU work (``timing``), the warnings to silence, mmcv without compiled ops."""
