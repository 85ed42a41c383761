import pytest
import torch
from torch.nn import functional as F

from model import ImplicitCorrespondenceNet, ModelConfig, preset


def test_paper_network_has_the_papers_layers():
    net = ImplicitCorrespondenceNet(preset("paper"))
    widths = [(l.in_features, l.out_features) for l in net.encoder.point_layers]
    assert widths == [(3, 64), (64, 64), (64, 64), (64, 128), (128, 1024)]
    assert [(l.in_features, l.out_features) for l in net.encoder.fc_layers] == [(1024, 512), (512, 256)]
    assert [(l.in_features, l.out_features) for l in net.f.layers] == [(259, 3072), (3072, 384), (384, 12)]
    g = [(l.in_features, l.out_features) for l in net.g.layers]
    assert len(g) == 8 and g[0] == (268, 512) and g[4] == (512 + 268, 512)
    assert all(w == (512, 512) for i, w in enumerate(g) if i not in (0, 4))
    assert (net.g.out.in_features, net.g.out.out_features) == (512, 3)


def test_split_first_layer_equals_concatenation():
    torch.manual_seed(0)
    net = ImplicitCorrespondenceNet(preset("tiny"))
    x, z = torch.rand(2, 10, 3), torch.randn(2, net.cfg.code_dim)
    cat = torch.cat([x, z[:, None].expand(-1, 10, -1)], dim=-1)
    h = net.f.layers[0](cat)
    for layer in net.f.layers[1:]:
        h = layer(F.leaky_relu(h, 0.02))
    assert torch.allclose(net.embed(x, z), torch.sigmoid(h), atol=1e-6)


def test_output_ranges_and_shapes():
    net = ImplicitCorrespondenceNet(preset("tiny"))
    pts = torch.rand(3, 100, 3) - 0.5
    z = net.encode(pts)
    o = net.embed(pts, z)
    x = net.invert(o, z)
    assert z.shape == (3, 64) and o.shape == (3, 100, 8) and x.shape == (3, 100, 3)
    assert o.min() >= 0 and o.max() <= 1 and x.abs().max() <= 1
    assert net.occupancy(o).shape == (3, 100)


def test_encoder_is_permutation_invariant():
    net = ImplicitCorrespondenceNet(preset("tiny"))
    pts = torch.rand(1, 200, 3)
    assert torch.allclose(net.encode(pts), net.encode(pts[:, torch.randperm(200)]), atol=1e-6)


def test_config_round_trip_and_validation():
    cfg = preset("small")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="g_skip"):
        ModelConfig(g_skip=9)
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")


def test_fourier_features_of_x_widen_only_fs_first_layer():
    plain = ImplicitCorrespondenceNet(preset("tiny"))
    net = ImplicitCorrespondenceNet(preset("tiny").with_(f_frequencies=3))
    assert net.f.layers[0].in_features == plain.f.layers[0].in_features + 18
    assert net.state_dict().keys() == plain.state_dict().keys()  # the frequencies are not weights
    x = torch.tensor([[[0.25, -0.5, 0.125]]])
    feats = net.f.point_features(x)[0, 0]
    assert torch.allclose(feats[:3], x[0, 0])
    # sin then cos of (x, y, z) at pi, 2 pi, 4 pi, per axis
    angles = torch.pi * torch.tensor([0.25, 0.5, 1.0, -0.5, -1.0, -2.0, 0.125, 0.25, 0.5])
    assert torch.allclose(feats[3:12], torch.sin(angles), atol=1e-6)
    assert torch.allclose(feats[12:], torch.cos(angles), atol=1e-6)
    # a config saved before the option existed loads as the paper's f
    old = {k: v for k, v in preset("small").to_dict().items() if k != "f_frequencies"}
    assert ModelConfig.from_dict(old).f_frequencies == 0
    with pytest.raises(ValueError, match="f_frequencies"):
        ModelConfig(f_frequencies=-1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    torch.manual_seed(0)
    net = ImplicitCorrespondenceNet(preset("tiny"))
    pts = torch.rand(2, 128, 3)
    want = net.invert(net.embed(pts, net.encode(pts)), net.encode(pts))
    gnet = net.cuda()
    gp = pts.cuda()
    got = gnet.invert(gnet.embed(gp, gnet.encode(gp)), gnet.encode(gp)).cpu()
    assert torch.allclose(want, got, atol=1e-4)
