import json
import time

import numpy as np
import pytest

from server.protocol import DTYPES, OPS, VERSION, WINDOW_S, ProtocolError, Session, _Seen


def plain(max_elements=10_000):
    return Session(None, max_elements=max_elements, side="server")


def test_round_trip_every_dtype():
    arrays = {name: (np.arange(12) % 7).astype(dt).reshape(4, 3) for name, dt in DTYPES.items()}
    header, back = plain().decode(plain().encode({"op": "segment", "id": 7, "resolution": 32}, arrays))
    assert header["op"] == "segment" and header["id"] == 7 and header["resolution"] == 32 and header["v"] == VERSION
    for name, arr in arrays.items():
        assert back[name].dtype == DTYPES[name] and np.array_equal(back[name], arr)


def test_big_endian_and_non_contiguous_inputs_are_sent_little_endian():
    arr = np.arange(10, dtype=">f8").reshape(5, 2)[:, ::-1]
    _, back = plain().decode(plain().encode({"op": "x"}, {"a": arr}))
    assert np.array_equal(back["a"], arr)


def _frames(spec, payload=b"", extra=None):
    head = {"v": 1, "op": "segment", "arrays": spec, **(extra or {})}
    return [json.dumps(head).encode(), *([payload] if spec else [])]


@pytest.mark.parametrize("frames,code", [
    ([], "bad_header"),
    ([b"\xff\xfe"], "bad_json"),
    ([b"{not json"], "bad_json"),
    ([b"[1, 2]"], "bad_header"),
    ([json.dumps({"v": 2, "op": "ping"}).encode()], "bad_version"),
    ([json.dumps({"op": "ping"}).encode()], "bad_version"),
    ([json.dumps({"v": 1, "arrays": "x"}).encode()], "bad_header"),
    ([json.dumps({"v": 1, "arrays": [{"name": "a", "dtype": "float32", "shape": [1, 3]}]}).encode()], "frame_count"),
    ([json.dumps({"v": 1}).encode(), b"extra"], "frame_count"),
    (_frames([{"name": "a", "dtype": "object", "shape": [1]}], b"x"), "bad_dtype"),
    (_frames([{"name": "a", "dtype": "float32", "shape": [-1, 3]}], b""), "bad_shape"),
    (_frames([{"name": "a", "dtype": "float32", "shape": "3"}], b""), "bad_shape"),
    (_frames([{"name": "a", "dtype": "float32", "shape": [True, 3]}], b""), "bad_shape"),
    (_frames([{"name": "a", "dtype": "float32", "shape": [2, 3]}], b"\x00" * 23), "size_mismatch"),
    (_frames([{"dtype": "float32", "shape": [1]}], b"\x00" * 4), "bad_header"),
    ([b"{" + b" " * 70000 + b"}"], "too_large"),
    ([b"[" * 30000], "bad_json"),  # nested past Python's recursion limit
    ([b'{"v": ' + b"9" * 5000 + b"}"], "bad_json"),  # an integer too long to read
    (_frames([{"name": "a", "dtype": "float32", "shape": [0, 2**62]}], b""), "bad_shape"),
    # empty, yet numpy cannot make it: refused by the protocol, not failing in numpy later
    (_frames([{"name": "a", "dtype": "float32", "shape": [0, 2**31 - 1, 2**31 - 1, 2**31 - 1]}], b""), "bad_shape"),
    (_frames([{"name": "a", "dtype": "float32", "shape": [0, 10_001]}], b""), "bad_shape"),  # over max_elements
    ([json.dumps({"v": True, "op": "ping"}).encode()], "bad_version"),
    ([json.dumps({"v": 1.0, "op": "ping"}).encode()], "bad_version"),
    ([json.dumps({"v": 1, "op": "ping", "id": {"a": [1]}}).encode()], "bad_header"),
    ([json.dumps({"v": 1, "op": "ping", "id": [[]]}).encode()], "bad_header"),
    ([json.dumps({"v": 1, "op": "ping", "id": 1.5}).encode()], "bad_header"),
    ([json.dumps({"v": 1, "op": "ping", "id": True}).encode()], "bad_header"),
    ([json.dumps({"v": 1, "op": "ping", "id": 2**64}).encode()], "bad_header"),
    ([json.dumps({"v": 1, "op": "ping", "id": "x" * 65}).encode()], "bad_header"),
    ([b'{"v": 1, "op": "ping", "id": 1e400}'], "bad_header"),  # read as a float: infinity
    ([b'{"v": 1, "op": "ping", "ts": NaN}'], "bad_json"),  # not JSON, though Python reads it
])
def test_malformed_messages_name_their_problem(frames, code):
    with pytest.raises(ProtocolError) as err:
        plain().decode(frames)
    assert err.value.code == code and str(err.value)


