import json

import numpy as np
import pytest

from server.protocol import DTYPES, VERSION, ProtocolError, decode, encode, error_reply, ok_reply


def test_round_trip_every_dtype():
    arrays = {name: (np.arange(12) % 7).astype(dt).reshape(4, 3) for name, dt in DTYPES.items()}
    header, back = decode(encode({"op": "segment", "id": 7, "resolution": 32}, arrays))
    assert header["op"] == "segment" and header["id"] == 7 and header["resolution"] == 32 and header["v"] == VERSION
    for name, arr in arrays.items():
        assert back[name].dtype == DTYPES[name] and np.array_equal(back[name], arr)


def test_big_endian_and_non_contiguous_inputs_are_sent_little_endian():
    arr = np.arange(10, dtype=">f8").reshape(5, 2)[:, ::-1]
    _, back = decode(encode({"op": "x"}, {"a": arr}))
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
])
def test_malformed_messages_name_their_problem(frames, code):
    with pytest.raises(ProtocolError) as err:
        decode(frames)
    assert err.value.code == code and str(err.value)


def test_size_limit_and_duplicate_names():
    frames = encode({"op": "segment"}, {"a": np.zeros((10, 3), np.float32)})
    with pytest.raises(ProtocolError, match="more than 20 values") as err:
        decode(frames, max_elements=20)
    assert err.value.code == "too_large"
    head = {"v": 1, "arrays": [{"name": "a", "dtype": "uint8", "shape": [1]}] * 2}
    with pytest.raises(ProtocolError, match="listed twice"):
        decode([json.dumps(head).encode(), b"\x01", b"\x02"])


def test_unsupported_dtype_is_refused_when_encoding():
    with pytest.raises(ProtocolError, match="cannot be sent"):
        encode({"op": "x"}, {"a": np.array(["text"])})


def test_replies():
    header, arrays = decode(ok_reply("r1", {"parts": np.array([1, 2], np.int64)}, device="cpu"))
    assert header["ok"] is True and header["id"] == "r1" and header["device"] == "cpu" and arrays["parts"].tolist() == [1, 2]
    header, arrays = decode(error_reply(5, "bad_input", "points contain NaN"))
    assert header == {"v": 1, "id": 5, "ok": False, "error": {"code": "bad_input", "message": "points contain NaN"}, "arrays": []}
