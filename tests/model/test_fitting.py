"""Fitting a shape's code to its surface at inference: normals, their outward sign, the fit,
and what the engine does with the fitted code."""
import numpy as np
import pytest
import torch

from model import Correspondence, fitting
from model.fitting import fit_code, orient_outward
from model.normals import pca_normals
from training.evaluate import auroc, procedural_shapes, shape_miou
from training.export import export
from training.families import AIRPLANE_PARTS


def sphere(n: int, seed: int = 0) -> np.ndarray:
    p = np.random.default_rng(seed).normal(size=(n, 3))
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def test_rays_orient_a_spheres_normals_whatever_the_model_says():
    points = sphere(3000)
    normals = pca_normals(points) * np.random.default_rng(1).choice([-1.0, 1.0], (3000, 1))
    wrong_model = lambda x: (np.linalg.norm(x, axis=1) > 1).astype(float)  # inside out
    outward = orient_outward(points, normals, points, wrong_model, offset=0.01)
    assert np.mean((outward * points).sum(1) > 0) > 0.98


@pytest.mark.parametrize("inside_out", [False, True])
def test_a_thin_plate_takes_its_sign_from_the_occupancy(inside_out):
    # both rays escape a plate thinner than the point spacing: the model decides
    rng = np.random.default_rng(0)
    top, bottom = np.c_[rng.random((600, 2)), np.full(600, 0.001)], np.c_[rng.random((600, 2)), np.full(600, -0.001)]
    points = np.concatenate([top, bottom])
    normals = np.tile([0.0, 0.0, 1.0], (1200, 1))
    slab = lambda x: np.exp(-np.abs(x[:, 2]) / 0.01)  # a blurred plate, as f draws thin ones
    occupancy = (lambda x: 1 - slab(x)) if inside_out else slab
    outward = orient_outward(points, normals, points, occupancy, offset=0.01)
    right = np.mean(np.sign(outward[:, 2]) == np.sign(points[:, 2]))
    assert right == (0.0 if inside_out else 1.0)


@pytest.fixture(scope="module")
def tables():
    return procedural_shapes("table", 20, first=2_000_000)


@pytest.fixture(scope="module")
def engines():
    return (Correspondence.load(category="table", device="cpu", fit_steps=0),
            Correspondence.load(category="table", device="cpu", fit_steps=30))


def test_the_fit_lowers_its_loss_and_leaves_the_network_alone(engines, tables):
    plain, _ = engines
    prep = plain.prepare(tables[0]["surface_points"])
    points, normals = prep.points[:1024], tables[0]["surface_normals"][:1024]
    weights = [p.detach().clone() for p in plain.net.parameters()]

    def loss(code):
        occ = lambda x: plain.net.embed(torch.as_tensor(x, dtype=torch.float32)[None], code).max(-1).values
        with torch.no_grad():
            return float(((occ(points - 0.01 * normals) - 1) ** 2).mean() + (occ(points + 0.01 * normals) ** 2).mean())

    fitted = fit_code(plain.net.embed, prep.code, points, normals, steps=30)
    assert loss(fitted) < 0.95 * loss(prep.code)  # measured with the shipped table: 0.359 -> 0.283
    assert all(p.grad is None and torch.equal(p, w) for p, w in zip(plain.net.parameters(), weights))


def test_the_fit_in_chunks_takes_the_steps_of_one_pass(engines, tables, monkeypatch):
    plain, _ = engines
    prep = plain.prepare(tables[0]["surface_points"])
    points, normals = prep.points[:1000], tables[0]["surface_normals"][:1000]  # chunks of 512: a ragged last one
    chunked = fit_code(plain.net.embed, prep.code, points, normals, steps=10)
    monkeypatch.setattr(fitting, "FIT_CHUNK", 1 << 20)
    whole = fit_code(plain.net.embed, prep.code, points, normals, steps=10)
    assert torch.allclose(chunked, whole, atol=1e-4)
    assert float((whole - prep.code).abs().max()) > 1e-2  # the steps moved the code


