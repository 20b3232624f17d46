"""The segmentation network through mmseg and mmengine: build (``segmentor``), train one cycle
(``training``), last-layer MC-dropout inference (``mc_dropout``) and its exact logit resize."""
