"""The three-stage trainer: one run = one stage at one resolution, from `start` to `epoch`.

Checkpoints are `Corr-<epoch>.pth` in the run folder (default `runs/<cate_name>`), with
epoch numbers continuing across runs as in the paper: `--resolution 16 --epoch 50` ends
with Corr-49.pth, then `--resolution 32 --epoch 100 --pretrain_model TRUE
--pretrain_model_name Corr-49.pth` trains epochs 50..99.  Each epoch's shuffling,
augmentation and sampling are seeded by (seed, epoch), so a run resumed after a kill
(`--resume`) continues exactly as an uninterrupted one.  Under `torchrun` the same code
trains with DistributedDataParallel (gloo on CPU, NCCL on CUDA).
"""
from __future__ import annotations

import csv
import os
import re
import shutil
import time
from dataclasses import InitVar, asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from model.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from model.config import ModelConfig, preset as model_preset
from model.files import write_atomically
from model.losses import LossWeights, stage_losses
from model.networks import ImplicitCorrespondenceNet, with_encoder_normals
from model.runner import default_device

from .dataset import ShapeDataset, ensure_data, validation_labels
from .evaluate import shape_miou
from .families import FAMILIES
from .loop import StageLoss, make_batch, make_optimizer, train_step
from .prepare import add_estimated_normals


def _option(default: Any, help: str, **meta: Any) -> Any:
    """A field that is also a command-line flag (training/cli.py turns these into options)."""
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class TrainConfig:
    """One trainer run: one stage at one resolution, from its first epoch up to `epoch`.

    The network and the loss weights are the model's own config objects, composed here;
    `flags` in their metadata names the fields the command line exposes.
    """

    cate_name: str = _option("chair", "category: chair, table, airplane or your own data")
    stage: int = 1  # each script fixes its stage; an experiment's phases give theirs
    resolution: int = _option(16, "occupancy grid the samples are drawn from", choices=(16, 32, 64))
    epoch: int = _option(50, "final epoch number: trains up to Corr-<epoch-1>.pth")
    batch_size: int = _option(45, "shapes per step (global: split across torchrun processes)")
    lr: float = _option(1e-4, "Adam learning rate")
    seed: int = _option(123, "seed of the initial weights, the validation split, shuffling and sampling")
    data_dir: str = _option("", "folder of .npz samples (default data/<cate_name>)")
    checkpoint_dir: str = _option("", "run folder (default runs/<cate_name>)")
    pretrain_model: bool = _option(False, "TRUE to start from --pretrain_model_name", takes_value=True)
    pretrain_model_name: str = _option("", "checkpoint file, in --checkpoint_dir or a path")
    resume: bool = _option(False, "continue from the newest checkpoint of this stage in the run folder")
    device: str = _option("", "cpu or cuda (default: cuda when available)")
    occupancy_points: int = _option(2048, "occupancy samples per shape per step")
    surface_points: int = _option(1024, "surface points per shape per step")
    augment: bool = _option(True, "no random per-axis scaling of the shapes")
    val_fraction: float = _option(0.1, "share of the shapes held out for validation")
    procedural_count: int = _option(1000, "procedural shapes generated when the data folder is empty")
    max_steps_per_epoch: int = _option(0, "at most this many steps an epoch (0: the whole training set)")
    keep_best: bool = _option(False, "also keep best.pth, this stage's epoch of highest validation part mIoU")
    average_last: int = _option(0, "also write averaged.pth, the mean weights of this stage's last N epochs "
                                   "(keeps their checkpoints)", metavar="N")
    progress: bool = _option(True, "no progress bars")
    # a new network's; a pretrained one keeps its own, but is widened for encoder_normals
    model: ModelConfig = field(default_factory=ModelConfig, metadata={
        "preset": "network of a new model: paper, small or tiny (a pretrained one keeps its own) (default: 'paper')",
        "flags": {"f_frequencies": "octaves of sin/cos features of x in a new network's f (0: the paper's f)",
                  "encoder_normals": "E also sees normals estimated from the points (widens a pretrained E)"}})
    losses: LossWeights = field(default_factory=LossWeights, metadata={
        "flags": {"part": ("part_weight", "supervise the part branches with the samples' part labels "
                                          "(0: unsupervised, as the paper)"),
                  "part_balance": "weigh each part's supervision by 1/sqrt of its share of the points "
                                  "(helps small parts)"}})
    # shorthand: TrainConfig(preset="small") is TrainConfig(model=<the small preset's ModelConfig>)
    preset: InitVar[str] = ""

    def __post_init__(self, preset: str) -> None:
        if preset:
            self.model = model_preset(preset)
        if self.stage not in (1, 2, 3):
            raise ValueError(f"--stage must be 1, 2 or 3, got {self.stage}")
        if self.resolution not in (16, 32, 64):
            raise ValueError(f"--resolution must be 16, 32 or 64, got {self.resolution}")
        if self.batch_size < (2 if self.stage == 3 else 1):
            raise ValueError(f"--batch_size {self.batch_size} is too small for stage {self.stage}")
        if self.epoch < 1:
            raise ValueError(f"--epoch must be >= 1, got {self.epoch}")
        if self.average_last < 0:
            raise ValueError(f"--average_last must be >= 0, got {self.average_last}")
        if self.keep_best and self.losses.part <= 0 and not (self.pretrain_model or self.resume):
            # a new network trained unsupervised draws its parts on f's branches in any order
            raise ValueError("--keep_best scores f's segmentation with branch i as part label i, which only part "
                             "supervision gives: add --part_weight (e.g. 0.2), or leave out --keep_best")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"--val_fraction must be at least 0 and below 1, got {self.val_fraction}")
        for name in ("procedural_count", "occupancy_points", "surface_points"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps_per_epoch < 0:
            raise ValueError(f"--max_steps_per_epoch must be >= 0 (0: all), got {self.max_steps_per_epoch}")
        if self.device and not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise ValueError(f"--device must be cpu or cuda (or cuda:N), got {self.device!r}")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir or f"data/{self.cate_name}")

    @property
    def run_path(self) -> Path:
        return Path(self.checkpoint_dir or f"runs/{self.cate_name}")

    def to_dict(self) -> dict[str, Any]:
        """Plain Python types, for the checkpoints (loaded with weights_only=True)."""
        return {**asdict(self), "model": self.model.to_dict(), "losses": asdict(self.losses)}


