"""RunSpec: every field's role stated once; the resume identity and the cycle-0 key derive from it."""
from dataclasses import fields, replace
from pathlib import Path

import pytest

from benchmark.config.run_spec import CYCLE0, EXECUTION, ROLES, RUN, RunSpec, cycle0_identity, cycle0_key, run_identity

SPEC = RunSpec(dataset="synthetic", data_root="/d", model="fpn", preset="/p.py", preset_digest="abc",
               strategy="bald", seed=0, cycles=3, pixels_per_image=5, mc_samples=8, train_iters=10,
               batch_size=4, device="cpu", retrain="scratch", oracle="ground-truth", out="/o",
               pretrained=None, amp=False, map_images=1, map_strategies=("bald",), selection="topn",
               mc_dropout_rate=0.1, mc_dropout_mask="channel", void_clicks="spend", record_pixels=0)


def test_run_id_names_the_selector_unless_topn():
    assert SPEC.run_id == "synthetic__fpn__bald__seed0"
    assert replace(SPEC, selection="spread").run_id == "synthetic__fpn__bald__spread__seed0"


def test_every_runspec_field_has_a_role():
    untagged = [f.name for f in fields(RunSpec) if f.metadata.get("role") not in ROLES]
    assert untagged == [], f"give these RunSpec fields a role ({', '.join(ROLES)}): {untagged}"


def test_identities_are_derived_from_the_roles():
    by_role = {role: {f.name for f in fields(RunSpec) if f.metadata["role"] == role} for role in ROLES}
    assert set(cycle0_identity(SPEC)) == by_role[CYCLE0]
    assert set(run_identity(SPEC)) == by_role[CYCLE0] | by_role[RUN]
    assert not by_role[EXECUTION] & set(run_identity(SPEC))


@pytest.mark.parametrize("name, value, same_cycle0", [
    ("strategy", "random", True), ("cycles", 9, True), ("mc_samples", 2, True), ("retrain", "finetune", True),
    ("out", "/elsewhere", True), ("device", "cuda", True), ("map_images", 0, True), ("oracle", "file", True),
    ("seed", 1, False), ("pixels_per_image", 6, False), ("train_iters", 11, False), ("preset_digest", "x", False),
    ("batch_size", 2, False), ("amp", True, False), ("pretrained", "/w.pth", False), ("selection", "spread", True),
    ("mc_dropout_rate", 0.5, False), ("mc_dropout_mask", "element", False), ("void_clicks", "skip", False), ("record_pixels", 64, True),
])
def test_cycle0_key_changes_exactly_with_the_cycle0_fields(name, value, same_cycle0):
    assert (cycle0_key(replace(SPEC, **{name: value})) == cycle0_key(SPEC)) is same_cycle0


@pytest.mark.parametrize("preset, expected", [
    ({}, (0.5, "channel")),  # no mc_dropout: the documented default, not mmseg's 0.1
    ({"mc_dropout": {"rate": 0.3}}, (0.3, "channel")),
    ({"mc_dropout": {"mask": "element"}}, (0.5, "element")),
    ({"mc_dropout": {"rate": 0.1, "mask": "element"}}, (0.1, "element")),
])
def test_a_preset_without_mc_dropout_runs_with_the_documented_default(preset, expected):
    from types import SimpleNamespace

    from benchmark.config.plan import mc_dropout_settings

    flags = SimpleNamespace(mc_dropout_rate=None, mc_dropout_mask=None)
    settings = mc_dropout_settings(flags, preset)
    assert (settings["mc_dropout_rate"], settings["mc_dropout_mask"]) == expected


def test_the_readme_states_the_mc_dropout_default_the_plan_uses():
    from benchmark.config.modes import DEFAULT_MC_DROPOUT

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert (f"**The default is rate {DEFAULT_MC_DROPOUT['rate']:g} with {DEFAULT_MC_DROPOUT['mask']} masks**"
            in readme)
