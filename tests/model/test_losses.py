import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from model import ImplicitCorrespondenceNet, preset
from model.losses import (
    chamfer_distance,
    emd_sinkhorn,
    knn_indices,
    mapped_normals,
    normal_consistency_loss,
    occupancy_loss,
    part_supervision_loss,
    self_reconstruction_loss,
    smoothness_loss,
    stage_losses,
)


def t(a):
    return torch.tensor(a, dtype=torch.float32)


def test_occupancy_loss_uses_max_over_branches():
    emb = t([[[0.1, 0.9], [0.2, 0.3], [0.6, 0.0]]])  # maxima 0.9, 0.3, 0.6
    occ = t([[1.0, 0.0, 1.0]])
    expected = (0.1**2 + 0.3**2 + 0.4**2) / 3
    assert occupancy_loss(emb, occ).item() == pytest.approx(expected, rel=1e-6)


def test_self_reconstruction_is_mean_squared_distance():
    x = t([[[0, 0, 0], [1, 1, 1]]])
    r = t([[[0, 0, 2], [1, 1, 1]]])
    assert self_reconstruction_loss(r, x).item() == pytest.approx(2.0)


def test_chamfer_by_hand():
    a = t([[[0, 0, 0], [1, 0, 0]]])
    b = t([[[0, 0, 0], [0, 2, 0], [1, 1, 0]]])
    # a->b: 0 and 1 (to [1,1,0]); b->a: 0, 4, 1
    expected = (0 + 1) / 2 + (0 + 4 + 1) / 3
    assert chamfer_distance(a, b).item() == pytest.approx(expected, rel=1e-6)


def test_emd_is_within_two_percent_of_exact_assignment():
    rng = np.random.default_rng(7)
    errors = []
    for _ in range(8):
        a, b = rng.random((64, 3)), rng.random((64, 3))
        cost = cdist(a, b)
        rows, cols = linear_sum_assignment(cost)
        exact = cost[rows, cols].mean()
        approx = emd_sinkhorn(t(a)[None], t(b)[None]).item()
        errors.append(abs(approx - exact) / exact)
    assert max(errors) < 0.02, errors


def test_emd_of_a_translated_set_is_the_translation_length():
    a = torch.rand(1, 50, 3)
    assert emd_sinkhorn(a, a + t([0.0, 0.0, 3.0])).item() == pytest.approx(3.0, rel=0.02)
    assert emd_sinkhorn(a, a).item() < 0.02 * a.std().item()


def test_mapped_normals_of_a_linear_map_follow_inverse_transpose():
    torch.manual_seed(0)
    A = t([[2.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0.1, 0.0, 0.7]])
    points = torch.rand(1, 20, 3)
    normals = torch.nn.functional.normalize(torch.randn(1, 20, 3), dim=-1)
    got = mapped_normals(lambda p: p @ A.T, points, normals)
    want = torch.nn.functional.normalize(normals @ torch.linalg.inv(A), dim=-1)
    assert torch.allclose(got, want, atol=1e-4)


def test_a_squashed_patch_gets_a_bounded_normal_gradient():
    def gradient(squash):  # the map flattens x by `squash` and shears z by as much: the patch's area goes to 0
        shear = torch.tensor(squash, requires_grad=True)
        squashed = lambda p: torch.stack([squash * p[..., 0], p[..., 1], p[..., 2] + shear * p[..., 0]], -1)
        mapped_normals(squashed, torch.zeros(1, 1, 3), t([[[0.0, 0.0, 1.0]]]))[..., 0].sum().backward()
        return abs(shear.grad.item())

    # 0.35 for an undistorted patch; it grew as 1/squash (1e5 at 1e-6) with a normalisation eps of 1e-9
    assert gradient(1.0) == pytest.approx(0.354, abs=1e-3)
    assert gradient(1e-4) <= 100.01 and gradient(1e-6) <= 100.01


