"""From flags and presets to a validated plan: presets, the run's settings (``run_spec``), its seeded
random streams (``seeds``), the allowed modes (``modes``) and ``make_plan``."""