def test_ids_a_reply_can_carry_and_no_nan_sent():
    for request_id in ("x" * 64, 2**63 - 1, -2**63, None):
        header, _ = plain().decode(plain().encode({"op": "ping", "id": request_id}))
        assert header.get("id") == request_id
    with pytest.raises(ProtocolError) as err:
        plain().decode([json.dumps({"v": 2, "op": "ping", "id": {"nested": [1]}}).encode()])
    assert err.value.code == "bad_header" and "id" not in err.value.header  # a bad id is not echoed
    with pytest.raises(ValueError, match="not JSON compliant"):
        plain().encode({"op": "ping", "id": 1, "ts": float("nan")})


def test_size_limit_and_duplicate_names():
    frames = plain().encode({"op": "segment"}, {"a": np.zeros((10, 3), np.float32)})
    with pytest.raises(ProtocolError, match="more than 20 values") as err:
        plain(max_elements=20).decode(frames)
    assert err.value.code == "too_large"
    head = {"v": 1, "arrays": [{"name": "a", "dtype": "uint8", "shape": [1]}] * 2}
    with pytest.raises(ProtocolError, match="listed twice"):
        plain().decode([json.dumps(head).encode(), b"\x01", b"\x02"])


def test_unsupported_dtype_is_refused_when_encoding():
    with pytest.raises(ProtocolError, match="cannot be sent"):
        plain().encode({"op": "x"}, {"a": np.array(["text"])})


def test_replies():
    s = plain()
    header, arrays = s.decode(s.reply("r1", "segment", {"parts": np.array([1, 2], np.int32)}, device="cpu"))
    assert header["ok"] is True and header["id"] == "r1" and header["device"] == "cpu"
    assert arrays["parts"].tolist() == [1, 2] and arrays["parts"].dtype == np.int64  # the table's dtype
    header, arrays = s.decode(s.error(5, "bad_input", "points contain NaN"))
    assert header["ok"] is False and header["id"] == 5 and arrays == {}
    assert header["error"] == {"code": "bad_input", "message": "points contain NaN"}


# ---------------------------------------------------------------------- the op table drives both ends
def test_request_casts_to_the_table_and_the_receiver_fills_defaults():
    client, server = Session(None, 1000, "client"), plain()
    frames = client.request("correspond", "r", {"source_vertices": [[0, 0, 0]], "target_vertices": np.zeros((2, 3)),
                                                "source_labels": np.array([3], np.int32)}, both=True)
    header, params, arrays = server.read_request(frames)
    assert params == {"category": None, "align": False, "both": True, "source_parts": False}
    assert {k: v.dtype.name for k, v in arrays.items()} == {"source_vertices": "float32", "target_vertices": "float32",
                                                            "source_labels": "int64"}


