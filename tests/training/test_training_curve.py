"""Time-to-accuracy, speedup and geometric-mean arithmetic; curve JSON round trip."""

import math

import pytest

from deepnetsbench.errors import BenchError
from deepnetsbench.training.curve import (
    Curve,
    CurvePoint,
    Speedup,
    geometric_mean,
    speedup,
    time_to_accuracy,
)


def make_curve() -> Curve:
    pts = [(0, 0, 0, 10.0, 50.0), (10, 1, 100, 40.0, 80.0), (20, 2, 200, 60.0, 90.0),
           (30, 3, 300, 55.0, 95.0), (40, 4, 400, 70.0, 97.0)]
    return Curve(points=[CurvePoint(float(s), float(e), st, t1, t5) for s, e, st, t1, t5 in pts],
                 config={"optimizer": "gc"}, device="cpu", hardware="cpu:test x1",
                 budget={"epochs": 4, "seconds": None}, finished=True, status="done")


def test_first_point_reaching_target():
    c = make_curve()
    t = time_to_accuracy(c, 50.0)
    assert t.reached and t.seconds == 20.0 and t.epochs == 2.0 and t.steps == 200
    assert t.seconds_lower_bound is None and not t.interpolated
    assert time_to_accuracy(c, 60.0).seconds == 20.0  # reaching = at or above
    assert time_to_accuracy(c, 5.0).seconds == 0.0  # already at time 0
    assert time_to_accuracy(c, target_top5=92.0).seconds == 30.0


def test_interpolation_option():
    c = make_curve()
    t = time_to_accuracy(c, 50.0, interpolate=True)
    assert t.interpolated and t.seconds == pytest.approx(15.0)  # halfway 40 -> 60
    assert t.epochs == pytest.approx(1.5) and t.steps == 150
    # target hit exactly at a point: interpolation gives that point's time
    assert time_to_accuracy(c, 60.0, interpolate=True).seconds == pytest.approx(20.0)
    # first crossing, not a later one: 55 -> 70 after a dip is ignored for target 58
    assert time_to_accuracy(c, 58.0, interpolate=True).seconds == pytest.approx(19.0)


def test_never_reached_is_a_lower_bound():
    c = make_curve()
    t = time_to_accuracy(c, 80.0)
    assert not t.reached and t.seconds is None and t.epochs is None
    assert t.seconds_lower_bound == 40.0
    s = speedup(t, 0.5)
    assert s.is_lower_bound and s.value == 80.0
    assert str(s) == ">=80x"


def test_speedup_arithmetic_and_errors():
    t = time_to_accuracy(make_curve(), 50.0)
    s = speedup(t, 0.04)
    assert not s.is_lower_bound and s.value == pytest.approx(500.0)
    assert s.train_seconds == 20.0 and s.predict_seconds == 0.04
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(BenchError):
            speedup(t, bad)
    with pytest.raises(BenchError):
        time_to_accuracy(make_curve())  # no target
    with pytest.raises(BenchError):
        time_to_accuracy(make_curve(), 50.0, target_top5=50.0)  # two targets
    with pytest.raises(BenchError):
        time_to_accuracy(Curve(), 50.0)  # no points


def test_geometric_mean():
    exact = [Speedup(2.0, False, 2, 1), Speedup(8.0, False, 8, 1)]
    m = geometric_mean(exact)
    assert m.value == pytest.approx(4.0) and not m.is_lower_bound and m.n == 2
    m = geometric_mean(exact + [Speedup(32.0, True, 32, 1)])
    assert m.value == pytest.approx(8.0) and m.is_lower_bound and m.n_lower_bounds == 1
    assert geometric_mean([Speedup(0.0, False, 0, 1), Speedup(5.0, False, 5, 1)]).value == 0.0
    assert math.isclose(geometric_mean([Speedup(2300.0, False, 1, 1)]).value, 2300.0)
    with pytest.raises(BenchError):
        geometric_mean([])


def test_curve_json_round_trip(tmp_path):
    c = make_curve()
    c.points[1].train_loss = 1.25
    again = Curve.from_json(c.to_json())
    assert again == c
    assert Curve.from_json(c.to_dict()) == c
    path = c.save(tmp_path / "sub" / "curve.json")
    assert Curve.load(path) == c
    assert [p.name for p in path.parent.iterdir()] == ["curve.json"]  # no temp files left
    with pytest.raises(BenchError):
        Curve.from_json("{not json")
    with pytest.raises(BenchError):
        Curve.from_json('{"points": [{"seconds": 1}]}')
    with pytest.raises(BenchError):
        Curve.load(tmp_path / "missing.json")
