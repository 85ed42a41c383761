import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from model import load_checkpoint
from training.cli import stage_main
from training.prepare import prepare_procedural
from training.train import main as train_main
from training.trainer import TrainConfig, Trainer, labelled_mious

from ..conftest import child_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("chairs")
    prepare_procedural("chair", 6, d, workers=1)
    return d


def run(data, ckdir, **kw):
    cfg = dict(cate_name="chair", data_dir=str(data), checkpoint_dir=str(ckdir), preset="tiny", batch_size=4,
               lr=1e-3, augment=False, progress=False, occupancy_points=512, surface_points=256, val_fraction=0.2)
    cfg.update(kw)
    return Trainer(TrainConfig(**cfg)).run()


def weights(path):
    return load_checkpoint(path).state_dict


# g only starts to invert f once f's embedding carries information: ~100 steps in
EPOCHS = {1: 40, 2: 200, 3: 40}


@pytest.fixture(scope="module")
def chain(data, tmp_path_factory):
    """The three stages run in order, each from the previous one's last checkpoint, as in the paper."""
    paths, previous = {}, None
    for stage in (1, 2, 3):
        ckdir = tmp_path_factory.mktemp(f"stage{stage}")
        kw = dict(pretrain_model=True, pretrain_model_name=str(previous)) if previous else {}
        first = 0 if previous is None else load_checkpoint(previous).epoch + 1
        previous = paths[stage] = run(data, ckdir, stage=stage, resolution=32, epoch=first + EPOCHS[stage], **kw)
    return paths


@pytest.mark.parametrize("stage,term", [(1, "occupancy"), (2, "self_recon"), (3, "chamfer")])
def test_each_stage_lowers_its_loss(chain, stage, term):
    path = chain[stage]
    history = [h for h in load_checkpoint(path).extra["history"] if h["stage"] == stage]
    first, last = history[0][f"train_{term}"], np.mean([h[f"train_{term}"] for h in history[-3:]])
    assert last < 0.85 * first, (first, last)
    assert (path.parent / "log.csv").read_text().count("\n") == EPOCHS[stage] + 1  # header + one line per epoch
    assert [p.name for p in path.parent.glob("Corr-*.pth")] == [path.name]  # older epochs pruned
    validated = [h for h in history if "val_total" in h]  # stage 3 needs 2 validation shapes, this has 1
    assert len(validated) == (0 if stage == 3 else len(history))
    assert all("val_part_miou" in h for h in validated)  # the procedural shapes carry part labels


def test_keep_best_keeps_the_epoch_of_highest_validation_part_miou(data, tmp_path):
    common = ["--cate_name", "chair", "--data_dir", str(data), "--checkpoint_dir", str(tmp_path), "--preset", "tiny",
              "--batch_size", "4", "--no_progress", "--occupancy_points", "256", "--part_weight", "1", "--lr", "1e-3"]
    assert stage_main(1, common + ["--epoch", "6", "--keep_best"]) == 0
    scores = [h["val_part_miou"] for h in load_checkpoint(tmp_path / "Corr-5.pth").extra["history"]]
    assert load_checkpoint(tmp_path / "best.pth").epoch == int(np.argmax(scores))
    assert stage_main(2, common + ["--epoch", "7", "--pretrain_model", "TRUE", "--pretrain_model_name", "Corr-5.pth",
                                   "--keep_best"]) == 0
    assert load_checkpoint(tmp_path / "best.pth").epoch == 6  # a new stage starts its own best


