# The active-learning settings every preset starts from; paper_schedule.py and datasets/synthetic.py
# add their cycles and map images. Clicks per image per cycle: 5 (the paper's; 10 on ADE20K, in
# datasets/ade20k.py), m = 20 MC samples, 3 seeds.
# Defaults owned by the harness (benchmark/config/modes.py), not restated here: the head's MC dropout
# (rate 0.5, one mask per channel as mmseg's Dropout2d: the only setting of the study in
# docs/mc_dropout.md where BalEnt runs in its positive "balanced" regime on a sizeable share of
# pixels; set mc_dropout=dict(rate=..., mask=...) to change it), void clicks spend budget, and the
# topn selector.
active_learning = dict(pixels_per_image=5, mc_samples=20, seeds=[0, 1, 2],
                       map_strategies=['balent', 'bald', 'pbald', 'entropy'],
                       selector_params=dict(pixelpick=dict(q=0.05), spread=dict(r=8)))
