"""Experiments as files (training/experiment.py, training/run.py) and the flags made from TrainConfig."""
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from model import Correspondence, load_checkpoint
from model.config import preset
from model.networks import ImplicitCorrespondenceNet
from training import artist
from training import trainer as trainer_module
from training.cli import given, stage_parser, with_values
from training.experiment import ExperimentError, load_experiment, plan
from training.prepare import prepare_procedural
from training.run import main as run_main, prepare_data
from training.trainer import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[2]
TINY = json.loads((ROOT / "experiments" / "tiny.json").read_text())


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """experiments/tiny.json run to the end in a scratch folder."""
    folder = tmp_path_factory.mktemp("tiny")
    shutil.copy(ROOT / "experiments" / "tiny.json", folder / "tiny.json")
    out = folder / "run"
    assert run_main([str(folder / "tiny.json"), "--out", str(out), "--no_progress", "--workers", "1"]) == 0
    return folder / "tiny.json", out


def test_tiny_experiment_trains_every_phase_and_exports(finished_run):
    path, out = finished_run
    want = [(1, 16, 0), (1, 32, 1), (2, 64, 2), (3, 64, 4)]  # (stage, resolution, last epoch) per phase
    folders = sorted(p for p in out.iterdir() if p.is_dir() and p.name != "data")
    assert len(folders) == len(want)
    exp = load_experiment(path)
    for folder, (stage, resolution, epoch) in zip(folders, want):
        ck = load_checkpoint(folder / f"Corr-{epoch}.pth")
        assert (ck.stage, ck.resolution, ck.epoch) == (stage, resolution, epoch)
        assert ck.extra["experiment"] == exp
    last = load_checkpoint(folders[-1] / "Corr-4.pth")
    assert last.extra["trainer"]["losses"]["part"] == 1.0 and last.extra["trainer"]["lr"] == 1e-4
    assert load_checkpoint(folders[-1] / "averaged.pth").extra["averaged_epochs"] == [3, 4]
    exported = load_checkpoint(out / "tiny.pth")
    assert exported.optimizer is None and exported.extra["experiment"] == exp
    engine = Correspondence.load(out / "tiny.pth", device="cpu")
    assert engine.segment(torch.rand(300, 3).numpy() - 0.5).shape == (300,)