def of_stage(ck: Checkpoint, cfg: TrainConfig) -> bool:
    """Whether a checkpoint is of the stage and resolution `cfg` trains."""
    return (ck.stage, ck.resolution) == (cfg.stage, cfg.resolution)


def _epoch_of(path: Path) -> int:
    m = re.fullmatch(r"Corr-(\d+)\.pth", path.name)
    return int(m.group(1)) if m else -1


class Trainer:
    def __init__(self, cfg: TrainConfig, extra: dict[str, Any] | None = None):
        """`extra`: plain data stored in every checkpoint this run writes (an experiment's file)."""
        self.cfg = cfg
        self.weights = cfg.losses
        self.extra = dict(extra or {})
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if cfg.batch_size // self.world < (2 if cfg.stage == 3 else 1):  # every batch would be dropped
            raise ValueError(f"--batch_size {cfg.batch_size} shared by {self.world} processes leaves each fewer "
                             f"than {2 if cfg.stage == 3 else 1} shape(s) per step: give at least "
                             f"{(2 if cfg.stage == 3 else 1) * self.world}")
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo")
        device = cfg.device or default_device()
        if device == "cuda" and self.world > 1:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("--device cuda requested but CUDA is not available on this machine")
        self.device = torch.device(device)
        self.dir = cfg.run_path
        self.is_main = self.rank == 0

    # ------------------------------------------------------------------ setup
    def _log(self, msg: str) -> None:
        if self.is_main:
            tqdm.write(msg)

    def _initial_state(self) -> tuple[ImplicitCorrespondenceNet, torch.optim.Optimizer, int, list]:
        """Network, optimizer, first epoch and loss history: resumed, pretrained or new."""
        cfg = self.cfg
        resume = self.latest_own_checkpoint() if cfg.resume else None
        if resume is not None:
            ck = load_checkpoint(resume)
            self.extra["trained_on"] = ck.extra.get("trained_on", [])
            net = ck.build(self.device).train()
            opt = make_optimizer(net, cfg.lr)
            if ck.optimizer:
                opt.load_state_dict(ck.optimizer)  # which restores the saved learning rate too
                was = opt.param_groups[0]["lr"]
                for group in opt.param_groups:
                    group["lr"] = cfg.lr
                if was != cfg.lr:
                    self._log(f"learning rate {cfg.lr:g} from here (the run had {was:g})")
            self._log(f"resuming from {resume} (epoch {ck.epoch})")
            return net, opt, ck.epoch + 1, list(ck.extra.get("history", []))
        if cfg.pretrain_model:
            path = Path(cfg.pretrain_model_name)
            if not path.is_file():
                path = self.dir / cfg.pretrain_model_name
            if not path.is_file():
                raise FileNotFoundError(
                    f"--pretrain_model_name {cfg.pretrain_model_name!r} not found (looked in . and {self.dir})")
            ck = load_checkpoint(path)
            self.extra["trained_on"] = ck.extra.get("trained_on", [])
            net = ck.build(self.device).train()  # all of E, f and g: stage 3 keeps stage 2's g
            self._log(f"loaded {path} ({ck.category}, stage {ck.stage}, resolution {ck.resolution}, epoch {ck.epoch})")
            if ck.category and ck.category != cfg.cate_name:
                self._log(f"note: {path.name} was trained as {ck.category}; this run trains it on {cfg.cate_name}")
            if cfg.stage == 3 and ck.stage == 1:
                self._log(f"note: {path.name} is a stage-1 model, whose g is untrained; stage 3 usually "
                          f"starts from stage 2")
            if cfg.model.encoder_normals and not net.cfg.encoder_normals:
                net = with_encoder_normals(net)
                self._log("E widened to see normals (their weights start at 0)")
            return net, make_optimizer(net, cfg.lr), ck.epoch + 1, []
        torch.manual_seed(cfg.seed)
        net = ImplicitCorrespondenceNet(cfg.model).to(self.device).train()
        return net, make_optimizer(net, cfg.lr), 0, []

    def latest_own_checkpoint(self) -> Path | None:
        """The newest checkpoint of this stage and resolution in the run folder."""
        for path in sorted(self.dir.glob("Corr-*.pth"), key=_epoch_of, reverse=True):
            ck = load_checkpoint(path)
            if of_stage(ck, self.cfg):
                return path
        return None

    def _refuse_to_overwrite(self, start: int) -> None:
        """A new run must not redo (and so overwrite, then delete) epochs of a run of the same
        stage and resolution already in the folder: that is what --resume is for.  Nor may
        it write over another stage's or resolution's checkpoint (a later stage started
        without --pretrain_model from epoch 0 would replace Corr-49.pth of stage 1)."""
        cfg = self.cfg
        held = None if cfg.resume else self.latest_own_checkpoint()
        if held is not None and _epoch_of(held) >= start:
            raise ValueError(
                f"{self.dir} already holds a stage {cfg.stage} run at {cfg.resolution}^3 up to epoch "
                f"{_epoch_of(held)} ({held.name}): continue it with --resume, or give another --checkpoint_dir")
        for epoch in range(start, cfg.epoch):
            path = self._final_path(epoch)
            if path.is_file() and not of_stage(ck := load_checkpoint(path), cfg):
                raise ValueError(
                    f"this run would write over {path} (stage {ck.stage} at {ck.resolution}^3): start from it with "
                    f"--pretrain_model TRUE --pretrain_model_name {path.name}, or give another --checkpoint_dir")

    # ------------------------------------------------------------------ loop
    def run(self) -> Path | None:
        """Train to `cfg.epoch`; returns the final checkpoint path (None on other ranks)."""
        cfg = self.cfg
        net, opt, start, history = self._initial_state()
        self._refuse_to_overwrite(start)
        if self.is_main:
            if cfg.data_dir and not any(cfg.data_path.glob("*.npz")):
                procedural = (f", or leave it out to train on procedural shapes in data/{cfg.cate_name}"
                              if cfg.cate_name in FAMILIES else "")
                raise FileNotFoundError(
                    f"{cfg.data_dir}: no samples (.npz) there (the data folder: --data_dir, or an experiment's "
                    f"data.folder); prepare them with `python -m training.prepare --meshes DIR --out "
                    f"{cfg.data_dir}`{procedural}")
            ensure_data(cfg.cate_name, cfg.data_path, cfg.procedural_count, cfg.progress)
            if net.cfg.encoder_normals:
                failures = add_estimated_normals(sorted(cfg.data_path.glob("*.npz")), progress=cfg.progress)
                if failures:
                    raise ValueError(f"cannot estimate the normals of {len(failures)} sample(s), "
                                     f"first {failures[0][0]}: {failures[0][1]}")
        if self.world > 1:
            dist.barrier()
        data = ShapeDataset(cfg.data_path, cfg.val_fraction, seed=cfg.seed, progress=cfg.progress)
        self.check_validation([s.get("surface_labels", np.full(1, -1)) for s in data.val], len(data.names))
        top = max((int(s["surface_labels"].max()) for s in data.train + data.val if "surface_labels" in s), default=-1)
        if top >= net.cfg.n_parts:
            raise ValueError(f"part label {top} in {cfg.data_path}, but the network has {net.cfg.n_parts} part "
                             f"branches (labels 0 to {net.cfg.n_parts - 1})")
        if top < 0 and self.weights.part > 0:
            self._log(f"note: no sample in {cfg.data_path} has part labels, so the part weight "
                      f"{self.weights.part:g} trains nothing")
        # so that a report can tell a dev shape trained on, in this run or the one it went on from
        self.extra["trained_on"] = sorted(set(data.names) | set(self.extra.get("trained_on", ())))
        if start >= cfg.epoch:
            done = self._final_path(start - 1)
            if not (done.is_file() and of_stage(load_checkpoint(done), cfg)):
                # started from another stage's model: --epoch counts on from its epochs
                raise ValueError(f"--epoch {cfg.epoch} is the epoch to stop before, counted across stages, and the "
                                 f"pretrained model ends at epoch {start - 1}: give --epoch above {start}")
            self._log(f"nothing to do: already at epoch {start - 1}, --epoch is {cfg.epoch}")
            return done
        objective: nn.Module = StageLoss(net, self.weights)
        if self.world > 1:
            # stage 1 leaves g unused
            objective = nn.parallel.DistributedDataParallel(objective, find_unused_parameters=cfg.stage == 1)
        self._log(f"stage {cfg.stage}, resolution {cfg.resolution}: epochs {start}..{cfg.epoch - 1}, "
                  f"{len(data.train)} training / {len(data.val)} validation shapes, device {self.device}")
        path = None
        for epoch in range(start, cfg.epoch):
            t0 = time.time()
            train_terms = self._train_epoch(objective, opt, data, epoch)
            val_terms = self._validate(net, data)
            row = {"epoch": epoch, "stage": cfg.stage, "resolution": cfg.resolution,
                   "seconds": round(time.time() - t0, 2),
                   **{f"train_{k}": v for k, v in train_terms.items()},
                   **{f"val_{k}": v for k, v in val_terms.items()}}
            history.append(row)
            if self.is_main:
                path = self._save(net, opt, epoch, history)
                self._append_csv(row)
                if cfg.keep_best:
                    self._keep_if_best(path, history)
                if cfg.average_last > 1:
                    self._write_average(epoch)
                self._log(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        return path

    def _train_epoch(self, objective: nn.Module, opt, data: "ShapeDataset", epoch: int) -> dict[str, float]:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, epoch])
        order = rng.permutation(len(data.train))  # the same on every process: each takes its share
        # what each process draws for its shapes (points, scale, EMD subset) is its own
        sampling = rng if self.rank == 0 else np.random.default_rng([cfg.seed, epoch, self.rank])
        torch.manual_seed(cfg.seed * 100_003 + epoch + 7_919 * self.rank)
        per_rank = max(1, cfg.batch_size // self.world)
        batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
        batches = [b for b in batches if len(b) >= (2 * self.world if cfg.stage == 3 else self.world)]
        if self.world > 1:  # every rank needs its full share of every batch
            batches = [b for b in batches if len(b) == cfg.batch_size]
        if cfg.max_steps_per_epoch:
            batches = batches[: cfg.max_steps_per_epoch]
        sums: dict[str, float] = {}
        bar = tqdm(batches, desc=f"epoch {epoch}", unit="batch", disable=not (cfg.progress and self.is_main), leave=False)
        for ids in bar:
            mine = ids[self.rank * per_rank : (self.rank + 1) * per_rank]
            net_cfg = self._net_cfg(objective)
            batch = make_batch([data.train[i] for i in mine], sampling, cfg.resolution, net_cfg.encoder_points,
                               cfg.surface_points, cfg.occupancy_points, cfg.augment, self.device,
                               net_cfg.encoder_normals)
            terms = train_step(objective, opt, batch, cfg.stage)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.set_postfix(loss=f"{terms['total']:.4f}")
        return {k: v / max(1, len(batches)) for k, v in sums.items()}

    @staticmethod
    def _net_cfg(objective: nn.Module) -> ModelConfig:
        inner = objective.module if hasattr(objective, "module") else objective
        return inner.net.cfg

    def check_validation(self, val_labels: list[np.ndarray] | None = None, n_samples: int = 0) -> None:
        """Refuse --keep_best where no validation shape has part labels to score it by (it
        would train the whole run and never write best.pth); note a run without validation.
        `val_labels`: the validation shapes' labels (default: read from the data folder)."""
        if val_labels is None:
            val_labels, n_samples = validation_labels(self.cfg.data_path, self.cfg.val_fraction, self.cfg.seed)
        if len(val_labels) < (2 if self.cfg.stage == 3 else 1):
            if self.cfg.keep_best:
                raise ValueError(f"--keep_best needs validation shapes: {len(val_labels)} of {n_samples} "
                                 f"held out (--val_fraction {self.cfg.val_fraction})")
            self._log(f"note: {len(val_labels)} validation shape(s) of {n_samples}: no validation pass")
        elif self.cfg.keep_best and not any((labels >= 0).any() for labels in val_labels):
            raise ValueError("--keep_best scores epochs by the part labels of the validation shapes, and "
                             f"none of the {len(val_labels)} in {self.cfg.data_path} has any")

    @torch.no_grad()
    def _validate(self, net: ImplicitCorrespondenceNet, data: "ShapeDataset") -> dict[str, float]:
        """Stage loss on the held-out shapes, without augmentation, with fixed sampling."""
        if len(data.val) < (2 if self.cfg.stage == 3 else 1):
            return {}
        net.eval()
        rng = np.random.default_rng([self.cfg.seed, 999_999])
        torch.manual_seed(self.cfg.seed)
        sums: dict[str, float] = {}
        chunks = [data.val[i : i + 16] for i in range(0, len(data.val), 16)]
        chunks = [c for c in chunks if len(c) >= (2 if self.cfg.stage == 3 else 1)]
        n_parts = 1 + max((int(s["surface_labels"].max()) for s in data.val if "surface_labels" in s), default=-1)
        shape_mious: list[float] = []
        for chunk in chunks:
            batch = make_batch(chunk, rng, self.cfg.resolution, net.cfg.encoder_points,
                               self.cfg.surface_points, self.cfg.occupancy_points, False, self.device,
                               net.cfg.encoder_normals)
            total, terms = stage_losses(net, batch, self.cfg.stage, self.weights)
            terms["total"] = float(total)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v
            if n_parts > 0:
                shape_mious += _part_mious(net, batch, n_parts)
        net.train()
        out = {k: v / len(chunks) for k, v in sums.items()}
        if shape_mious:
            # f's own segmentation of the validation shapes: the loss terms barely move when a
            # thin part (a table's apron) flips branch, this does; pick checkpoints by it
            out["part_miou"] = float(np.mean(shape_mious))
        return out

    # ------------------------------------------------------------------ output
    def _final_path(self, epoch: int) -> Path:
        return self.dir / f"Corr-{epoch}.pth"

    def _save(self, net, opt, epoch: int, history: list) -> Path:
        cfg = self.cfg
        path = self._final_path(epoch)
        save_checkpoint(path, Checkpoint(
            config=net.cfg, state_dict=net.state_dict(), category=cfg.cate_name, stage=cfg.stage,
            epoch=epoch, resolution=cfg.resolution, optimizer=opt.state_dict(),
            extra={**self.extra, "trainer": cfg.to_dict(), "history": history},
        ))
        # keep only the newest checkpoint of this run, or the newest --average_last
        stale = self._final_path(epoch - max(1, cfg.average_last))
        if stale.is_file() and of_stage(load_checkpoint(stale), cfg):
            stale.unlink()
        return path

    def _write_average(self, epoch: int) -> None:
        """averaged.pth: the mean of the weights of this stage's last `average_last` epochs
        (fewer while the stage has run fewer).  The epoch-to-epoch swing of what f and g
        have learnt averages out, where picking one epoch picks its luck."""
        paths = [self._final_path(e) for e in range(epoch - self.cfg.average_last + 1, epoch + 1)]
        cks = [ck for ck in (load_checkpoint(p) for p in paths if p.is_file()) if of_stage(ck, self.cfg)]
        newest = cks[-1]
        newest.state_dict = {k: sum(ck.state_dict[k] for ck in cks) / len(cks) if v.is_floating_point() else v
                             for k, v in newest.state_dict.items()}
        newest.optimizer = None
        newest.extra = {**newest.extra, "averaged_epochs": [ck.epoch for ck in cks]}
        save_checkpoint(self.dir / "averaged.pth", newest)
        self._log(f"averaged.pth: epochs {', '.join(str(ck.epoch) for ck in cks)}")

    def _keep_if_best(self, path: Path, history: list) -> None:
        """Copy the checkpoint to best.pth when its validation part mIoU is this stage's highest."""
        scores = [h.get("val_part_miou", -1.0) for h in history if h["stage"] == self.cfg.stage]
        if scores[-1] >= 0 and scores[-1] > max(scores[:-1], default=-1.0):
            write_atomically(self.dir / "best.pth", lambda tmp: shutil.copyfile(path, tmp))
            self._log(f"best.pth: epoch {history[-1]['epoch']}, val_part_miou {scores[-1]:.4f}")

    def _append_csv(self, row: dict) -> None:
        path = self.dir / "log.csv"
        rows = []
        if path.is_file():  # rows of epochs this run redoes go; other stages' rows stay
            with path.open() as fh:
                rows = [r for r in csv.DictReader(fh) if not (_same_run(r, row) and int(r["epoch"]) >= row["epoch"])]
        rows.append({k: str(v) for k, v in row.items()})
        fields = list(dict.fromkeys(k for r in rows for k in r))

        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=fields)
                writer.writeheader()
                writer.writerows(rows)
        write_atomically(path, write)


def _same_run(logged: dict[str, str], row: dict) -> bool:
    return logged.get("stage") == str(row["stage"]) and logged.get("resolution") == str(row["resolution"])


def _part_mious(net: ImplicitCorrespondenceNet, batch: dict[str, torch.Tensor], n_parts: int) -> list[float]:
    """Per labelled shape of the batch, the mIoU of f's argmax over its first `n_parts` branches."""
    pred = net.embed(batch["surface_points"], net.encode(batch["encoder_points"]))[..., :n_parts].argmax(-1)
    return labelled_mious(pred.cpu().numpy(), batch["surface_labels"].cpu().numpy(), n_parts)


def labelled_mious(pred: np.ndarray, labels: np.ndarray, n_parts: int) -> list[float]:
    """pred, labels (B, N): per shape with any labels, the mIoU over parts 0..n_parts-1 at its
    labelled points (label -1 = unknown; ShapeNet-Part convention: a part in neither counts 1)."""
    mious = []
    for p, t in zip(pred, labels):
        known = t >= 0
        if known.any():
            mious.append(shape_miou(p[known], t[known], range(n_parts))[0])
    return mious