@pytest.mark.parametrize("op,arrays,params,code,text", [
    ("segment", {}, {}, "missing_array", "a segment request needs the array 'vertices': float32 (N, 3)"),
    ("correspond", {"source_vertices": np.zeros((3, 3))}, {}, "missing_array", "needs the array 'target_vertices'"),
    ("segment", {"wrong": np.zeros((3, 3))}, {}, "unknown_array", "no array 'wrong'; its arrays are vertices, faces"),
    ("segment", {"vertices": np.zeros((3, 2))}, {}, "bad_array", "vertices is float32 (3, 2)"),
    ("segment", {"vertices": np.zeros((3, 3)), "faces": np.zeros((2, 3))}, {}, "bad_array", "faces must be integers"),
    ("correspond", {"source_vertices": np.zeros((3, 3)), "target_vertices": np.zeros((3, 3)),
                    "source_labels": np.zeros(3)}, {}, "bad_array", "source_labels must be integers, got float64"),
    ("segment", {"vertices": np.zeros((3, 3))}, {"align": "yes"}, "bad_param",
     "'align' must be one of false, true, \"yaw\", got \"yes\""),
    ("segment", {"vertices": np.zeros((3, 3))}, {"align": 1}, "bad_param", "'align' must be one of"),
    ("reconstruct", {"vertices": np.zeros((3, 3))}, {"resolution": True}, "bad_param", "'resolution' must be int"),
    ("segment", {"vertices": np.zeros((3, 3))}, {"speed": 9}, "bad_param", "no parameter 'speed'"),
    ("fly", {}, {}, "unknown_op", "unknown op 'fly'"),
])
def test_the_table_refuses_bad_requests_on_both_ends(op, arrays, params, code, text):
    with pytest.raises(ProtocolError, match=text.replace("(", r"\(").replace(")", r"\)")) as sent:
        Session(None, 1000, "client").request(op, 1, arrays, **params)
    assert sent.value.code == code
    raw = plain().encode({"op": op, "id": 1, **params}, {k: np.asarray(v) for k, v in arrays.items()})
    with pytest.raises(ProtocolError) as got:
        plain().read_request(raw)
    assert got.value.code == code and got.value.header["id"] == 1


def test_align_takes_false_true_or_yaw_and_replies_carry_rotations():
    client, server = Session(None, 1000, "client"), plain()
    for mode in (False, True, "yaw"):
        _, params, _ = server.read_request(client.request("segment", 1, {"vertices": np.zeros((3, 3))}, align=mode))
        assert params["align"] == mode and type(params["align"]) is type(mode)
    rot = np.eye(3)[[1, 0, 2]]
    _, arrays = server.decode(server.reply(1, "correspond", {
        "mapped": np.zeros((2, 3)), "confidence": np.zeros(2), "source_index": np.zeros(2, int),
        "source_parts": np.zeros(4, int), "source_rotation": rot, "target_rotation": np.eye(3)}))
    assert arrays["source_rotation"].tolist() == rot.tolist() and arrays["source_parts"].shape == (4,)
    with pytest.raises(ProtocolError, match=r"rotation is float32 \(2, 3\); a segment reply needs float32 \(3, 3\)"):
        server.reply(1, "segment", {"parts": np.zeros(2, int), "rotation": np.zeros((2, 3))})


def test_a_letter_in_a_shape_rule_is_one_length_per_message():
    s = plain()
    mapped = {"mapped": np.zeros((4, 3)), "confidence": np.zeros(4), "source_index": np.zeros(4, int)}
    s.reply(1, "correspond", mapped)
    with pytest.raises(ProtocolError, match=r"confidence is float32 \(5,\); a correspond reply needs float32 \(M\) with M = 4"):
        s.reply(1, "correspond", {**mapped, "confidence": np.zeros(5)})
    assert set(OPS) == {"ping", "info", "cancel", "segment", "correspond", "reconstruct"}


# ---------------------------------------------------------------------- signing
def keyed(key="k1", side="server"):
    return Session(key, max_elements=1000, side=side)


def test_signed_round_trip_and_the_key_never_travels():
    frames = keyed("s3cret-key", "client").request("segment", 1, {"vertices": np.ones((2, 3))})
    assert len(frames) == 3 and len(frames[-1]) == 64  # header, array, hex HMAC-SHA256
    assert not any(b"s3cret-key" in f for f in frames)
    header, _, arrays = keyed("s3cret-key").read_request(frames)
    assert header["sig"] == "hmac-sha256" and arrays["vertices"].sum() == 6