def test_average_last_averages_the_last_epochs_and_keeps_their_checkpoints(data, tmp_path):
    common = ["--cate_name", "chair", "--data_dir", str(data), "--checkpoint_dir", str(tmp_path), "--preset", "tiny",
              "--batch_size", "4", "--no_progress", "--occupancy_points", "256", "--part_weight", "1",
              "--part_balance", "--lr", "1e-3"]
    assert stage_main(1, common + ["--epoch", "5", "--average_last", "3"]) == 0
    assert sorted(p.name for p in tmp_path.glob("Corr-*.pth")) == ["Corr-2.pth", "Corr-3.pth", "Corr-4.pth"]
    averaged = load_checkpoint(tmp_path / "averaged.pth")
    assert averaged.extra["averaged_epochs"] == [2, 3, 4] and averaged.epoch == 4 and averaged.optimizer is None
    last = [weights(tmp_path / f"Corr-{e}.pth") for e in (2, 3, 4)]
    for k, v in averaged.state_dict.items():
        assert torch.allclose(v, sum(w[k] for w in last) / 3, atol=1e-6)
    assert not torch.allclose(averaged.state_dict["f.layers.0.weight"], last[-1]["f.layers.0.weight"])
    # the next stage averages its own epochs only
    assert stage_main(2, common + ["--epoch", "7", "--average_last", "3", "--pretrain_model", "TRUE",
                                   "--pretrain_model_name", "Corr-4.pth"]) == 0
    assert load_checkpoint(tmp_path / "averaged.pth").extra["averaged_epochs"] == [5, 6]
    assert stage_main(1, common + ["--epoch", "6", "--average_last", "-1"]) == 2


def test_validation_part_miou_counts_labelled_points_only():
    labels = np.array([[0, 0, 1, 1, -1, -1], [-1] * 6, [2, 2, 2, 0, 0, 0]])
    pred = np.array([[0, 0, 1, 1, 2, 2], [0] * 6, [2, 2, 0, 0, 0, 0]])
    # shape 1: perfect on its labelled points, part 2 in neither counts 1; shape 2 has no
    # labels and is skipped; shape 3: part 2 IoU 2/3, part 0 IoU 3/4, part 1 in neither
    assert labelled_mious(pred, labels, 3) == pytest.approx([1.0, (2 / 3 + 3 / 4 + 1) / 3])


def test_resume_after_interruption_gives_the_same_state(data, tmp_path):
    straight = run(data, tmp_path / "a", stage=3, epoch=4)
    run(data, tmp_path / "b", stage=3, epoch=2)  # "killed" after epoch 1
    resumed = run(data, tmp_path / "b", stage=3, epoch=4, resume=True)
    a, b = weights(straight), weights(resumed)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert load_checkpoint(resumed).epoch == 3