def test_fitted_codes_segment_unseen_airplanes_better():
    planes = procedural_shapes("airplane", 20, first=2_000_000)
    # without the shipped part offsets, to see the fit alone
    mious = [[shape_miou(e.segment(s["surface_points"]), s["surface_labels"], range(len(AIRPLANE_PARTS)))[0]
              for s in planes]
             for e in (Correspondence.load(category="airplane", device="cpu", fit_steps=f, part_bias=None)
                       for f in (0, 30))]
    # measured with the shipped airplane: 91.2 -> 92.2 on average
    assert np.mean(mious[1]) > np.mean(mious[0]) and np.mean(np.greater_equal(mious[1], mious[0])) >= 0.5


def test_the_match_is_the_fitted_codes_and_the_confidence_the_encoders(engines, tables):
    """The fitted code places the match; E's codes, on which g was trained, judge it, and
    tell the points of parts the source lacks as well as without fitting."""
    plain, fitting = engines
    prep = fitting.prepare(tables[0]["surface_points"])
    assert prep.fitted and not torch.equal(prep.code, prep.encoder_code)
    a, b = plain.correspond(tables[0]["surface_points"], tables[1]["surface_points"]), \
        fitting.correspond(prep, tables[1]["surface_points"])
    np.testing.assert_allclose(b.raw, a.raw, rtol=1e-5, atol=1e-6)  # g's map is E's codes'
    assert np.mean(a.source_index != b.source_index) > 0.01  # a different code places the matches
    scores = {}
    for name, engine in (("plain", plain), ("fitted", fitting)):
        exists, conf = [], []
        for src, tgt in zip(tables[:5], tables[1:6]):
            conf.append(engine.correspond(src["surface_points"], tgt["surface_points"]).confidence)
            exists.append(np.isin(tgt["surface_labels"], src["surface_labels"]))
        exists, conf = np.concatenate(exists), np.concatenate(conf)
        scores[name] = auroc(conf[exists], conf[~exists])
    assert scores["fitted"] > scores["plain"] - 0.02, scores


def test_export_stores_the_engines_defaults(tmp_path):
    from model import Checkpoint, ImplicitCorrespondenceNet, load_checkpoint, preset, save_checkpoint

    net = ImplicitCorrespondenceNet(preset("tiny"))
    save_checkpoint(tmp_path / "Corr-3.pth", Checkpoint(preset("tiny"), net.state_dict(), "table", stage=3, epoch=3))
    export(tmp_path / "Corr-3.pth", tmp_path / "a.pth", calibration_shapes=0, fit_steps=7, embedding_weight=0.25)
    export(tmp_path / "a.pth", tmp_path / "b.pth", calibration_shapes=0)
    a, b = Correspondence.load(tmp_path / "a.pth"), Correspondence.load(tmp_path / "b.pth")
    assert (a.calibration.fit_steps, a.calibration.embedding_weight) == (7, 0.25)
    assert a.info()["fit_steps"] == 7 and a.info()["embedding_weight"] == 0.25  # what the server reports
    assert (b.calibration.fit_steps, b.calibration.embedding_weight) == (0, 0.5)  # a re-export without them: the engine's defaults
    assert Correspondence.load(tmp_path / "a.pth", embedding_weight=1.0).calibration.embedding_weight == 1.0
    assert Correspondence.load(tmp_path / "a.pth", fit_steps=2).calibration.fit_steps == 2
    assert load_checkpoint(tmp_path / "b.pth").extra["exported_from"] == "Corr-3.pth"
    with pytest.raises(ValueError, match="fit_steps must be >= 0"):
        export(tmp_path / "a.pth", tmp_path / "c.pth", calibration_shapes=0, fit_steps=-1)
    with pytest.raises(ValueError, match="embedding_weight must be a finite number >= 0"):
        export(tmp_path / "a.pth", tmp_path / "c.pth", calibration_shapes=0, embedding_weight=-0.5)
    assert not (tmp_path / "c.pth").exists()
