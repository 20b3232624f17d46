"""One acquisition step of a run, in 1 process or in G processes started by torchrun.

    python ddp_acquire.py OUT RESULT.json RUN_FLAGS...

Plans the run of ``RUN_FLAGS`` (one strategy; the single-process plan, so its cycle-0 key is the
one `run` used in OUT), loads cycle 0's trained model from OUT's cache, and runs
``benchmark.cycle.acquisition.acquire`` on cycle 0's clicks and ``benchmark.model.segmentor.evaluate``: with a
process group each rank scores its share of the pool and evaluates its share of the validation
set. Rank 0 writes the clicks of every image, the pool record and the metrics to RESULT.json.
The model is the same in both cases (trained once, by `run`), so the clicks must be too.
"""
import json
import sys

import torch

from benchmark.cli import build_parser
from benchmark.config.plan import make_plan
from benchmark.config.presets import selector_params
from benchmark.config.run_spec import cycle0_key
from benchmark.cycle.acquisition import acquire
from benchmark.cycle.cycle0_cache import CycleZeroCache
from benchmark.cycle.loop import cycle0_store
from benchmark.data.label_store import GroundTruthOracle
from benchmark.execution.preflight import PlanResources
from benchmark.model.segmentor import evaluate
from benchmark.model.training import fresh_model
from benchmark.runtime import distributed
from strategies import build_selector, build_strategy


def main(out: str, result: str, flags: list) -> None:
    distributed.init_from_env("cpu")
    import mmseg.utils  # after benchmark: mmseg imports where mmcv has no compiled ops

    mmseg.utils.register_all_modules(init_default_scope=True)
    (spec,) = [run for run in make_plan(build_parser().parse_args(["run", *flags, "--out", out]))
               if not run.is_supervised]
    resources = PlanResources()
    preset, data = resources.preset(spec), resources.data(spec)
    model = fresh_model(spec, preset, data)
    model.load_state_dict(CycleZeroCache(spec.out, cycle0_key(spec)).load()["state"])
    store = cycle0_store(spec, data, GroundTruthOracle(data.ground_truth))
    selector = build_selector(spec.selection, **selector_params(preset, spec.selection))
    acq = acquire(model, data, store, build_strategy(spec.strategy), selector, spec, 0)
    shared = distributed.my_share(len(data.val_items))  # as training.train_and_evaluate splits it
    metrics = evaluate(model, data.val_loader(spec.batch_size, image_ids=shared), data.classes, len(data.val_items))
    if distributed.is_main():
        picks = {str(i): p.tolist() for i, p in acq.picks.items()}
        record = {k: repr(v) for k, v in acq.uncertainty.items()}  # repr: every bit of the float
        metrics = {k: repr(v) for k, v in metrics.items()}
        json.dump(dict(world_size=distributed.world_size(), picks=picks, record=record, metrics=metrics,
                       threads=torch.get_num_threads()), open(result, "w"))
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
