"""hil.can_source: a real pack's CAN frames as a PackSource (example DBC + mapping).

Truth: values encoded with cantools from the example DBC, the mapping's documented scaling
(mV -> V, charge-positive current negated), and timeouts from the mapping file.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import can
import numpy as np
import pytest
import yaml

from bms_emu.config import ConfigError
from bms_emu.sources import PackSource, SourceError
from hil.can_source import CanPackSource, load_can_mapping

CAN_DIR = Path(__file__).resolve().parents[2] / "configs" / "can"
MAPPING = CAN_DIR / "example_pack_mapping.yaml"
CELLS_mV = 3300 + np.arange(16) * 2  # distinct per cell, so a mapping mix-up shows


def _frames(db, cells_mV=CELLS_mV, temps=(20, 21, 22, 23), charge_A=12.5) -> list[can.Message]:
    out = []
    m = db.get_message_by_name("PACK_CellV")
    for g in range(6):
        sig = {"CellGroup": g}
        for slot, name in enumerate(("CellVa_mV", "CellVb_mV", "CellVc_mV")):
            k = 3 * g + slot
            sig[name] = int(cells_mV[k]) if k < 16 else 0
        out.append(can.Message(arbitration_id=m.frame_id, data=m.encode(sig), is_extended_id=False))
    m = db.get_message_by_name("PACK_Temps")
    data = m.encode({f"Temp{j + 1}_degC": t for j, t in enumerate(temps)})
    out.append(can.Message(arbitration_id=m.frame_id, data=data, is_extended_id=False))
    m = db.get_message_by_name("PACK_Current")
    data = m.encode({"PackCurrentChg_A": charge_A})
    out.append(can.Message(arbitration_id=m.frame_id, data=data, is_extended_id=False))
    return out


@pytest.fixture()
def source():
    cfg, dbc = load_can_mapping(MAPPING)
    src = CanPackSource(cfg, dbc)
    yield src
    src.shutdown()


def test_example_mapping_maps_every_cell_temperature_and_current(source) -> None:
    assert isinstance(source, PackSource) and source.n_cells == 16
    for msg in _frames(source.port.db):
        source.feed(msg, t_s=0.0)
    s = source.sample(0.1)
    np.testing.assert_allclose(s.cell_voltage_V, CELLS_mV * 1e-3)
    np.testing.assert_allclose(s.sense_voltage_V, CELLS_mV * 1e-3)
    # sensors on cells 0, 5, 10, 15; every cell takes the nearest (ties: the lower one)
    assert s.temperature_C.tolist() == [20, 20, 20, 21, 21, 21, 21, 21, 22, 22, 22, 22, 22,
                                        23, 23, 23]  # fmt: skip
    assert s.current_A == pytest.approx(-12.5)  # charge-positive pack, discharge-positive us


def test_stale_signal_raises_naming_it_and_hold_mode_flags_it(source) -> None:
    for msg in _frames(source.port.db):
        source.feed(msg, t_s=0.0)
    source.sample(0.29)
    with pytest.raises(SourceError, match=r"current \(PACK_Current.PackCurrentChg_A\): last "
                                          r"update 0.310 s ago > timeout 0.3 s"):  # fmt: skip
        source.sample(0.31)
    with pytest.raises(SourceError, match=r"cells\[0\] .*CellVa_mV\[0\].*and \d+ more"):
        source.sample(0.6)
    cfg, dbc = load_can_mapping(MAPPING)
    held = CanPackSource(cfg.model_copy(update={"on_stale": "hold"}), dbc)
    for msg in _frames(held.port.db)[:-1]:  # no current frame ever
        held.feed(msg, t_s=1.0)
    s = held.sample(1.1)
    assert held.stale_signals == ["current (PACK_Current.PackCurrentChg_A): never received"]
    assert np.isnan(s.current_A) and s.cell_voltage_V[15] == pytest.approx(3.330)
    held.shutdown()


def test_unknown_and_malformed_frames_are_counted_never_raised(source) -> None:
    assert not source.feed(can.Message(arbitration_id=0x123, data=b"\x00"), t_s=0)
    short = can.Message(arbitration_id=0x400, data=b"\x00\x01", is_extended_id=False)
    assert not source.feed(short, t_s=0)
    rng = np.random.default_rng(0)
    for _ in range(300):  # random junk on the mapped IDs
        n = int(rng.integers(0, 9))
        fid = int(rng.choice([0x400, 0x410, 0x420, 0x555]))
        source.feed(can.Message(arbitration_id=fid, data=rng.bytes(n), is_extended_id=False), 0)
    st = source.stats
    assert st.unknown_id >= 1 and st.malformed >= 1 and st.received == 0  # fed, not received
    assert st.decoded + st.unknown_id + st.malformed == 302


def test_frames_taken_from_a_virtual_bus_at_sample_time() -> None:
    ch = f"pack-{random.getrandbits(32)}"
    cfg, dbc = load_can_mapping(MAPPING)
    now = [0.0]
    with (
        can.Bus(interface="virtual", channel=ch) as tx,
        CanPackSource(
            cfg, dbc, can.Bus(interface="virtual", channel=ch), clock=lambda: now[0]
        ) as src,
    ):
        for msg in _frames(src.port.db, temps=(30, 30, 30, 30)):
            tx.send(msg)
        tx.send(can.Message(arbitration_id=0x7FF, data=b"x", is_extended_id=False))
        s = src.sample(0.05)
        assert s.temperature_C.tolist() == [30.0] * 16
        assert src.stats.received == 9 and src.stats.unknown_id == 1


def test_frames_that_waited_unread_keep_their_arrival_time() -> None:
    """A busy emulator takes frames in late; their age counts from arrival, so they go stale."""
    ch = f"pack-{random.getrandbits(32)}"
    cfg, dbc = load_can_mapping(MAPPING)
    timeout_s = cfg.timeout_s
    with (
        can.Bus(interface="virtual", channel=ch) as tx,
        CanPackSource(cfg, dbc, can.Bus(interface="virtual", channel=ch)) as src,
    ):
        for msg in _frames(src.port.db):
            tx.send(msg)
        time.sleep(timeout_s + 0.2)  # nothing takes them in meanwhile
        with pytest.raises(SourceError, match="stale data"):
            src.sample(src.clock())
        assert src.stats.received == 8  # they were read, just too old
        for msg in _frames(src.port.db):
            tx.send(msg)
        assert src.sample(src.clock()).cell_voltage_V[5] == pytest.approx(CELLS_mV[5] / 1000)


def test_a_chip_measures_the_can_pack_through_the_real_protocol(source) -> None:
    """The CAN source in place of the virtual pack: the host reads what the pack sent."""
    from bms_emu.afe.chip import make_population
    from bms_emu.config import load_chip
    from bms_emu.device import DaisyChain, Device
    from bms_emu.device.chip_analog import ChipAnalog
    from bms_emu.host import HostDriver

    chip = load_chip(CAN_DIR.parent / "chips" / "adbms6830_like.yaml")
    analog = ChipAnalog(make_population(chip, 1, 0), 0, source)
    chain = DaisyChain([Device(analog, sid=0x4000)])
    for msg in _frames(source.port.db):
        source.feed(msg, t_s=0.0)
    host = HostDriver(chain.transfer, 1, delay=chain.delay)
    host.wakeup()
    host.write_config_a({"REFON": 1})
    host.wait(5e-3)
    host.start_cell_conversion()
    host.wait(2e-3)
    v = host.read_cells()[0]
    np.testing.assert_allclose(v, CELLS_mV * 1e-3, atol=5e-3)  # the chip's 3 mV class + LSB


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (lambda d: d["cells"].pop(), 'cells: got "15 entries": cells [15] unmapped'),
        (lambda d: d["cells"][3].update(index=2), "cells[3].index: got 2: already mapped"),
        (lambda d: d["cells"][0].update(index=16), "cells[0].index: got 16: must be 0..15"),
        (lambda d: d["cells"][0].update(volts=1), "cells[0].volts: unknown key"),
        (lambda d: d.update(on_stale="ignore"), 'on_stale: got "ignore"'),
        (lambda d: d.update(timeout_s=0), "timeout_s: got 0"),
        (lambda d: d.update(dbc="nope.dbc"), "dbc: got 'nope.dbc': no such file"),
        (
            lambda d: d["cells"][0].update(signal="CellVz_mV"),
            "cells[0].signal: got 'CellVz_mV': not in PACK_CellV",
        ),
    ],
)
def test_bad_mapping_names_the_key(tmp_path, edit, expect) -> None:
    data = yaml.safe_load(MAPPING.read_text())
    edit(data)
    bad = tmp_path / "bad_mapping.yaml"
    data["dbc"] = data["dbc"] if data["dbc"] == "nope.dbc" else str(CAN_DIR / data["dbc"])
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        cfg, dbc = load_can_mapping(bad)
        CanPackSource(cfg, dbc).shutdown()
    assert expect in str(err.value)
