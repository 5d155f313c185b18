"""The official meta JSON: streamed reading, per-split tables, name decoding, records."""

import io
import json

import pytest

from deepnetsbench.splits import ppuda_meta
from deepnetsbench.splits.ppuda_meta import (
    MetaError,
    Tables,
    decode_name,
    decode_type,
    iter_meta,
    norm_from_meta,
    record_from_spec,
    spec_from_record,
)

REC = {"stem_type": 0, "stem_pool": True, "norm": "bnorm", "preproc": True, "fc_layers": 1,
       "glob_avg": True,
       "genotype": {"normal": [["none", 0], ["none", 1], ["sep_conv_3x3", 1], ["skip_connect", 0]],
                    "normal_concat": [2, 3], "reduce": [["max_pool_3x3", 0], ["avg_pool_3x3", 1],
                                                        ["none", 2], ["none", 1]],
                    "reduce_concat": [3]},
       "n_cells": 8, "ks": 5, "C_mult": 2, "fc_dim": 256, "num_nodes": 90,
       "num_params": {"cifar10": 123, "imagenet": 456}, "C": 48}


def _doc():
    tables = {"primitives_ext": {"0": "input", "1": "conv_1x1"},
              "unique_op_names": {"0": "input", "1": "classifier.0.weight"}}
    return {"val": {"nets": [REC, {**REC, "n_cells": 9}], "meta": tables},
            "test": {"meta": tables, "nets": [{**REC, "ks": 3, "C": 1234567890123}]},
            "wide": {"nets": [], "meta": tables}}


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
@pytest.mark.parametrize("binary", [True, False])
def test_stream_gives_the_same_records_as_json_load(monkeypatch, chunk, binary):
    monkeypatch.setattr(ppuda_meta, "_CHUNK", chunk)
    doc = _doc()
    text = json.dumps(doc, indent=1 if chunk == 7 else None) + "\n"
    f = io.BytesIO(text.encode()) if binary else io.StringIO(text)
    events = list(iter_meta(f))
    nets = [(s, r) for e, s, r in events if e == "net"]
    want = [(s, r) for s in doc for r in doc[s]["nets"]]
    assert nets == want  # a number cut by a chunk boundary is read whole
    assert [s for e, s, _ in events if e == "tables"] == ["val", "test", "wide"]


def test_stream_reads_utf8_split_across_chunks(monkeypatch):
    monkeypatch.setattr(ppuda_meta, "_CHUNK", 3)
    doc = {"val": {"nets": [{"note": "é✓"}], "meta": {}}}
    events = list(iter_meta(io.BytesIO(json.dumps(doc, ensure_ascii=False).encode())))
    assert events[0] == ("net", "val", {"note": "é✓"})


@pytest.mark.parametrize("text", ['{"val": {"nets": [1, 2', '[1, 2]', '{"val": 3}', ""])
def test_malformed_meta_is_a_one_line_error(text):
    with pytest.raises(MetaError, match="not an official DeepNets-1M meta file"):
        list(iter_meta(io.StringIO(text), "x.json"))


def test_types_decode_like_the_official_loader():
    assert decode_type("conv_1x1") == "conv"
    assert decode_type("conv_3x3") == "conv"
    assert decode_type("sep_conv_3x3") == "sep_conv"
    assert decode_type("dil_conv_5x5") == "dil_conv"
    assert decode_type("max_pool_3x3") == "max_pool"
    assert decode_type("fc-b") == "bias"
    assert decode_type("bn") == "bn" and decode_type("glob_avg") == "glob_avg"


def test_names_decode_like_the_official_loader():
    assert decode_name("_ops.2.op.1.weight", 3) == "cells.3._ops.2.op.1.weight"
    assert decode_name("_ops.2.1.weight", 3) == "cells.3._ops.2.op.1.weight"  # older names
    assert decode_name("preprocess0.op.1.weight", 0) == "cells.0.preprocess0.op.1.weight"
    assert decode_name("_ops.0.op.to_out.0.", 5) == "cells.5._ops.0.op.to_out.0.weight"
    assert decode_name("stem0.0.weight", 0) == "stem0.0.weight"
    assert decode_name("stem1.1.weight", 4) == "stem1.1.weight"
    assert decode_name("pos_enc.weight", 0) == "pos_enc.weight"
    assert decode_name("classifier.3.bias", 7) == "classifier.3.bias"
    assert decode_name("", 0) == "cells.0.input"


def test_tables_are_per_split_and_keyed_by_id():
    meta = {"primitives_ext": {"0": "input", "1": "conv_1x1", "2": "sep_conv", "3": "sum"},
            "unique_op_names": {"0": "input", "1": "_ops.0.op.1.weight", "2": "sum"}}
    t = Tables.from_json(meta, "test")
    from deepnetsbench.space.primitives import NODE_INDEX

    assert t.node(1, 2, 1, "r") == (NODE_INDEX["conv"], "cells.2._ops.0.op.1.weight")
    assert t.node(0, 0, 0, "r") == (NODE_INDEX["input"], None)
    assert t.node(3, 4, 2, "r") == (NODE_INDEX["sum"], None)
    with pytest.raises(MetaError, match="id 9 is not in the split's tables"):
        t.node(9, 0, 0, "test[0] row 3")
    with pytest.raises(MetaError, match="unknown primitive"):
        Tables.from_json({**meta, "primitives_ext": {"0": "lstm"}}, "test")
    with pytest.raises(MetaError, match="no primitives_ext"):
        Tables.from_json({"primitives_ext": {}}, "test")


def test_norms_map_to_ours():
    assert norm_from_meta("bnorm") == "bn"  # BN without running statistics, not BN-free
    assert norm_from_meta(None) is None
    assert norm_from_meta("bn-track") == "bn-track"
    assert norm_from_meta("none") is None


def test_records_decode_with_their_width_and_official_genotypes():
    spec = spec_from_record(REC, "test", 0)
    assert spec.args.C == 48 and spec.args.norm == "bn" and spec.args.stem_pool
    assert spec.genotype.normal[0] == ("none", 0)  # a step of two `none` ops is accepted
    assert spec.genotype.reduce_concat == (3,)  # ... and so are dead nodes
    assert not spec.args.is_vit
    assert spec_from_record(REC, "wide", 0).args.C == 4 * 48  # the loader's CIFAR-10 rule
    assert spec_from_record({**REC, "norm": None}, "bnfree", 0).args.norm is None
    vit = {**REC, "genotype": {**REC["genotype"], "normal": [["msa", 1], ["none", 0]] * 2}}
    assert spec_from_record(vit, "test", 0).args.is_vit
    train = {k: v for k, v in REC.items() if k != "C"}
    assert spec_from_record(train, "train", 0).args.C == 32
    with pytest.raises(MetaError, match=r"test\[4\] of the meta file lacks C"):
        spec_from_record(train, "test", 4)


def test_record_round_trip_keeps_the_official_key_order():
    spec = spec_from_record(REC, "wide", 0)
    rec = record_from_spec(spec, "wide", 90, {"cifar10": 123, "imagenet": 456})
    assert list(rec) == list(REC)
    assert rec == REC
    assert spec_from_record(rec, "wide", 0) == spec
