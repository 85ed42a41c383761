"""The rebuild distance: how far a model's own rebuild of a shape lies from it."""
import numpy as np
import pytest

from model import Correspondence
from training.prepare import load_psb_upright


@pytest.fixture(scope="module")
def chair_model():
    return Correspondence.load(category="chair", device="cpu")


def test_the_chair_model_explains_a_real_chair_and_not_a_sheet_or_an_airplane(chair_model, psb_dir):
    chair = chair_model.prepare(load_psb_upright(psb_dir / "chair" / "101.off.gz"))
    sheet = np.random.default_rng(0).random((2500, 3)) * [1, 0, 1]
    near = chair_model.rebuild_distance(chair)
    assert near < 0.05
    assert chair_model.rebuild_distance(sheet) > 2 * near
    assert chair_model.rebuild_distance(load_psb_upright(psb_dir / "airplane" / "69.off.gz")) > 2 * near
    assert chair.measures["rebuild_distance"] == near  # kept on the prepared shape
    assert chair_model.rebuild_distance(chair) == near


def test_from_es_code_a_shape_is_only_encoded_and_still_told_apart(chair_model, psb_dir):
    """`fitted=False` (what category "auto" ranks models by): the rebuild from E's code, of a
    shape not yet prepared or of a prepared one, tells a chair from an airplane as well, and
    nothing is kept on the prepared shape."""
    chair_mesh = load_psb_upright(psb_dir / "chair" / "101.off.gz")
    near = chair_model.rebuild_distance(chair_mesh, fitted=False)
    assert near < 0.05
    assert chair_model.rebuild_distance(load_psb_upright(psb_dir / "airplane" / "69.off.gz"), fitted=False) > 2 * near
    chair = chair_model.prepare(chair_mesh)
    assert chair_model.rebuild_distance(chair, fitted=False) == pytest.approx(near, rel=0.05)
    assert "rebuild_distance" not in chair.measures
    assert chair_model.rebuild_distance(chair) != chair_model.rebuild_distance(chair, fitted=False)