def test_a_rerun_after_completion_does_nothing(finished_run, capsys):
    path, out = finished_run
    files = sorted(p for p in out.rglob("*.pth"))
    stamps = [p.stat().st_mtime_ns for p in files]
    capsys.readouterr()
    assert run_main([str(path), "--out", str(out), "--no_progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("already finished") == 4 and "already written" in printed
    assert [p.stat().st_mtime_ns for p in sorted(out.rglob("*.pth"))] == stamps


def test_a_killed_run_continues_where_it_stopped(finished_run, tmp_path, capsys):
    path, done = finished_run
    out = tmp_path / "run"
    shutil.copytree(done, out)
    last = sorted(out.glob("04-*"))[0]
    (last / "Corr-4.pth").unlink()  # killed after epoch 3 of the last phase, before exporting
    (out / "tiny.pth").unlink()
    capsys.readouterr()
    assert run_main([str(path), "--out", str(out), "--no_progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("already finished") == 3 and "resuming from" in printed
    a, b = (load_checkpoint(d / sorted(done.glob("04-*"))[0].name / "Corr-4.pth").state_dict for d in (done, out))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # as if never killed
    assert (out / "tiny.pth").is_file()


def test_dry_run_prints_every_phase_and_trains_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    assert run_main([str(ROOT / "experiments" / "chair.json"), "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    for line in ("phase 1/7: stage 1 at 16^3, epochs 0-2", "phase 3/7: stage 1 at 64^3, epochs 11-25",
                 "phase 5/7: stage 3 at 64^3, epochs 38-41, batch 16, lr 0.001, part weight 0.2",
                 "phase 6/7: stage 2 at 64^3, epochs 42-47, batch 16, lr 0.001, part weight 1",
                 "phase 7/7: stage 3 at 64^3, epochs 48-49, batch 16, lr 0.0001, part weight 1",
                 "600 procedural chair shapes, seeds 0-599", "fit_steps 30"):
        assert line in printed, line
    assert not out.exists()


def test_the_shipped_recipes_plan_as_they_were_run():
    def schedule(name):
        phases = plan(load_experiment(ROOT / "experiments" / f"{name}.json"), Path("runs") / name)
        return [(p.config.stage, p.config.resolution, p.first_epoch, p.config.epoch - 1, p.config.lr,
                 p.config.losses.part) for p in phases], phases[-1].config
    start = [(1, 16, 0, 2, 1e-3, 0.2), (1, 32, 3, 10, 1e-3, 0.2), (1, 64, 11, 25, 1e-3, 0.2),
             (2, 64, 26, 37, 1e-3, 0.2)]
    chair, _ = schedule("chair")
    assert chair == start + [(3, 64, 38, 41, 1e-3, 0.2), (2, 64, 42, 47, 1e-3, 1.0), (3, 64, 48, 49, 1e-4, 1.0)]
    table, last = schedule("table")
    assert table == start + [(2, 64, 38, 43, 1e-3, 1.0), (3, 64, 44, 44, 1e-4, 1.0)]
    assert last.model == preset("small").with_(f_frequencies=6, encoder_normals=True)
    airplane, last = schedule("airplane")
    assert airplane == start + [(2, 64, 38, 43, 1e-3, 1.0), (3, 64, 44, 99, 1e-4, 1.0)]
    assert last.average_last == 3 and last.model.encoder_normals and last.batch_size == 16


def test_the_airplanes_cpu_recipe_is_the_shipped_one_stopped_at_epoch_47():
    shipped, cpu = (load_experiment(ROOT / "experiments" / f"{n}.json") for n in ("airplane", "airplane_cpu"))
    assert all(cpu[k] == shipped[k] for k in ("category", "seed", "model", "losses", "data", "train", "export"))
    shipped_plan, cpu_plan = (plan(e, Path("runs") / "airplane") for e in (shipped, cpu))
    assert [p.config for p in cpu_plan[:-1]] == [p.config for p in shipped_plan[:-1]]
    last = cpu_plan[-1]
    assert (last.first_epoch, last.config.epoch - 1) == (44, 47)
    assert replace(last.config, epoch=shipped_plan[-1].config.epoch) == shipped_plan[-1].config


@pytest.mark.parametrize("name", ["chair", "table"])
def test_the_paper_network_recipes_differ_from_the_shipped_in_the_network_alone(name):
    shipped_exp, paper_exp = (load_experiment(ROOT / "experiments" / f"{n}.json") for n in (name, f"{name}_paper"))
    assert all(paper_exp[k] == shipped_exp[k] for k in ("category", "seed", "losses", "data", "train", "export"))
    shipped, paper = (plan(e, Path("runs") / name) for e in (shipped_exp, paper_exp))
    assert len(paper) == len(shipped)
    for p, s in zip(paper, shipped):
        assert p.config.model == preset("paper").with_(f_frequencies=s.config.model.f_frequencies,
                                                        encoder_normals=s.config.model.encoder_normals)
        assert replace(p.config, model=s.config.model, cate_name=s.config.cate_name) == s.config
        assert p.first_epoch == s.first_epoch


@pytest.mark.parametrize("change,message", [
    (lambda e: e.update(colour="red"), "unknown key 'colour'"),
    (lambda e: e.pop("phases"), "missing 'phases'"),
    (lambda e: e["phases"][1].update(stage=4), "phases[1]: 'stage' must be 1, 2 or 3, got 4"),
    (lambda e: e["phases"][0].pop("epochs"), "phases[0]: missing 'epochs'"),
    (lambda e: e["phases"][0].update(epochs=[1]), "a list of resolutions needs a list of as many epoch counts"),
    (lambda e: e["phases"][2].update(learning_rate=1), "phases[2]: unknown key 'learning_rate'"),
    (lambda e: e["phases"][2].update(lr="fast"), "phases[2]: 'lr' must be float"),
    (lambda e: e["phases"][2].update(batch_size=1), "phases[2]: batch_size 1 is too small for stage 3"),
    (lambda e: e["model"].update(code_size=3), "model: unknown key 'code_size'"),
    (lambda e: e["model"].update(preset="huge"), "unknown preset 'huge'"),
    (lambda e: e["losses"].update(part="yes"), "losses: 'part' must be float"),
    (lambda e: e["data"]["procedural"][0].update(family="lamp"), "data.procedural[0]: 'family' must be one of"),
    (lambda e: e["phases"][2].pop("average_last"), "export: 'averaged' needs 'average_last' >= 2"),
    (lambda e: e["export"].update(fit=3), "export: unknown key 'fit'"),
    (lambda e: e.update(init=3), "experiment: 'init' must be str, got 3"),
    (lambda e: e.update(init="no/such.pth"), "init: checkpoint not found: no/such.pth"),
    (lambda e: e["data"].update(artist={"category": "chair"}), "data: 'artist' must be list"),
    (lambda e: e["data"].update(artist=[{"category": "lamp"}]),
     "data.artist[0]: 'category' must be one of ['chair', 'table', 'airplane'], got 'lamp'"),
    (lambda e: e["data"].update(artist=[{"limit": 2}]), "data.artist[0]: 'category' must be one of"),
    (lambda e: e["data"].update(artist=[{"category": "chair", "count": 2}]), "data.artist[0]: unknown key 'count'"),
    (lambda e: e["data"].update(artist=[{"category": "chair", "limit": 0}]), "data.artist[0]: 'limit' must be >= 1"),
    (lambda e: e["data"].update(artist=[{"category": "chair"}, {"category": "chair", "limit": 3}]),
     "data.artist[1]: the chair meshes are already given"),
])
def test_a_bad_experiment_file_names_its_problem(tmp_path, capsys, change, message):
    exp = json.loads(json.dumps(TINY))
    change(exp)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(exp))
    with pytest.raises(ExperimentError) as err:
        load_experiment(path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert run_main([str(path), "--dry-run"]) == 2
    assert message in capsys.readouterr().err


def test_not_json_and_a_missing_file(tmp_path):
    (tmp_path / "x.json").write_text("{\"phases\": [")
    with pytest.raises(ExperimentError, match="not valid JSON"):
        load_experiment(tmp_path / "x.json")
    with pytest.raises(ExperimentError, match="no such experiment file"):
        load_experiment(tmp_path / "y.json")


def test_a_run_folder_of_another_experiment_is_refused(finished_run, tmp_path, capsys):
    path, out = finished_run
    exp = json.loads(path.read_text())
    exp["phases"][2]["epochs"] = 3
    (tmp_path / "tiny.json").write_text(json.dumps(exp))
    assert run_main([str(tmp_path / "tiny.json"), "--out", str(out), "--no_progress"]) == 2
    assert "holds a run of another experiment (it differs in phases)" in capsys.readouterr().err


# ------------------------------------------------------------------ init: from a checkpoint
def _from_checkpoint(init: Path, data: Path, **changes) -> dict:
    """One stage-3 epoch of the tiny network from `init`, on the samples in `data`."""
    exp = {**json.loads(json.dumps(TINY)), "name": "finetune", "init": str(init), "data": {"folder": str(data)},
           "phases": [{"stage": 3, "resolution": 64, "epochs": 1, "lr": 1e-4, "losses": {"part": 1.0}}], **changes}
    exp.pop("export")
    return exp


def test_init_starts_the_first_phase_from_a_checkpoint_numbering_on(finished_run, tmp_path, capsys):
    _, done = finished_run
    init = done / "tiny.pth"  # exported from stage 3, epoch 4
    (tmp_path / "finetune.json").write_text(json.dumps(_from_checkpoint(init, done / "data")))
    out = tmp_path / "run"
    assert run_main([str(tmp_path / "finetune.json"), "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"init: phase 1 starts from {init} (chair, stage 3 at 64^3, epoch 4)" in printed
    assert "phase 1/1: stage 3 at 64^3, epoch 5," in printed and "phases (1 epochs)" in printed

    assert run_main([str(tmp_path / "finetune.json"), "--out", str(out), "--no_progress"]) == 0
    assert f"loaded {init} (chair, stage 3, resolution 64, epoch 4)" in capsys.readouterr().out
    ck = load_checkpoint(out / "01-stage3-64" / "Corr-5.pth")
    assert (ck.stage, ck.epoch) == (3, 5) and ck.extra["trainer"]["pretrain_model_name"] == str(init)
    start = load_checkpoint(init).state_dict
    new = ImplicitCorrespondenceNet(preset("tiny")).state_dict()
    moved, fresh = (sum(float((a[k] - start[k]).abs().sum()) for k in start if start[k].is_floating_point())
                    for a in (ck.state_dict, new))
    assert moved < 0.1 * fresh  # one small step from init's weights, nowhere near a new network


def test_a_run_whose_samples_changed_is_not_continued(finished_run, tmp_path, capsys):
    """A shape added to the data between two runs of the command would be trained on from
    then on, and move the validation split: refused, naming it."""
    path, done = finished_run
    out = tmp_path / "run"
    shutil.copytree(done, out)
    shutil.copy(sorted((out / "data").glob("*.npz"))[0], out / "data" / "zz_added.npz")
    capsys.readouterr()
    assert run_main([str(path), "--out", str(out), "--no_progress"]) == 2
    said = capsys.readouterr().err
    assert "changed since this run started: 1 added (zz_added.npz)" in said and "start a new run folder" in said


def test_a_mistake_in_the_data_claims_no_run_folder(tmp_path, capsys):
    """A mistyped mesh folder is refused before the run folder is claimed, so the corrected
    experiment runs there."""
    exp = {**json.loads(json.dumps(TINY)), "data": {"meshes": [{"folder": str(tmp_path / "meshs")}]}}
    (tmp_path / "typo.json").write_text(json.dumps(exp))
    out = tmp_path / "run"
    assert run_main([str(tmp_path / "typo.json"), "--out", str(out), "--no_progress"]) == 2
    assert not (out / "experiment.json").exists()
    capsys.readouterr()
    fixed = {**exp, "phases": [{"stage": 1, "resolution": 16, "epochs": 1}], "data": TINY["data"]}
    fixed.pop("export")
    (tmp_path / "typo.json").write_text(json.dumps(fixed))
    assert run_main([str(tmp_path / "typo.json"), "--out", str(out), "--no_progress", "--workers", "1"]) == 0
    assert "holds a run of another experiment" not in capsys.readouterr().err


def test_init_must_hold_the_experiments_network(finished_run, tmp_path):
    _, done = finished_run
    path = tmp_path / "other.json"
    path.write_text(json.dumps(_from_checkpoint(done / "tiny.pth", done / "data",
                                                model={"preset": "tiny", "f_frequencies": 2})))
    with pytest.raises(ExperimentError, match=r"init: .*tiny.pth holds another network than the experiment's "
                                              r"'model' \(f_frequencies 0 there, 2 here\)"):
        load_experiment(path)


# ------------------------------------------------------------------ artist meshes
def test_artist_meshes_join_the_procedural_samples_unlabelled(tmp_path, capsys):
    needed = [sorted(artist.DEFAULT_CACHE.glob(f"{p}_*.deb")) for p in artist.PACKAGES["chair"]]
    if not all(needed):
        pytest.skip(f"no {' and '.join(artist.PACKAGES['chair'])} .deb in {artist.DEFAULT_CACHE} "
                    f"(scripts/fetch_data.sh fetches them)")
    exp = {**json.loads(json.dumps(TINY)), "name": "mixed",
           "data": {"procedural": [{"family": "chair", "count": 2}], "artist": [{"category": "chair", "limit": 2}]},
           "phases": [{"stage": 1, "resolution": 16, "epochs": 1}]}
    exp.pop("export")
    (tmp_path / "mixed.json").write_text(json.dumps(exp))
    out = tmp_path / "run"
    assert run_main([str(tmp_path / "mixed.json"), "--out", str(out), "--dry-run"]) == 0
    assert "artist chair meshes (training.artist, cache" in capsys.readouterr().out
    assert run_main([str(tmp_path / "mixed.json"), "--out", str(out), "--no_progress", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "data, artist chair: 2 prepared, 0 already there, 0 skipped" in printed
    assert "3 training / 1 validation shapes" in printed  # the four samples, procedural and artist
    files = sorted((out / "data").glob("*.npz"))
    unlabelled = []
    for f in files:
        with np.load(f) as npz:
            if (npz["surface_labels"] == -1).all():
                unlabelled.append(f.stem)
    assert len(files) == 4 and len(unlabelled) == 2 and all(n.startswith("sh3d-") for n in unlabelled)
    manifest = json.loads((out / "data" / "artist-chair.json").read_text())
    assert sorted(s["name"] for s in manifest["shapes"]) == unlabelled
    history = load_checkpoint(out / "01-stage1-16" / "Corr-0.pth").extra["history"]
    assert np.isfinite(history[-1]["train_total"]) and np.isfinite(history[-1]["train_part"])

    stamps = [f.stat().st_mtime_ns for f in files]
    prepare_data(exp["data"], out / "data", workers=1, progress=False)  # a rerun keeps them
    assert [f.stat().st_mtime_ns for f in sorted((out / "data").glob("*.npz"))] == stamps


# ------------------------------------------------------------------ flags from TrainConfig
PAPER = ["--cate_name", "chair", "--epoch", "50", "--resolution", "16", "--batch_size", "45",
         "--pretrain_model", "TRUE", "--pretrain_model_name", "Corr-49.pth"]


def test_the_papers_flags_and_the_composed_configs():
    args = stage_parser(1).parse_args(PAPER + ["--preset", "small", "--f_frequencies", "6", "--part_weight", "1.0",
                                               "--part_balance", "--no_augment", "--average_last", "3"])
    cfg = with_values(TrainConfig(stage=1), given(args))
    assert (cfg.cate_name, cfg.epoch, cfg.resolution, cfg.batch_size) == ("chair", 50, 16, 45)
    assert cfg.pretrain_model is True and cfg.pretrain_model_name == "Corr-49.pth"
    assert cfg.model == preset("small").with_(f_frequencies=6)
    assert (cfg.losses.part, cfg.losses.part_balance, cfg.losses.normal) == (1.0, True, 0.01)
    assert cfg.augment is False and cfg.average_last == 3
    # flags not given keep TrainConfig's defaults, the paper's
    cfg = with_values(TrainConfig(stage=2), given(stage_parser(2).parse_args([])))
    assert cfg == TrainConfig(stage=2)
    with pytest.raises(SystemExit):
        stage_parser(1).parse_args(["--pretrain_model", "maybe"])


def test_the_trainer_steps_with_loops_train_step(tmp_path, monkeypatch):
    prepare_procedural("chair", 3, tmp_path / "data", workers=1)
    calls = []
    real = trainer_module.train_step
    monkeypatch.setattr(trainer_module, "train_step", lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = TrainConfig(data_dir=str(tmp_path / "data"), checkpoint_dir=str(tmp_path / "run"), preset="tiny",
                      batch_size=1, epoch=2, occupancy_points=128, progress=False, val_fraction=0.0)
    Trainer(cfg).run()
    assert len(calls) == 2 * 3  # two epochs of three one-shape batches
