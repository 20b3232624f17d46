"""The diversity strategies' math against independent brute-force implementations (plain Python
and numpy loops over explicit vectors): greedy k-centre, k-means++ seeding, BADGE's factorised
gradient-embedding distances, chunked nearest-centre distances, the candidate subsample."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from strategies.diversity.candidates import candidate_pixels
from strategies.diversity.distances import min_squared_distances, squared_distances
from strategies.diversity.gradient_embedding import GradientEmbeddings
from strategies.diversity.k_center import greedy_k_center
from strategies.diversity.kmeans_pp import kmeanspp_seeding


def points(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --- brute-force references -----------------------------------------------------------------


def sq(u, v) -> float:
    return float(sum((a - b) ** 2 for a, b in zip(u, v)))


def k_center_reference(xs: list, k: int, centres: list) -> list[int]:
    """Gonzalez's greedy, written out: the point whose nearest centre is farthest, first of equal ones."""
    centres, picks = list(centres), []
    for _ in range(k):
        best, best_d = None, -1.0
        for i, x in enumerate(xs):
            if i in picks:
                continue
            d = min((sq(x, c) for c in centres), default=float("inf"))
            if d > best_d:
                best, best_d = i, d
        picks.append(best)
        centres.append(xs[best])
    return picks


def kmeanspp_reference(xs: np.ndarray, k: int, centres: np.ndarray | None, seed: int) -> list[int]:
    """BADGE's init_centers written out on explicit vectors: largest norm first (when there is no
    centre yet), then D^2 sampling with one uniform u per draw: the first point whose running
    sum of D^2 exceeds u times the total."""
    g = torch.Generator().manual_seed(seed)
    chosen = [] if centres is None else [c for c in centres]
    picks: list[int] = []
    for _ in range(k):
        if not chosen:
            norms = [float(np.dot(x, x)) for x in xs]
            j = int(np.argmax(norms))
        else:
            d2 = [0.0 if i in picks else min(float(np.sum((x - c) ** 2)) for c in chosen)
                  for i, x in enumerate(xs)]
            u = float(torch.rand(1, generator=g, dtype=torch.float64))
            target, running, j = u * sum(d2), 0.0, None
            for i, w in enumerate(d2):
                running += w
                if running > target and w > 0:
                    j = i
                    break
        picks.append(j)
        chosen.append(xs[j])
    return picks


# --- k-centre -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("with_centres", [False, True])
def test_greedy_k_center_equals_the_brute_force_reference(seed: int, with_centres: bool) -> None:
    x = points(30, 3, seed)
    centres = points(7, 3, seed + 100) if with_centres else torch.empty(0, 3, dtype=torch.float64)
    d2 = min_squared_distances(x, centres) if with_centres else None
    picks = greedy_k_center(x, 8, d2).tolist()
    assert picks == k_center_reference(x.tolist(), 8, centres.tolist())


def test_greedy_k_center_breaks_ties_by_the_given_order_and_never_repeats() -> None:
    x = torch.zeros(5, 2, dtype=torch.float64)  # every point the same: all distances tie at 0
    assert greedy_k_center(x, 5).tolist() == [0, 1, 2, 3, 4]
    x[3] = 10.0
    assert greedy_k_center(x, 2).tolist() == [0, 3]


# --- k-means++ ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("with_centres", [False, True])
def test_kmeanspp_equals_the_brute_force_reference(seed: int, with_centres: bool) -> None:
    x = points(25, 4, seed)
    centres = points(3, 4, seed + 50) if with_centres else None
    d2 = min_squared_distances(x, centres) if with_centres else None

    def distances_to(j: int) -> torch.Tensor:
        return ((x - x[j]) ** 2).sum(1)

    picks = kmeanspp_seeding(6, (x * x).sum(1), distances_to, torch.Generator().manual_seed(seed), d2)
    expected = kmeanspp_reference(x.numpy(), 6, None if centres is None else centres.numpy(), seed)
    assert picks.tolist() == expected


def test_kmeanspp_takes_the_largest_norm_first_and_draws_from_the_generator_only() -> None:
    x = points(20, 3, 1)
    x[7] *= 50.0
    state = torch.get_rng_state()
    picks = [kmeanspp_seeding(5, (x * x).sum(1), lambda j: ((x - x[j]) ** 2).sum(1),
                              torch.Generator().manual_seed(s)).tolist() for s in (0, 0, 1)]
    assert torch.equal(state, torch.get_rng_state())
    assert all(p[0] == 7 for p in picks) and picks[0] == picks[1] and len(set(picks[0])) == 5


