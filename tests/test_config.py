"""Config loading: every shipped config loads; every bad config fails naming its key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from bms_emu.cli.main import main
from bms_emu.config import (
    CONFIG_KINDS,
    ConfigError,
    PackConfig,
    config_json_schema,
    load_config,
    load_pack,
)

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p for p in (REPO / "configs").rglob("*.yaml"))
BAD = sorted((REPO / "tests" / "data" / "bad_configs").glob("*.yaml"))


def test_there_are_shipped_and_bad_configs():
    assert len(SHIPPED) >= 3
    assert len(BAD) >= 10


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.kind in CONFIG_KINDS


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_config_fails_naming_the_key(path):
    expect = path.read_text().splitlines()[0].removeprefix("# expect:").strip()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    assert expect in msg, f"expected {expect!r} in:\n{msg}"


def test_configs_are_immutable(lfp_pack_path):
    cfg = load_pack(lfp_pack_path)
    with pytest.raises(ValidationError):
        cfg.n_cells = 12  # type: ignore[misc]
    with pytest.raises(ValidationError):
        cfg.cell.capacity_Ah = 1.0  # type: ignore[misc]


def test_several_problems_are_all_reported(tmp_path):
    p = tmp_path / "two.yaml"
    p.write_text("kind: pack\nname: x\nchemistry: lfp\nn_cells: 99\nbogus: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    lines = info.value.problems
    assert any(line.startswith("n_cells: got 99") for line in lines)
    assert any(line.startswith("bogus: unknown key") for line in lines)
    assert any(line.startswith("cell: required key is missing") for line in lines)


def test_wrong_kind_for_loader(tmp_path):
    p = tmp_path / "prof.yaml"
    p.write_text("kind: current_profile\npoints: [[0, 1.0]]\n")
    with pytest.raises(ConfigError, match="expected 'pack'"):
        load_pack(p)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_schema_is_json_and_describes_pack_keys():
    schema = config_json_schema()
    text = json.dumps(schema)
    assert "capacity_Ah" in text and "r0_mOhm" in text
    pack = config_json_schema("pack")
    assert pack["additionalProperties"] is False
    assert PackConfig.model_json_schema() == pack


def test_cli_config_check_and_schema(capsys, lfp_pack_path):
    assert main(["config", "check", str(lfp_pack_path)]) == 0
    assert "ok (pack)" in capsys.readouterr().out
    assert main(["config", "check", str(BAD[0]), str(lfp_pack_path)]) == 1
    captured = capsys.readouterr()
    assert str(BAD[0]) in captured.err
    assert main(["config", "schema", "pack"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "PackConfig"
