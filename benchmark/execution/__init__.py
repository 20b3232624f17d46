"""Who runs a plan and where: in this process, in ``--workers`` processes, as submitit jobs
(``launch``); each run under its lock and status; ``status`` reads where every run stands."""
