from click.testing import CliRunner

from deepnetsbench.cli import main


def test_build_then_info(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["build", "--split", "test", "--num", "6", "--root", str(tmp_path)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["info", "--split", "test", "--split", "deep", "--root", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "test" in res.output and "missing" in res.output


def test_bad_input_is_a_one_line_error(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["build", "--split", "test", "--num", "0", "--root", str(tmp_path)])
    assert res.exit_code == 2
    assert "error:" in res.output and "Traceback" not in res.output
    res = runner.invoke(main, ["convert-ppuda", str(tmp_path), "--root", str(tmp_path)])
    assert res.exit_code == 2 and "meta.json" in res.output
