"""Command-line client: talk to a running server about mesh files.

    python -m server.client ping
    python -m server.client info
    python -m server.client segment chair.obj --out chair_parts.ply
    python -m server.client correspond source.obj target.obj --out target_labeled.ply
    python -m server.client transfer source_colored.ply target.obj --out target_colored.ply
    python -m server.client --address tcp://farm:5555 --secret-file key --curve ping

`correspond` labels the target with the source's parts (the model's segmentation of the
source, or --source-labels FILE with one integer per source vertex or triangle) and writes
`part_label`, `corr_confidence`, `corr_source_face`, `corr_source_vertex` as PLY vertex
properties, with the parts as vertex colours (grey below --threshold).  `transfer` carries
the source's vertex colours to the target through the same correspondence.  A PLY of
vertices only, or an XYZ file, is a point cloud: its points are matched, and
`corr_source_face` is -1 from one.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from model.labels import GREY, face_areas, label_colors, slivers, vertex_areas
from model.meshio import read_shape, write_ply

from .client import DEFAULT_ADDRESS, LOW_CONFIDENCE, Client, ServerError, key_from_file, unlike_warning
from .protocol import ALIGN_NAMES, AUTO_CATEGORY

REACH_TIMEOUT = 5.0  # seconds a server has to answer a ping before the work is sent
LONG_PASS = 50_000  # points in a pass whose quarters the progress lines name


def part_colors(labels: np.ndarray) -> np.ndarray:
    """8-bit RGB of each part label: the engine's palette, grey for -1."""
    return (label_colors(labels) * 255).round().astype(np.uint8)