@pytest.mark.parametrize("receiver,tamper,code,text", [
    (keyed("other"), None, "bad_signature", "signature does not match: wrong key?"),
    (plain(), None, "bad_signature", "the message is signed but this server has no key"),
    (keyed(), lambda f: [f[0], f[1][:-1] + b"\x01", f[2]], "bad_signature", "signature does not match"),
    (keyed(), lambda f: [f[0].replace(b'"id":1', b'"id":2'), *f[1:]], "bad_signature", "signature does not match"),
    (keyed(), lambda f: [f[0], f[1], b"0" * 64], "bad_signature", "signature does not match"),
    (keyed(), lambda f: f[:2], "frame_count", "and a signature but 1 frames follow"),
])
def test_a_bad_signature_is_refused(receiver, tamper, code, text):
    frames = keyed().request("segment", 1, {"vertices": np.ones((2, 3))})
    with pytest.raises(ProtocolError, match=text) as err:
        receiver.decode((tamper or (lambda f: f))(frames))
    assert err.value.code == code


def test_an_unsigned_message_to_a_keyed_receiver():
    with pytest.raises(ProtocolError, match="missing signature: this server requires a key") as err:
        keyed().decode(plain().request("ping", 1))
    assert err.value.code == "bad_signature"


def test_replayed_and_stale_messages_are_refused():
    receiver = keyed()
    frames = keyed().request("ping", 1)
    receiver.decode(frames)
    with pytest.raises(ProtocolError, match="already received") as err:
        receiver.decode(frames)
    assert err.value.code == "replayed_message"
    for offset in (-WINDOW_S - 5, WINDOW_S + 5):
        old = keyed().encode({"op": "ping", "id": 2, "ts": time.time() + offset})
        with pytest.raises(ProtocolError, match="outside the 300 s window") as err:
            receiver.decode(old)
        assert err.value.code == "stale_message"


def test_replay_memory_is_bounded_and_forgetting_lets_no_replay_through():
    seen = _Seen(window=100, limit=3)
    for i in range(5):
        seen.admit(f"m{i}", ts=1000.0 + i, now=1005.0)
    assert len(seen.ids) == 3 and len(seen.heap) == 3
    with pytest.raises(ProtocolError) as err:
        seen.admit("m0", ts=1000.0, now=1005.0)  # forgotten, but older than what was forgotten
    assert err.value.code == "stale_message"
    seen.admit("late", ts=2000.0, now=2001.0)  # the window moved on: old ids are pruned
    assert seen.ids == {"late"}


def test_ids_stamped_in_the_future_lock_no_one_out_of_the_replay_memory():
    seen = _Seen(window=300, limit=5)
    for i in range(5):  # a key holder fills the memory with messages stamped near the window's far end
        seen.admit(f"ahead-{i}", ts=1299.0, now=1000.0)
    for i in range(10):  # everyone else's, sent since, still gets in: the floor stays behind the clock
        now = 1001.0 + i
        seen.admit(f"honest-{i}", ts=now - 0.05, now=now)
        assert seen.floor <= now
    with pytest.raises(ProtocolError) as err:
        seen.admit("honest-9", ts=1009.95, now=1010.5)
    assert err.value.code == "replayed_message"
    with pytest.raises(ProtocolError) as err:
        seen.admit("honest-0", ts=1000.95, now=1011.0)  # forgotten, but older than what was forgotten
    assert err.value.code == "stale_message"


# ---------------------------------------------------------------------- the prepared-shape cache
def test_the_cache_keys_shapes_by_their_arrays_and_is_bounded_in_entries_and_bytes():
    from server.cache import PreparedCache, shape_key

    a = {"source_vertices": np.zeros((4, 3), np.float32), "source_faces": np.zeros((2, 3), np.int64)}
    key = shape_key(a, "source_", "chair", "yaw")
    same = {"target_vertices": a["source_vertices"].copy(), "target_faces": a["source_faces"].copy()}
    assert shape_key(same, "target_", "chair", "yaw") == key  # the role does not matter, the arrays do
    changed = {**a, "source_vertices": a["source_vertices"] + np.float32(1e-6)}
    assert len({key, shape_key(changed, "source_", "chair", "yaw"), shape_key(a, "source_", "chair", True),
                shape_key(a, "source_", "table", "yaw"), shape_key({"source_vertices": a["source_vertices"]},
                                                                   "source_", "chair", "yaw")}) == 5
    cache = PreparedCache(max_entries=2, max_bytes=10_000)
    made = []

    def make(n):
        return lambda: made.append(n) or np.zeros(n, np.uint8)

    cache.get("a", make(100)), cache.get("b", make(100)), cache.get("a", make(100))  # a is the most recent
    cache.get("c", make(100))  # b goes
    assert made == [100, 100, 100] and len(cache) == 2
    cache.get("b", make(100))
    assert made[-1] == 100 and len(made) == 4 and (cache.hits, cache.misses) == (1, 4)
    cache.get("big", make(9_950))  # over the byte bound with anything else: only it stays
    assert len(cache) == 1 and cache.bytes == 9_950