def test_normal_consistency_by_hand():
    pred_p = t([[[0, 0, 0], [1, 0, 0]]])
    pred_n = t([[[0, 0, 1], [0, 1, 0]]])
    tgt_p = t([[[0, 0, 0.1], [1, 0, 0.1]]])
    tgt_n = t([[[0, 0, -1], [0, 0, 1]]])  # sign ignored; second is perpendicular
    assert normal_consistency_loss(pred_p, pred_n, tgt_p, tgt_n).item() == pytest.approx(0.5)


def test_smoothness_by_hand():
    mapped = t([[[0, 0, 0], [1, 0, 0], [2, 0, 0], [5, 0, 0]]])
    nbrs = torch.tensor([[[1, 2], [0, 2], [0, 1], [1, 2]]])
    # laplacians: 0-1.5, 1-1, 2-0.5, 5-1.5 -> squared 2.25, 0, 2.25, 12.25
    assert smoothness_loss(mapped, nbrs).item() == pytest.approx((2.25 + 0 + 2.25 + 12.25) / 4)


def test_balanced_part_loss_weighs_parts_by_inverse_sqrt_share():
    # four points of part 0, one of part 1, one unknown; f puts 0.9 on the true branch
    labels = torch.tensor([[0, 0, 0, 0, 1, -1]])
    emb = t([[[0.9, 0.1]] * 4 + [[0.1, 0.9]] + [[0.5, 0.5]]])
    emb[0, 4] = t([0.3, 0.7])  # the small part is the worse fit
    logits = torch.logit(emb[0, :5])
    ce = -torch.log_softmax(logits, 1)[torch.arange(5), labels[0, :5]]
    assert float(part_supervision_loss(emb, labels)) == pytest.approx(float(ce.mean()), rel=1e-5)
    w = torch.tensor([4 ** -0.5] * 4 + [1.0])  # 1/sqrt(count), normalised by the summed weight
    balanced = float((w * ce).sum() / w.sum())
    assert float(part_supervision_loss(emb, labels, balance=True)) == pytest.approx(balanced, rel=1e-5)
    assert balanced > float(ce.mean())  # the small part's larger loss counts for more


def test_knn_excludes_self():
    p = t([[[0, 0, 0], [1, 0, 0], [3, 0, 0]]])
    assert knn_indices(p, 1)[0, :, 0].tolist() == [1, 0, 1]


def _batch(b=2, n=64):
    torch.manual_seed(1)
    normals = torch.nn.functional.normalize(torch.randn(b, n, 3), dim=-1)
    return {
        "encoder_points": torch.rand(b, n, 3) - 0.5,
        "occ_points": torch.rand(b, n, 3) - 0.5,
        "occ_values": (torch.rand(b, n) > 0.5).float(),
        "surface_points": torch.rand(b, n, 3) - 0.5,
        "surface_normals": normals,
    }


@pytest.mark.parametrize("stage,terms", [(1, {"occupancy"}), (2, {"occupancy", "self_recon"}),
                                         (3, {"occupancy", "self_recon", "chamfer", "emd", "normal", "smooth"})])
def test_stage_losses_have_their_terms(stage, terms):
    net = ImplicitCorrespondenceNet(preset("tiny"))
    total, named = stage_losses(net, _batch(), stage)
    assert set(named) == terms
    assert torch.isfinite(total)


def test_normal_term_has_gradient_into_f_and_g():
    """The authors' code detached normals; here the normal term alone moves f and g."""
    from model.losses import LossWeights

    net = ImplicitCorrespondenceNet(preset("tiny"))
    w = LossWeights(occupancy=0, self_recon=0, chamfer=0, emd=0, normal=1, smooth=0)
    total, _ = stage_losses(net, _batch(), 3, w)
    total.backward()
    for module in (net.f, net.g, net.encoder):
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and sum(float(g.abs().sum()) for g in grads) > 0


def test_stage3_needs_two_shapes():
    net = ImplicitCorrespondenceNet(preset("tiny"))
    with pytest.raises(ValueError, match="at least 2 shapes"):
        stage_losses(net, _batch(b=1), 3)