def interpolate(values: np.ndarray, faces: np.ndarray, face: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """A per-vertex quantity interpolated barycentrically."""
    corners = values[faces[face]].astype(np.float64)  # (M, 3, C)
    return (corners * bary[:, :, None]).sum(axis=1)


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m server.client", description=__doc__, parents=[_common(True)],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    common = _common(False)  # the same options after the command, where they override
    sub.add_parser("ping", parents=[common])
    sub.add_parser("info", parents=[common])
    seg = sub.add_parser("segment", parents=[common])
    seg.add_argument("mesh")
    seg.add_argument("--out", required=True)
    for name in ("correspond", "transfer"):
        p = sub.add_parser(name, parents=[common])
        p.add_argument("source")
        p.add_argument("target")
        p.add_argument("--out", required=True)
        p.add_argument("--threshold", type=float, default=0.05, help="confidence below which a vertex is unmatched")
        if name == "correspond":
            p.add_argument("--source-labels",
                           help="text file: one integer per source vertex, or per triangle (a quad counts as two)")
    args = ap.parse_args(list(argv) if argv is not None else None)
    if not 0 < args.timeout < math.inf:
        ap.error(f"--timeout must be a number of seconds > 0, got {args.timeout}")
    out = getattr(args, "out", None)
    if out and Path(out).suffix.lower() != ".ply":
        print(f"error: --out {out}: write a .ply file (PLY carries the per-vertex labels and confidence)",
              file=sys.stderr)
        return 2
    if out and not (Path(out).resolve().parent.is_dir() and os.access(Path(out).resolve().parent, os.W_OK)):
        print(f"error: --out {out}: cannot write into {Path(out).resolve().parent}", file=sys.stderr)  # before the work
        return 2
    try:
        secret = key_from_file(args.secret_file, "--secret-file") if args.secret_file else None
        client = Client(args.address, timeout=args.timeout, secret=secret, curve=True if args.curve else None,
                        progress=ProgressLines())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reached = False
    try:
        with client:
            client.reach(REACH_TIMEOUT, "start one with `python -m server`, or check --address")
            reached = True
            return _run(client, args)
    except ServerError as exc:  # no reply is not the server's word
        if exc.code != "timeout":
            print(f"error: server: {exc}", file=sys.stderr)
        elif reached:  # it answered the ping first: busy with a large mesh, or gone since
            print(f"error: {exc.message}; the server answered a ping before the request, so it may be busy or "
                  f"slow: a large mesh may need a larger --timeout", file=sys.stderr)
        else:
            print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the request was taken back from the server", file=sys.stderr)
        return 130


def _run(client: Client, args: argparse.Namespace) -> int:
    opts = {"category": args.category, "align": ALIGN_NAMES[args.align]}
    if args.command in ("ping", "info"):
        print(json.dumps(client.ping() if args.command == "ping" else client.info(), indent=1))
        return 0
    if args.command == "segment":
        v, f, _ = read_shape(args.mesh)
        parts = client.segment(v, f, **opts)
        write_ply(args.out, v, f, part_colors(parts), part_label=parts)
        print(f"wrote {args.out}: {len(v)} vertices, parts {sorted(set(parts.tolist()))}")
        _advise(args, _say_model(client, args, {args.mesh: client.last_reply.get("rebuild_distance")}))
        return 0
    sv, sf, scol = read_shape(args.source)
    if args.command == "transfer" and scol is None:
        raise ValueError(f"{args.source} has no vertex colours to transfer")
    tv, tf, _ = read_shape(args.target)
    given = _source_labels(args.source_labels, len(sv), sf) if getattr(args, "source_labels", None) else None
    res = client.correspond(sv, tv, source_faces=sf, target_faces=tf, **opts,
                            source_labels=None if given is None else given[0],
                            source_parts=args.command == "correspond" and given is None)
    distances = client.last_reply.get("rebuild_distance") or {}
    unlike = _say_model(client, args, {args.source: distances.get("source"), args.target: distances.get("target")})
    conf, index = res["confidence"], res["source_index"]  # index: the source vertex nearest each match
    face = res["source_face"] if sf is not None else np.full(len(tv), -1, np.int64)  # a cloud has no faces
    where = {"corr_source_face": face, "corr_source_vertex": index}
    matched = conf >= args.threshold
    if args.command == "transfer":
        grey = np.uint8(round(GREY * 255))
        carried = scol[index] if sf is None else interpolate(scol, sf, face, res["source_bary"]).round()
        colors = np.where(matched[:, None], carried.astype(np.uint8), grey)
        write_ply(args.out, tv, tf, colors, corr_confidence=conf, **where)
    else:
        labels, per_face = given if given is not None else (res["source_parts"], False)
        target_labels = labels[face] if per_face else labels[index]
        # labels on a sliver of the target are stray matches (the engine's rule, by area; a cloud's points count alike)
        source_areas = face_areas(sv, sf) if per_face else None if sf is None else vertex_areas(sv, sf)
        conf = np.where(slivers(labels, target_labels, source_areas=source_areas,
                                target_areas=None if tf is None else vertex_areas(tv, tf)), 0.0, conf)
        matched = conf >= args.threshold
        colors = part_colors(np.where(matched, target_labels, -1))
        write_ply(args.out, tv, tf, colors, part_label=target_labels, corr_confidence=conf, **where)
    print(f"wrote {args.out}: {len(tv)} vertices, {int(matched.sum())} matched at confidence >= {args.threshold}, "
          f"mean confidence {float(conf.mean()):.2f}")
    low = bool(conf.mean() < LOW_CONFIDENCE)
    if low:
        print(f"low confidence (mean {float(conf.mean()):.2f}, below {LOW_CONFIDENCE})", file=sys.stderr)
    _advise(args, unlike or low)
    return 0


class ProgressLines:
    """What the server says of a running request, on stderr: a line at each step and at each
    quarter of a long pass (a log or a terminal alike)."""

    def __init__(self) -> None:
        self.said: tuple[str, int] | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        quarter = 4 * done // total if total >= LONG_PASS else 0
        if (stage, quarter) == self.said:
            return
        self.said = (stage, quarter)
        print(f"server: {stage}" + (f", {25 * quarter}% of {total} points" if quarter else ""), file=sys.stderr,
              flush=True)


def _advise(args: argparse.Namespace, weak: bool) -> None:
    """Once, after weak results: what to try for meshes that may be turned, given the --align used."""
    if not weak or args.align == "any":
        return
    if args.align == "off":
        advice = ("if a mesh is not upright or not facing front (-Z), try --align yaw (turned about the up axis) "
                  "or --align any")
    else:
        advice = "if a mesh is not upright (lying on its side, upside down), try --align any"
    print(advice, file=sys.stderr)


def _say_model(client: Client, args: argparse.Namespace, distances: dict[str, float | None]) -> bool:
    """Which model answered, and a warning for each mesh it does not explain (with the hint
    of --category auto where the server has other models to try) -> whether there was one."""
    category = client.last_reply.get("category")
    print(f"model: {category}; rebuild distance "
          + ", ".join(f"{Path(name).name} {d:.3f}" for name, d in distances.items() if d is not None))
    warnings = [w for w in (unlike_warning(name, category, d) for name, d in distances.items()) if w]
    if warnings:
        others = args.category != AUTO_CATEGORY and len(client.info().get("categories", [])) > 1
        advice = "expect weak matches" + (", or try --category auto" if others else "")
        for warning in warnings:
            print(f"{warning}: {advice}", file=sys.stderr)
    return bool(warnings)


def _common(top: bool) -> argparse.ArgumentParser:
    """The options every command takes, before the command or after it.  After it they
    default to nothing, so that one given before the command stands."""
    def default(value):
        return value if top else argparse.SUPPRESS
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--address", default=default(DEFAULT_ADDRESS), help=f"server address (default {DEFAULT_ADDRESS})")
    p.add_argument("--timeout", type=float, default=default(300.0), help="seconds to wait for a reply (default 300)")
    p.add_argument("--category", default=default(None),
                   help="model to use (default: the server's default model, chair for the shipped ones); auto: the one "
                        "that rebuilds the meshes closest")
    p.add_argument("--secret-file", default=default(None), metavar="PATH",
                   help="file holding the server's key, readable by its owner only (default: CORR_SERVER_SECRET)")
    p.add_argument("--curve", action="store_true", default=default(False),
                   help="connect over CurveZMQ, to a server started with --curve (default: CORR_SERVER_CURVE)")
    p.add_argument("--align", default=default("off"), choices=sorted(ALIGN_NAMES),
                   help="auto-align: yaw (upright shapes, turned about the up axis) or any (any rotation); "
                        "default off: the meshes face front (-Z) as they are")
    return p


def _source_labels(path: str, n_vertices: int, faces: np.ndarray | None) -> tuple[np.ndarray, bool]:
    try:
        labels = np.loadtxt(path, dtype=np.int64).reshape(-1)
    except ValueError as exc:
        raise ValueError(f"--source-labels {path}: expected one integer per line ({exc})") from None
    if len(labels) == n_vertices:
        return labels, False
    if faces is not None and len(labels) == len(faces):
        return labels, True
    raise ValueError(f"{path} has {len(labels)} labels; the source has {n_vertices} vertices"
                     + ("" if faces is None else f" and {len(faces)} faces"))


if __name__ == "__main__":
    sys.exit(main())