def test_the_cache_counts_can_be_read_while_another_thread_fills_it():
    """`ping` reads the counts on the server's main thread while the model thread adds and drops."""
    import threading

    from server.cache import PreparedCache

    cache, errors, done = PreparedCache(max_entries=3, max_bytes=1 << 20), [], threading.Event()

    def fill():
        for i in range(20_000):
            cache.get(f"k{i % 7}", lambda: np.zeros(64, np.uint8))
            cache.settle()
        done.set()

    def read():
        while not done.is_set():
            try:
                stats = cache.stats()
                assert stats["entries"] <= 4  # the bound, and one just made before it is settled
            except Exception as exc:  # collected for the main thread
                errors.append(exc)
                return

    threads = [threading.Thread(target=fill), threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and cache.hits + cache.misses == 20_000


def test_a_prepared_shape_counts_what_it_keeps_after_use():
    """The cache's byte bound sees the vertex embeddings a prepared mesh keeps once it has been matched."""
    import trimesh

    from model import Correspondence
    from server.cache import nbytes

    engine = Correspondence.load(category="chair", device="cpu")
    box = trimesh.creation.box(extents=(0.5, 1.0, 0.5)).subdivide()
    prep = engine.prepare((np.asarray(box.vertices), np.asarray(box.faces)))
    before = nbytes(prep)
    engine.segment(prep)
    kept = prep.vertex_embeddings["fitted"]
    assert kept.shape == (len(box.vertices), engine.cfg.n_parts)
    assert nbytes(prep) == before + kept.nbytes


def test_a_target_is_sent_each_position_once_and_the_reply_comes_back_per_vertex():
    from server.client import unwelded, welded

    square = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
    split = square[[0, 1, 2, 3, 0, 2]]  # a glTF import's copies at a seam
    triangles = np.array([[0, 1, 2], [4, 5, 3]])
    vertices, faces, back = welded(split, triangles)
    assert len(vertices) == 4 and np.array_equal(vertices[back], split)
    assert np.array_equal(vertices[faces], split[triangles])
    reply = {"confidence": np.arange(4.0), "source_index": np.arange(4), "source_parts": np.arange(7),
             "reverse_source_index": back[[0, 5, 4]], "reverse_source_face": np.array([0, 1, 1]),
             "target_rotation": np.eye(3)}
    back_on = unwelded(reply, back, faces=triangles)
    assert back_on["confidence"].tolist() == back.tolist() and len(back_on["source_parts"]) == 7
    # a source vertex matched to a welded target vertex names the copy that is a corner of its face
    assert back_on["reverse_source_index"].tolist() == [0, 5, 4]
    assert unwelded(reply, back)["reverse_source_index"].tolist() == [0, 2, 0]  # no faces: the first copy
    assert welded(square, triangles[:1])[2] is None and welded(square)[0] is square
    too_big = np.r_[square, square].astype(np.float64)
    too_big[5, 0] = 1e39  # finite here, infinite as the float32 the server reads
    for bad in (([[0, 0, np.nan]] * 4, None), (split, triangles + 6), (split, triangles - 1), ([[1, 2, 3]] * 5, None),
                (too_big, None)):
        assert welded(*bad)[2] is None  # sent as it is, for the server to name the problem by its own rows