def test_kmeanspp_with_every_point_on_a_centre_takes_them_in_order() -> None:
    x = torch.zeros(4, 2, dtype=torch.float64)
    picks = kmeanspp_seeding(3, (x * x).sum(1), lambda j: ((x - x[j]) ** 2).sum(1),
                             torch.Generator().manual_seed(0), d2=torch.zeros(4, dtype=torch.float64))
    assert picks.tolist() == [0, 1, 2]


# --- BADGE's factorised embeddings ------------------------------------------------------------


def embeddings(n: int, classes: int, d: int, seed: int) -> GradientEmbeddings:
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(2 * torch.randn(n, classes, generator=g, dtype=torch.float64), 1)
    return GradientEmbeddings.from_predictions(probs, torch.randn(n, d, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("seed", range(4))
def test_factorised_distances_equal_the_explicit_ones(seed: int) -> None:
    a, b = embeddings(17, 5, 6, seed), embeddings(9, 5, 6, seed + 10)
    ea, eb = a.explicit(), b.explicit()  # [n, C d]
    assert ea.shape == (17, 30)
    explicit = ((ea.unsqueeze(1) - eb.unsqueeze(0)) ** 2).sum(-1)  # [17, 9]
    torch.testing.assert_close(a.squared_distances(b), explicit, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(a.squared_norms(), (ea * ea).sum(1), rtol=1e-12, atol=0)
    torch.testing.assert_close(a.min_squared_distances([b.take(torch.arange(4)), b.take(torch.arange(4, 9))], chunk=3),
                               explicit.min(1).values, rtol=1e-10, atol=1e-12)


def test_the_embedding_is_the_cross_entropy_gradient_at_the_predicted_label() -> None:
    g = torch.Generator().manual_seed(3)
    weight = torch.randn(4, 6, generator=g, dtype=torch.float64, requires_grad=True)
    feature = torch.randn(6, generator=g, dtype=torch.float64)
    logits = weight @ feature
    loss = torch.nn.functional.cross_entropy(logits.unsqueeze(0), logits.argmax().unsqueeze(0))
    loss.backward()
    emb = GradientEmbeddings.from_predictions(torch.softmax(logits.detach(), 0).unsqueeze(0), feature.unsqueeze(0))
    torch.testing.assert_close(emb.explicit()[0], weight.grad.reshape(-1), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("seed", range(4))
def test_kmeanspp_on_the_factors_picks_what_the_reference_picks_on_explicit_embeddings(seed: int) -> None:
    emb, earlier = embeddings(30, 4, 5, seed), embeddings(3, 4, 5, seed + 7)
    d2 = emb.min_squared_distances([earlier])
    picks = kmeanspp_seeding(6, emb.squared_norms(), emb.squared_distances_to, torch.Generator().manual_seed(seed), d2)
    assert picks.tolist() == kmeanspp_reference(emb.explicit().numpy(), 6, earlier.explicit().numpy(), seed)
    first = kmeanspp_seeding(6, emb.squared_norms(), emb.squared_distances_to, torch.Generator().manual_seed(seed))
    assert first.tolist() == kmeanspp_reference(emb.explicit().numpy(), 6, None, seed)


# --- distances and candidates ---------------------------------------------------------------


def test_chunked_nearest_centre_distances_equal_the_brute_force_ones() -> None:
    x, c = points(11, 3, 0), points(10, 3, 1)
    expected = torch.tensor([min(sq(p, q) for q in c.tolist()) for p in x.tolist()], dtype=torch.float64)
    torch.testing.assert_close(min_squared_distances(x, [c[:4], c[4:]], chunk=3), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(squared_distances(x, c).min(1).values, expected, rtol=1e-10, atol=1e-12)
    assert torch.isinf(min_squared_distances(x, [])).all()


def test_candidates_are_a_seeded_uniform_subsample_of_the_selectable_pixels() -> None:
    excluded = torch.zeros(6, 7, dtype=torch.bool)
    excluded[:2] = True
    picks = [candidate_pixels(excluded, 10, torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert torch.equal(picks[0], picks[1]) and not torch.equal(picks[0], picks[2])
    assert picks[0].numel() == 10 and len(set(picks[0].tolist())) == 10
    assert not excluded.reshape(-1)[picks[0]].any()
    everything = candidate_pixels(excluded, 1000, torch.Generator().manual_seed(0))
    assert sorted(everything.tolist()) == list(range(14, 42))
    assert candidate_pixels(torch.ones(3, 3, dtype=torch.bool), 5, None).numel() == 0


def test_growing_rows_hold_every_block_appended_in_order() -> None:
    from strategies.diversity.growing_rows import GrowingRows

    rows, blocks = GrowingRows(), [points(k, 3, k) for k in (5, 0, 20, 1, 40)]
    assert rows.tensor() is None and len(rows) == 0
    for block in blocks:
        rows.append(block)
    assert len(rows) == 66 and torch.equal(rows.tensor(), torch.cat(blocks))
