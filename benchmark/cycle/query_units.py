"""What one query asks for, answers and costs: a pixel click (``PixelQueries``) or a superpixel
labelled whole with its dominant class (``RegionQueries``). The loop asks its run's unit to pick an
image's pixels, to answer them, to record the region queries and to fill the unit's columns of
cycles.csv; it never branches on the unit itself.

Cycle 0 is the same random pixel clicks for every unit (one shared cycle-0 model per seed); the
region queries start at cycle 1. A region's answer is the dominant answer among the pixels the
query labels (those not labelled yet; with ``--void-clicks skip`` not void either): ties go to the
smaller class id, void (255) last. Every one of those pixels gets that answer, so pixels of another
class become label noise (``region_purity``); a void-dominant region is a void click: paid for, its
pixels labelled void (no training signal, never asked again).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from benchmark.cycle.region_scores import pick_regions
from benchmark.data.label_store import IGNORE_INDEX, PENDING

REGION_COLUMNS = ["cycle", "image_id", "region", "y", "x", "pixels"]
MEMBER_KEYS = ("image_id", "region", "y", "x")


def dominant(answers: np.ndarray) -> int:
    """The most frequent value of ``answers`` (ties: the smallest; void 255 is larger than any class)."""
    values, counts = np.unique(np.asarray(answers, dtype=np.int64), return_counts=True)
    return int(values[np.argmax(counts)])  # np.unique sorts: argmax takes the first, smallest, of a tie


def purity(labels: np.ndarray, truth: np.ndarray) -> float:
    """Share of the pixels labelled with a class (not void, not pending) whose true class it is."""
    labels, truth = np.asarray(labels), np.asarray(truth)
    given = (labels != IGNORE_INDEX) & (labels != PENDING)
    return float((labels[given] == truth[given]).mean()) if given.any() else math.nan


class PixelQueries:
    """One query = one pixel click of cost ``spec.pixel_cost``: today's behaviour."""

    region_selection = None  # acquisition picks pixels with the selector itself

    def __init__(self, spec, journal=None):
        self.spec = spec

    def answer(self, oracle, picks: dict) -> dict:
        return oracle.answer(picks)

    def record(self, journal, cycle: int, picks: dict) -> None:
        """Nothing beyond selections.csv to keep."""

    def queries_added(self, store, cycle: int) -> pd.DataFrame:
        """The queries that entered at ``cycle``, one row each: image_id, y, x, label."""
        return store.frame[store.frame["cycle"] == cycle]

    def columns(self, store, cycle: int, truth) -> dict:
        """The unit's columns of cycle ``cycle``'s row (``store``: what it trained on)."""
        frame = store.frame
        spent = self.spec.pixel_cost
        return dict(unit=self.spec.unit, void_clicks=int((frame["label"] == IGNORE_INDEX).sum()),
                    cost=int((frame["cycle"] == cycle).sum()) * spent, cumulative_cost=len(frame) * spent,
                    queries=len(frame), region_purity=math.nan)


