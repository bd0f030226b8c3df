"""Each LDL-VA formula against a hand computation (LDLVA paper and its official code)."""

from __future__ import annotations

import math

import pytest
import torch

from zoo.ldl.discriminative import inter_class_gradient, inter_class_term, intra_class_loss, update_centers
from zoo.ldl.knn import NeighborError, nearest_neighbors
from zoo.ldl.similarity import CalibrationNet, local_similarity, relative_similarity


def test_local_similarity_paper_and_official_forms():
    anchor = torch.tensor([[0.0, 0.0]])
    neighbors = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
    gaussian = local_similarity(anchor, neighbors, "gaussian", 0.5)  # exp(-‖·‖²/δ²), δ² = 0.5
    l1 = local_similarity(anchor, neighbors, "l1", 0.5)  # exp(-‖·‖₁/0.5)
    assert torch.allclose(gaussian, torch.tensor([[math.exp(-2.0), math.exp(-1.0)]]))
    assert torch.allclose(l1, torch.tensor([[math.exp(-2.0), math.exp(-2.0)]]))
    with pytest.raises(ValueError, match="similarity"):
        local_similarity(anchor, neighbors, "cosine")


def test_relative_similarity_keeps_ratios_and_survives_far_neighbours():
    anchor = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    neighbors = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[100.0, 0.0], [101.0, 0.0]]])
    rel = relative_similarity(local_similarity(anchor, neighbors, log=True))
    assert torch.allclose(rel[0], torch.tensor([math.exp(-1.0), 1.0]))  # e^-2 / e^-1, e^-1 / e^-1
    assert (local_similarity(anchor, neighbors)[1] == 0).all()  # plain exp underflows: 0/0 in d̃
    assert torch.allclose(rel[1], torch.tensor([1.0, math.exp(-201.0 / 0.5)]))


def test_calibration_sizes_and_range():
    g = CalibrationNet(6)
    shapes = [tuple(m.weight.shape) for m in g.net if isinstance(m, torch.nn.Linear)]
    assert shapes == [(512, 12), (256, 512), (1, 256)]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in g.net) == 2
    zeta = g(torch.randn(4, 6), torch.randn(4, 3, 6))
    assert zeta.shape == (4, 3) and (zeta > 0).all() and (zeta < 1).all()
    clamped = CalibrationNet(6, clamp_min=-1.3)
    with torch.no_grad():
        clamped.net[-1].bias.fill_(-100.0)
    zeta = clamped(torch.randn(4, 6), torch.randn(4, 3, 6))
    assert torch.allclose(zeta, torch.full((4, 3), 1 / (1 + math.exp(1.3))))  # official floor 0.214


def test_intra_class_loss_value_and_gradient():
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1])
    w = torch.tensor([1.0, 0.5, 1.0], requires_grad=True)
    centers = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    loss = intra_class_loss(x, labels, w, centers)
    # ½ (1·‖(0,-1)‖² + 0.5·‖(2,-1)‖² + 1·‖(0,2)‖²) / 3 = ½ (1 + 2.5 + 4) / 3
    assert loss.item() == pytest.approx(0.5 * 7.5 / 3)
    loss.backward()
    expected = torch.tensor([[0.0, -1.0], [1.0, -0.5], [0.0, 2.0]]) / 3  # w_j (x_j - μ_{y_j}) / M
    assert torch.allclose(x.grad, expected)
    assert w.grad is None  # the weight (confidence) is stop-gradiented, as in the official code


def test_inter_class_term_value_and_gradient():
    centers = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]], requires_grad=True)
    value = inter_class_term(centers)  # τ = √V = 2; two ordered pairs, ‖Δ‖² = 2
    assert value.item() == pytest.approx(2 * math.exp(-1.0))
    (grad,) = torch.autograd.grad(value, centers)
    hand = 2 * math.exp(-1.0) * torch.tensor([[1.0, 1.0, 0.0, 0.0], [-1.0, -1.0, 0.0, 0.0]])
    assert torch.allclose(grad, hand)
    assert torch.allclose(inter_class_gradient(centers.detach()), hand)
    random = torch.randn(5, 8, requires_grad=True)
    (auto,) = torch.autograd.grad(inter_class_term(random, temperature=3.0), random)
    assert torch.allclose(inter_class_gradient(random.detach(), temperature=3.0), auto, atol=1e-6)


def test_center_update_matches_hand_computation():
    centers = torch.zeros(2, 2)
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    labels, w = torch.tensor([0, 0, 1]), torch.tensor([1.0, 0.5, 1.0])
    update_centers(centers, x, labels, w, lr=0.5, repulsion=0.0)
    # μ_c += α Σ w_j (x_j - μ_c) / ((n_c + 1) M): n_0 = 2, n_1 = 1, M = 3
    assert torch.allclose(centers, torch.tensor([[0.5 * 2.5 / 9, 0.0], [0.0, 0.5 * 2.0 / 6]]))
    before = centers.clone()
    update_centers(centers, x[:0], labels[:0], w[:0], lr=0.5, repulsion=0.1)  # repulsion step only
    assert torch.allclose(centers, before - 0.05 * inter_class_gradient(before))
    assert torch.dist(centers[0], centers[1]) > torch.dist(before[0], before[1])  # pushed apart


def _brute_force(points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    d = torch.cdist(points.double(), points.double())
    d.fill_diagonal_(float("inf"))
    dist, idx = d.sort(dim=1)
    return idx[:, :k], dist[:, :k].float()


@pytest.mark.parametrize(("n", "dim", "method"), [(3000, 2, "kdtree"), (3000, 2, "brute"), (400, 40, "auto")])
def test_knn_equals_brute_force(n, dim, method):
    points = torch.rand(n, dim, generator=torch.Generator().manual_seed(n + dim))
    idx, dist = nearest_neighbors(points, k=8, method=method, chunk_size=512)
    ref_idx, ref_dist = _brute_force(points, 8)
    assert torch.equal(idx, ref_idx)
    assert torch.allclose(dist, ref_dist, atol=1e-5)


def test_knn_never_returns_self_with_duplicates():
    base = torch.rand(50, 2, generator=torch.Generator().manual_seed(1))
    points = torch.cat([base, base, base])  # every point has two exact twins
    idx, dist = nearest_neighbors(points, k=3)
    assert not (idx == torch.arange(150)[:, None]).any()
    twins = torch.stack([idx[:, 0] % 50, idx[:, 1] % 50])
    assert torch.equal(twins, torch.arange(150).repeat(2, 1) % 50)
    assert (dist[:, :2] == 0).all()
    with pytest.raises(NeighborError, match="k must be"):
        nearest_neighbors(points[:3], k=3)


def test_knn_with_more_than_k_twins_drops_the_last_candidate_when_self_is_missing():
    """With more than K exact twins the k-d tree's K + 1 candidates may all be twins, self not among them:
    the last (farthest) candidate is dropped, so a row keeps the first K candidates that are not itself."""
    from scipy.spatial import cKDTree

    points = torch.cat([torch.zeros(6, 2), torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])])
    idx, dist = nearest_neighbors(points, k=2, method="kdtree")
    _, candidates = cKDTree(points.numpy()).query(points.numpy(), k=3)
    without_self = [i for i, row in enumerate(candidates.tolist()) if i not in row]
    assert without_self and set(without_self) <= set(range(6))  # the case under test happens
    expected = [[j for j in row if j != i][:2] for i, row in enumerate(candidates.tolist())]
    assert idx.tolist() == expected
    assert (dist[:6] == 0).all() and not (idx == torch.arange(9)[:, None]).any()