def test_seed_flag(data, tmp_path):
    common = ["--cate_name", "chair", "--data_dir", str(data), "--preset", "tiny", "--epoch", "1",
              "--batch_size", "3", "--no_progress", "--occupancy_points", "256"]
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        assert stage_main(1, common + ["--seed", seed, "--checkpoint_dir", str(tmp_path / name)]) == 0
    a, b, c = (weights(tmp_path / n / "Corr-0.pth") for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_fourier_features_flag_shapes_a_new_network_and_carries_over(data, tmp_path):
    common = ["--cate_name", "chair", "--data_dir", str(data), "--checkpoint_dir", str(tmp_path), "--preset", "tiny",
              "--batch_size", "3", "--no_progress", "--occupancy_points", "256"]
    assert stage_main(1, common + ["--epoch", "1", "--f_frequencies", "2"]) == 0
    assert stage_main(1, common + ["--epoch", "2", "--resolution", "32", "--pretrain_model", "TRUE",
                                   "--pretrain_model_name", "Corr-0.pth"]) == 0
    for name in ("Corr-0.pth", "Corr-1.pth"):  # the next run keeps the network it starts from
        ck = load_checkpoint(tmp_path / name)
        assert ck.config.f_frequencies == 2 and ck.build().f.layers[0].in_features == 3 + 12 + ck.config.code_dim


def test_the_papers_command_line_chain(data, tmp_path, capsys):
    common = ["--cate_name", "chair", "--data_dir", str(data), "--checkpoint_dir", str(tmp_path),
              "--preset", "tiny", "--no_progress", "--occupancy_points", "256", "--surface_points", "128"]
    assert stage_main(1, common + ["--epoch", "2", "--resolution", "16", "--batch_size", "4"]) == 0
    assert stage_main(1, common + ["--epoch", "3", "--resolution", "32", "--batch_size", "4",
                                   "--pretrain_model", "TRUE", "--pretrain_model_name", "Corr-1.pth"]) == 0
    ck = load_checkpoint(tmp_path / "Corr-2.pth")
    assert (ck.stage, ck.resolution, ck.epoch) == (1, 32, 2)
    assert (tmp_path / "Corr-1.pth").is_file()  # the previous run's checkpoint is kept
    assert stage_main(2, common + ["--epoch", "4", "--resolution", "64", "--batch_size", "4",
                                   "--pretrain_model", "TRUE", "--pretrain_model_name", "Corr-2.pth"]) == 0
    # stage 3 starts from all of stage 2, g included: with lr 0 nothing moves
    assert stage_main(3, common + ["--epoch", "5", "--resolution", "64", "--batch_size", "4", "--lr", "0",
                                   "--pretrain_model", "TRUE", "--pretrain_model_name", "Corr-3.pth"]) == 0
    s2, s3 = weights(tmp_path / "Corr-3.pth"), weights(tmp_path / "Corr-4.pth")
    assert all(torch.equal(s2[k], s3[k]) for k in s2 if k.startswith("g."))
    assert stage_main(3, common + ["--epoch", "6", "--batch_size", "1"]) == 2
    assert "too small for stage 3" in capsys.readouterr().err
    assert stage_main(2, common + ["--epoch", "9", "--pretrain_model", "TRUE", "--pretrain_model_name", "nope.pth"]) == 2


def test_whole_schedule_resumes(data, tmp_path, capsys):
    args = ["--cate_name", "chair", "--preset", "tiny", "--data_dir", str(data), "--checkpoint_dir", str(tmp_path),
            "--no_progress"]
    assert train_main(args) == 0
    final = load_checkpoint(tmp_path / "final.pth")
    assert (final.stage, final.resolution, final.epoch) == (3, 64, 4)
    capsys.readouterr()
    assert train_main(args + ["--resume"]) == 0
    assert capsys.readouterr().out.count("already finished") == 5


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_distributed_training(data, tmp_path):
    env = child_env(OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "training.train_stage2", "--cate_name", "chair",
           "--data_dir", str(data), "--checkpoint_dir", str(tmp_path), "--preset", "tiny", "--epoch", "2",
           "--batch_size", "4", "--device", "cpu", "--no_progress", "--occupancy_points", "256"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ck = load_checkpoint(tmp_path / "Corr-1.pth")
    assert ck.stage == 2 and len(ck.extra["history"]) == 2


def test_encoder_normals_flag_widens_a_pretrained_e_and_gives_the_samples_normals(data, tmp_path):
    common = ["--cate_name", "chair", "--data_dir", str(data), "--checkpoint_dir", str(tmp_path), "--preset", "tiny",
              "--batch_size", "3", "--no_progress", "--occupancy_points", "256"]
    assert stage_main(1, common + ["--epoch", "1"]) == 0
    before = weights(tmp_path / "Corr-0.pth")
    assert stage_main(2, common + ["--epoch", "3", "--pretrain_model", "TRUE", "--pretrain_model_name", "Corr-0.pth",
                                   "--encoder_normals"]) == 0
    ck = load_checkpoint(tmp_path / "Corr-2.pth")
    assert ck.config.encoder_normals and ck.state_dict["encoder.point_layers.0.weight"].shape[1] == 6
    # the normals' weights started at 0 and were trained; the points' columns carried over
    assert ck.state_dict["encoder.point_layers.0.weight"][:, 3:].abs().max() > 0
    assert before["encoder.point_layers.0.weight"].shape[1] == 3
    for f in data.glob("*.npz"):
        with np.load(f) as npz:
            n = npz["estimated_normals"]
            assert n.shape == npz["surface_points"].shape and np.allclose(np.linalg.norm(n, axis=1), 1, atol=1e-4)


def test_a_new_run_refuses_to_overwrite_a_run_of_its_stage(data, tmp_path, capsys):
    common = ["--cate_name", "chair", "--data_dir", str(data), "--checkpoint_dir", str(tmp_path), "--preset", "tiny",
              "--batch_size", "3", "--no_progress", "--occupancy_points", "256"]
    assert stage_main(1, common + ["--epoch", "2"]) == 0
    before = weights(tmp_path / "Corr-1.pth")
    assert stage_main(1, common + ["--epoch", "3"]) == 2  # would start again at epoch 0
    assert "--resume" in capsys.readouterr().err
    assert all(torch.equal(before[k], v) for k, v in weights(tmp_path / "Corr-1.pth").items())
    # going on from the run's own last epoch, as the paper's flags do, is allowed
    assert stage_main(1, common + ["--epoch", "3", "--pretrain_model", "TRUE", "--pretrain_model_name", "Corr-1.pth"]) == 0
    assert load_checkpoint(tmp_path / "Corr-2.pth").epoch == 2


def test_a_later_stage_never_writes_over_an_earlier_stages_checkpoint(data, tmp_path, capsys):
    common = ["--cate_name", "chair", "--data_dir", str(data), "--checkpoint_dir", str(tmp_path), "--preset", "tiny",
              "--batch_size", "3", "--no_progress", "--occupancy_points", "256"]
    assert stage_main(1, common + ["--epoch", "2"]) == 0
    before = weights(tmp_path / "Corr-1.pth")
    # stage 2 without --pretrain_model would train epochs 0-3 and replace Corr-1.pth of stage 1
    assert stage_main(2, common + ["--epoch", "4"]) == 2
    assert "write over" in capsys.readouterr().err
    # --epoch taken for the epochs to add: the pretrained stage-1 file is not this run's result
    assert stage_main(1, common + ["--epoch", "2", "--resolution", "32", "--pretrain_model", "TRUE",
                                   "--pretrain_model_name", "Corr-1.pth"]) == 2
    out = capsys.readouterr()
    assert "give --epoch above 2" in out.err and "saved" not in out.out
    ck = load_checkpoint(tmp_path / "Corr-1.pth")
    assert (ck.stage, ck.resolution) == (1, 16) and all(torch.equal(before[k], v) for k, v in ck.state_dict.items())
    assert sorted(p.name for p in tmp_path.glob("Corr-*.pth")) == ["Corr-1.pth"]


def test_a_resumed_run_takes_the_learning_rate_it_is_given(data, tmp_path, capsys):
    run(data, tmp_path, epoch=1)
    run(data, tmp_path, epoch=2, resume=True, lr=2.5e-4)
    assert load_checkpoint(tmp_path / "Corr-1.pth").optimizer["param_groups"][0]["lr"] == 2.5e-4
    assert "learning rate 0.00025 from here (the run had 0.001)" in capsys.readouterr().out


def test_resume_needs_a_run_and_other_stages_keep_their_log(data, tmp_path, capsys):
    common = ["--cate_name", "chair", "--data_dir", str(data), "--checkpoint_dir", str(tmp_path), "--preset", "tiny",
              "--batch_size", "3", "--no_progress", "--occupancy_points", "256"]
    assert stage_main(2, common + ["--epoch", "2", "--resume"]) == 2  # nothing there: not a silent new network
    assert "nothing to resume" in capsys.readouterr().err and not list(tmp_path.glob("Corr-*.pth"))
    assert stage_main(1, common + ["--epoch", "2"]) == 0
    assert load_checkpoint(tmp_path / "Corr-1.pth").extra["trained_on"] == sorted(f.stem for f in data.glob("*.npz"))
    pretrained = ["--pretrain_model", "TRUE", "--pretrain_model_name"]
    assert stage_main(2, common + ["--epoch", "4", *pretrained, "Corr-1.pth"]) == 0
    # stage 1 again in the same folder (epoch 0 at 32^3) keeps stage 2's rows of the log
    assert stage_main(1, common + ["--epoch", "1", "--resolution", "32"]) == 0
    log = (tmp_path / "log.csv").read_text().splitlines()
    epochs_and_stages = [line.split(",")[:2] for line in log[1:]]
    assert epochs_and_stages == [["0", "1"], ["1", "1"], ["2", "2"], ["3", "2"], ["0", "1"]]
    # an --epoch that ends before the pretrained model's epochs: said, and nothing claimed saved
    capsys.readouterr()
    assert stage_main(2, common + ["--epoch", "3", *pretrained, str(tmp_path / "Corr-3.pth"),
                                   "--checkpoint_dir", str(tmp_path / "other")]) == 2
    out = capsys.readouterr()
    assert "give --epoch above 4" in out.err and "saved" not in out.out


def test_keep_best_without_labelled_validation_shapes_is_refused_before_training(tmp_path, capsys):
    data = tmp_path / "data"
    prepare_procedural("chair", 6, data, workers=1, progress=False)
    for f in data.glob("*.npz"):  # as meshes prepared without labels are
        sample = dict(np.load(f))
        sample["surface_labels"][:] = -1
        np.savez(f, **sample)
    args = ["--cate_name", "chair", "--data_dir", str(data), "--checkpoint_dir", str(tmp_path / "run"), "--preset",
            "tiny", "--batch_size", "3", "--no_progress", "--occupancy_points", "256", "--epoch", "1"]
    assert stage_main(1, args + ["--keep_best"]) == 2  # unsupervised: branch i need not be part i
    assert "only part supervision gives" in capsys.readouterr().err
    args += ["--part_weight", "1"]
    assert stage_main(1, args + ["--keep_best", "--val_fraction", "0.4"]) == 2
    assert "none of the 2 in" in capsys.readouterr().err and not list((tmp_path / "run").glob("*.pth"))
    assert stage_main(1, args + ["--keep_best", "--val_fraction", "0"]) == 2
    assert "--keep_best needs validation shapes: 0 of 6" in capsys.readouterr().err
    first = sorted(data.glob("*.npz"))[0]  # a label beyond the network's branches, named before training
    sample = dict(np.load(first))
    sample["surface_labels"][:5] = 50
    np.savez(first, **sample)
    assert stage_main(1, args) == 2
    assert "part label 50 in" in capsys.readouterr().err and not list((tmp_path / "run").glob("*.pth"))
    sample["surface_labels"][:5] = -1
    np.savez(first, **sample)
    assert stage_main(1, args + ["--part_weight", "0.5"]) == 0
    assert "the part weight 0.5 trains nothing" in capsys.readouterr().out


def test_the_validation_labels_read_alone_are_those_of_the_datasets_validation_shapes(data):
    from training.dataset import ShapeDataset, validation_labels
    labels, n = validation_labels(data, 0.4, 7)
    held_out = ShapeDataset(data, 0.4, seed=7, progress=False).val
    assert n == 6 and len(labels) == len(held_out) == 2
    assert all(np.array_equal(a, b["surface_labels"]) for a, b in zip(labels, held_out))


def test_a_named_data_folder_without_samples_is_an_error_not_procedural_shapes(tmp_path, capsys):
    args = ["--cate_name", "chair", "--data_dir", str(tmp_path / "typo"), "--checkpoint_dir", str(tmp_path / "run"),
            "--preset", "tiny", "--no_progress"]
    assert stage_main(1, args + ["--epoch", "1"]) == 2
    assert "no samples" in capsys.readouterr().err
    assert train_main(args) == 2  # the whole schedule, likewise
    assert "no samples" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists() and not (tmp_path / "run").exists()


def test_the_whole_schedule_refuses_before_claiming_its_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--preset", "tiny", "--no_progress", "--checkpoint_dir", str(tmp_path / "run")]
    assert train_main(args + ["--cate_name", "chair", "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert train_main(args + ["--cate_name", "chairs"]) == 2
    assert "no procedural family of that name (airplane, chair" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not (tmp_path / "data").exists()


def test_the_device_is_not_part_of_the_experiment():
    from training.experiment import differences
    from training.train import preset_experiment

    on_gpu = preset_experiment("tiny", {("cate_name",): "chair", ("device",): "cuda", ("lr",): 0.01})
    assert "device" not in on_gpu["train"] and on_gpu["train"]["lr"] == 0.01
    recorded = {**on_gpu, "train": {**on_gpu["train"], "device": "cuda"}}  # as runs before recorded it
    assert differences(recorded, preset_experiment("tiny", {("cate_name",): "chair", ("lr",): 0.01})) == []
    assert differences(on_gpu, preset_experiment("tiny", {("cate_name",): "chair"})) == ["train"]


@pytest.mark.parametrize("flag,value", [("--val_fraction", "1.5"), ("--max_steps_per_epoch", "-1"),
                                        ("--device", "gpu"), ("--procedural_count", "0")])
def test_out_of_range_options_are_refused_by_name(flag, value, tmp_path, capsys):
    assert stage_main(1, ["--checkpoint_dir", str(tmp_path), flag, value]) == 2
    assert flag in capsys.readouterr().err


def test_a_batch_too_small_to_share_between_processes_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # checked before any process group is joined
    with pytest.raises(ValueError, match="--batch_size 3 shared by 2 processes .* give at least 4"):
        Trainer(TrainConfig(stage=3, batch_size=3, checkpoint_dir=str(tmp_path), preset="tiny"))