class RegionQueries(PixelQueries):
    """One query (after cycle 0) = one superpixel, answered with its dominant class, cost
    ``spec.unit_cost``. Keeps the ledger of region queries (``regions.csv`` and the pixels of each)."""

    def __init__(self, spec, journal, maps):
        super().__init__(spec)
        self.maps = maps  # image_id -> int32 [H, W] region ids (benchmark.data.superpixels)
        saved = journal.read_region_queries()
        self.ledger = (saved[REGION_COLUMNS].astype("int64") if saved is not None
                       else pd.DataFrame({c: pd.Series(dtype="int64") for c in REGION_COLUMNS}))
        settings = spec.superpixels
        self.aggregation, self.topk = settings["aggregation"], int(settings["topk"])

    # -- acquisition -------------------------------------------------------------------------
    def region_selection(self, image_id: int, selector, scores: torch.Tensor, excluded: torch.Tensor, n: int,
                         generator) -> torch.Tensor:
        regions = torch.from_numpy(self.maps(image_id))
        return pick_regions(selector, scores, regions, excluded, n, generator, self.aggregation, self.topk)

    def _regions_of(self, image_id: int, yx: np.ndarray) -> np.ndarray:
        yx = np.asarray(yx, dtype=np.int64).reshape(-1, 2)
        return self.maps(image_id)[yx[:, 0], yx[:, 1]].astype(np.int64)

    def answer(self, oracle, picks: dict) -> dict:
        """Each picked region's dominant answer, given to all of its picked pixels."""
        per_pixel = oracle.answer(picks)
        labels = {}
        for image_id, yx in picks.items():
            regions, answers = self._regions_of(image_id, yx), np.asarray(per_pixel[image_id], dtype=np.int64)
            out = np.empty_like(answers)
            for region in np.unique(regions):
                inside = regions == region
                out[inside] = dominant(answers[inside])
            labels[image_id] = out
        return labels

    # -- the ledger --------------------------------------------------------------------------
    def record(self, journal, cycle: int, picks: dict) -> None:
        """Keep the region queries of ``picks`` (labelled at ``cycle``): one ledger row each, with
        the pixel nearest the region's centroid among those it labels, and those pixels."""
        rows, members = [], {k: [] for k in MEMBER_KEYS}
        for image_id in sorted(picks):
            yx = np.asarray(picks[image_id], dtype=np.int64).reshape(-1, 2)
            regions = self._regions_of(image_id, yx)
            for region in np.unique(regions):
                pts = yx[regions == region]
                centre = pts.mean(axis=0)
                y, x = pts[np.argmin(((pts - centre) ** 2).sum(axis=1))]
                rows.append(dict(cycle=cycle, image_id=image_id, region=int(region), y=int(y), x=int(x),
                                 pixels=len(pts)))
            members["image_id"].append(np.full(len(yx), image_id, dtype=np.int64))
            members["region"].append(regions)
            members["y"].append(yx[:, 0])
            members["x"].append(yx[:, 1])
        kept = self.ledger[self.ledger["cycle"] < cycle]
        added = pd.DataFrame(rows, columns=REGION_COLUMNS).astype("int64")
        self.ledger = pd.concat([kept, added], ignore_index=True).sort_values(
            ["cycle", "image_id", "region"], kind="stable").reset_index(drop=True)
        journal.write_region_queries(self.ledger, cycle, {k: (np.concatenate(v) if v else np.zeros(0, np.int64))
                                                          for k, v in members.items()})

    def queries_added(self, store, cycle: int) -> pd.DataFrame:
        if cycle == 0:
            return super().queries_added(store, cycle)
        rows = self.ledger[self.ledger["cycle"] == cycle][["image_id", "y", "x"]]
        return rows.merge(store.frame[["image_id", "y", "x", "label"]], on=["image_id", "y", "x"], how="left")

    def columns(self, store, cycle: int, truth) -> dict:
        frame = store.frame
        clicks = frame[frame["cycle"] == 0]  # cycle 0's random pixel clicks
        queried = self.ledger[(self.ledger["cycle"] >= 1) & (self.ledger["cycle"] <= cycle)]
        answers = queried.merge(frame[["image_id", "y", "x", "label"]], on=["image_id", "y", "x"], how="left")
        spent = len(clicks) * self.spec.pixel_cost
        cost = spent if cycle == 0 else int((queried["cycle"] == cycle).sum()) * self.spec.unit_cost
        added = frame[frame["cycle"] == cycle] if cycle >= 1 else frame.iloc[:0]
        truths = truth.answer({i: g[["y", "x"]].to_numpy() for i, g in added.groupby("image_id")})
        labels = {i: g["label"].to_numpy() for i, g in added.groupby("image_id")}
        pure = (purity(np.concatenate([labels[i] for i in sorted(labels)]),
                       np.concatenate([truths[i] for i in sorted(labels)])) if labels else math.nan)
        return dict(unit=self.spec.unit,
                    void_clicks=int((clicks["label"] == IGNORE_INDEX).sum() + (answers["label"] == IGNORE_INDEX).sum()),
                    cost=cost, cumulative_cost=spent + len(queried) * self.spec.unit_cost,
                    queries=len(clicks) + len(queried), region_purity=pure)


def query_unit(spec, journal, data):
    """The run's unit: ``RegionQueries`` for ``--unit superpixel``, else ``PixelQueries``."""
    if spec.superpixels is None:
        return PixelQueries(spec, journal)
    from benchmark.data.superpixels import SuperpixelMaps

    paths = {i: item["img_path"] for i, item in enumerate(data.pool_items)}
    return RegionQueries(spec, journal, SuperpixelMaps(spec.superpixels, paths, data.shapes))
