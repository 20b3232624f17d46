# The embedded default dataset with the CPU-sized schedule, shared by both synthetic presets.
# Sized so that `python -m benchmark run --strategy all` (three seeds, every strategy and the supervised
# reference, two worker processes) finishes within ~15 minutes on 2 CPU cores: see README "The default".
# The generated dataset (benchmark/data/synthetic.py): deterministic from its seed. 64x96 costs 0.54x
# the training compute of 96x128 per image with the same class frequencies (docs/performance.md).
synthetic = dict(seed=0, n_train=40, n_val=20, height=64, width=96)

# Active-learning schedule: cycle 0 trains on pixels_per_image random clicks per image; each later
# cycle adds pixels_per_image clicks per image chosen by the strategy (../active_learning.py).
_base_ = ['../active_learning.py']
active_learning = dict(cycles=4, map_images=2)

# Training schedule of one cycle (the same for every strategy and the supervised reference).
schedule = dict(
    iters=160,
    batch_size=4,
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    poly_power=0.9,
    amp=False)

# Pipelines around the label loading step the harness inserts (sparse clicks or dense labels).
data = dict(
    train_augment=[dict(type='RandomFlip', prob=0.5)],
    test_resize=[],
    num_workers=0)
