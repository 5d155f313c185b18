"""Loading method files and built-ins: factories, options, meta, and one-line load errors."""

from __future__ import annotations

import hashlib

import pytest

from deepnetsbench.errors import BenchError
from deepnetsbench.eval.methods import (
    LoadedMethod,
    MethodBase,
    MethodMeta,
    load_method,
    parse_method_options,
)

GOOD = """
from deepnetsbench.eval.methods import MethodBase, MethodMeta

class Method(MethodBase):
    meta = MethodMeta(name="good", version="2.0", url="https://x.org", num_params=7)

    def __init__(self, scale=1.0, tag="a"):
        self.scale, self.tag = scale, tag

    def predict(self, model, task):
        return None
"""


def test_load_file_records_sha_meta_and_options(method_file):
    path = method_file(GOOD)
    loaded = load_method(str(path), {"scale": 2.5, "tag": "b"})
    assert isinstance(loaded, LoadedMethod)
    assert loaded.method.scale == 2.5 and loaded.method.tag == "b"
    assert loaded.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.key == f"file:{loaded.file_sha256}"
    info = loaded.info()
    assert (info.name, info.version, info.num_params, info.builtin) == ("good", "2.0", 7, False)
    assert info.file_sha256 == loaded.file_sha256


def test_unknown_option_names_accepted_ones(method_file):
    path = method_file(GOOD)
    with pytest.raises(BenchError) as err:
        load_method(str(path), {"nope": 1})
    assert "scale" in err.value.fix and "tag" in err.value.fix


def test_make_method_factory_and_dict_meta(method_file):
    path = method_file("""
class _M:
    meta = {"name": "fact", "trained_on": "nothing"}
    def __init__(self, k):
        self.k = k
    def predict(self, model, task):
        return None

def make_method(k=3):
    return _M(k)
""")
    loaded = load_method(str(path), {"k": 9})
    assert loaded.method.k == 9
    assert loaded.meta == MethodMeta(name="fact", trained_on="nothing")


def test_default_name_is_file_stem(method_file):
    path = method_file("""
from deepnetsbench.eval.methods import MethodBase
class Method(MethodBase):
    def predict(self, model, task):
        return None
""", name="ghn_like.py")
    assert load_method(str(path)).meta.name == "ghn_like"


def test_builtins_by_name():
    for name in ("random", "kaiming", "orthogonal", "mean"):
        loaded = load_method(name)
        assert loaded.builtin and loaded.meta.name == name and loaded.file_sha256 is None
        assert isinstance(loaded.method, MethodBase)
    assert load_method("mean", {"draws": 2}).method.draws == 2


@pytest.mark.parametrize("source, expected", [
    ("x = 1\ndef f(:\n    pass\n", ["syntax error", "m.py:2"]),
    ("import torch\nimport not_a_real_package_xyz\n", ["failed to import", "m.py:2",
                                                       "not_a_real_package_xyz"]),
    ("a = 1\nb = 2\nraise RuntimeError('boom at import')\n", ["raised at import", "m.py:3",
                                                             "RuntimeError: boom at import"]),
    ("def predict(model, task):\n    return None\n", ["defines no class Method"]),
    ("from deepnetsbench.eval.methods import MethodBase as Method\n", ["defines no class Method"]),
])
def test_load_errors_are_one_line_with_user_location(method_file, source, expected):
    path = method_file(source)
    with pytest.raises(BenchError) as err:
        load_method(str(path))
    text = err.value.one_line()
    assert "\n" not in text
    for piece in expected:
        assert piece in text
    assert "deepnetsbench/eval" not in text  # points at the user's file, not the suite


def test_constructor_error_names_user_line(method_file):
    path = method_file("""
class Method:
    def __init__(self):
        raise ValueError("bad checkpoint")
    def predict(self, model, task):
        return None
""")
    with pytest.raises(BenchError, match=r"ValueError: bad checkpoint \(at .*m\.py:4\)"):
        load_method(str(path))


def test_missing_method_file_suggests_new_method(tmp_path):
    with pytest.raises(BenchError) as err:
        load_method(str(tmp_path / "nothere.py"))
    assert "new-method" in err.value.fix


def test_no_predict_is_refused(method_file):
    path = method_file("class Method:\n    pass\n")
    with pytest.raises(BenchError, match="no predict"):
        load_method(str(path))


def test_setup_error_is_one_line(method_file):
    path = method_file("""
class Method:
    def setup(self, device):
        open("/definitely/not/here.pt")
    def predict(self, model, task):
        return None
""")
    loaded = load_method(str(path))
    with pytest.raises(BenchError, match=r"setup failed: FileNotFoundError.*m\.py:4"):
        loaded.setup("cpu")


def test_parse_method_options():
    opts = parse_method_options(["a=1", "b=2.5", "c=true", "d=null", "e=ghn.pt", "f=[1, 2]",
                                 "g='x=y'", "h="])
    assert opts == {"a": 1, "b": 2.5, "c": True, "d": None, "e": "ghn.pt", "f": [1, 2],
                    "g": "x=y", "h": ""}
    for bad in ("novalue", "=3", "a b=1"):
        with pytest.raises(BenchError):
            parse_method_options([bad])


def test_method_bench_error_keeps_its_fix(method_file):
    path = method_file("""
from deepnetsbench.errors import BenchError
class Method:
    def __init__(self, ckpt=None):
        if ckpt is None:
            raise BenchError("no checkpoint", "pass --method-opt ckpt=PATH")
    def predict(self, model, task):
        return None
""")
    with pytest.raises(BenchError) as err:
        load_method(str(path))
    assert err.value.fix == "pass --method-opt ckpt=PATH"
    assert "no checkpoint" in err.value.what and "m.py:6" in err.value.what
    assert err.value.one_line().count("fix:") == 1
