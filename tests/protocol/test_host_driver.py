"""HostDriver against a tiny loop-back chain stub.

The stub is deliberately simple and independent of bms_emu.protocol.frames: it shifts write
payloads through a byte pipe like a physical daisy chain, answers reads nearest-device-first,
and keeps a 6-bit command counter per device (increment on accepted commands, 63 -> 1, reset by
RSTCC). It uses only the PEC functions (tested separately against published vectors) and the
opcode decoder.
"""

from __future__ import annotations

import numpy as np
import pytest

from bms_emu.host import CommandCounterError, HostDriver, PecError, TransferError
from bms_emu.host.driver import next_command_counter
from bms_emu.protocol.opcodes import READ, WRITE, decode_opcode
from bms_emu.protocol.pec import append_data_pec, check_data_pec, check_pec15

CELL_GROUP = {"A": 0, "B": 3, "C": 6, "D": 9, "E": 12, "F": 15}


class FakeChain:
    """Canned ADBMS6830 chain: registers are plain bytes, cells come from ``codes``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.regs: list[dict[str, bytes]] = [{} for _ in range(n)]
        self.counters = [0] * n
        self.codes = np.zeros((n, 16), dtype=np.int16)
        self.windows: list[bytes] = []
        self.deaf: set[int] = set()  # devices that miss the next counted command
        self.corrupt: set[int] = set()  # devices whose next reply gets a flipped bit
        self.short_reply = False

    def _data(self, dev: int, group: str, size: int) -> bytes:
        if group[:2] in ("CV", "SV", "FC", "AC"):
            if group.endswith("ALL"):
                return self.codes[dev].astype("<i2").tobytes()
            start = CELL_GROUP[group[2]]
            slots = [*self.codes[dev, start : start + 3].tolist(), -1, -1]
            return np.array(slots[:3], dtype="<i2").tobytes()
        return self.regs[dev].get(group, bytes([0x5A]) * size)

    def transfer(self, mosi: bytes) -> bytes:
        self.windows.append(mosi)
        idle = b"\xff" * len(mosi)
        if len(mosi) < 4 or not check_pec15(mosi[:4]):
            return idle
        hit = decode_opcode(mosi[0] << 8 | mosi[1])
        if hit is None:
            return idle
        spec, _ = hit
        if spec.kind == READ:
            assert spec.group is not None
            reply = bytearray(b"\xff" * 4)
            for dev in range(self.n):
                block = bytearray(append_data_pec(self._data(dev, spec.group, spec.data_len),
                                                  self.counters[dev]))  # fmt: skip
                if dev in self.corrupt:
                    block[1] ^= 0x04
                reply += block
            self.corrupt.clear()
            return bytes(reply[:-1]) if self.short_reply else bytes(reply)
        if spec.kind == WRITE:
            # Physical shift: bytes enter at the host end and move toward the far end.
            pipe = [0] * (self.n * (spec.data_len + 2))
            for b in mosi[4:]:
                pipe.insert(0, b)
                pipe.pop()
            step = spec.data_len + 2
            for dev in range(self.n):
                held = bytes(reversed(pipe[dev * step : (dev + 1) * step]))
                ok, cc = check_data_pec(held)
                if ok and cc == 0 and dev not in self.deaf:
                    assert spec.group is not None
                    self.regs[dev][spec.group] = held[: spec.data_len]
        for dev in range(self.n):
            if dev in self.deaf:
                continue
            if spec.resets_cc:
                self.counters[dev] = 0
            elif spec.increments_cc:
                self.counters[dev] = next_command_counter(self.counters[dev])
        self.deaf.clear()
        return idle


@pytest.fixture
def chain() -> FakeChain:
    return FakeChain(4)


@pytest.fixture
def host(chain: FakeChain) -> HostDriver:
    return HostDriver(chain.transfer, 4)


def test_config_round_trip_in_chain_order(chain: FakeChain, host: HostDriver) -> None:
    cfgs = [{"REFON": 1, "CTH": k, "GPO": 0x3FF - k} for k in range(4)]
    host.write_config_a(cfgs)
    for k in range(4):
        assert chain.regs[k]["CFGA"][0] == 0x80 | k  # device k got its own dict
    back = host.read_config_a()
    assert [(c["CTH"], c["GPO"]) for c in back] == [(k, 0x3FF - k) for k in range(4)]
    host.write_config_b({"VUV": 0x123, "VOV": 0x456, "DCC": 0x8001})
    assert all(c["DCC"] == 0x8001 for c in host.read_config_b())


@pytest.mark.parametrize("use_all", [False, True])
@pytest.mark.parametrize("kind", ["C", "S", "F", "A"])
def test_read_cells(chain: FakeChain, host: HostDriver, kind: str, use_all: bool) -> None:
    rng = np.random.default_rng(1)
    chain.codes[:] = rng.integers(0, 20000, size=(4, 16))
    chain.codes[2, 5] = -0x8000  # cleared
    volts = host.read_cells(kind, use_all=use_all)
    assert volts.shape == (4, 16)
    expected = 1.5 + chain.codes.astype(float) * 150e-6
    expected[2, 5] = np.nan
    np.testing.assert_allclose(volts, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(host.read_cell_codes(kind, use_all), chain.codes)


def test_conversion_command_encoding(chain: FakeChain, host: HostDriver) -> None:
    host.start_cell_conversion(cont=True, rd=True, rstf=True, ow=2)
    hit = decode_opcode(chain.windows[-1][0] << 8 | chain.windows[-1][1])
    assert hit is not None
    assert hit[0].name == "ADCV"
    assert hit[1] == {"RD": 1, "CONT": 1, "DCP": 0, "RSTF": 1, "OW": 2}
    assert host.expected_counters == [1, 1, 1, 1] == chain.counters


def test_counter_wraps_63_to_1(chain: FakeChain, host: HostDriver) -> None:
    for _ in range(64):
        host.snap()
    assert chain.counters == [1] * 4
    assert host.expected_counters == [1] * 4
    host.read_config_a()  # reads check the counter and do not increment it
    assert chain.counters == [1] * 4


def test_lost_command_raises_counter_error(chain: FakeChain, host: HostDriver) -> None:
    host.mute()
    chain.deaf = {2}
    host.unmute()  # device 2 misses it
    with pytest.raises(CommandCounterError) as err:
        host.read_status("A")
    assert (err.value.device, err.value.expected, err.value.received) == (2, 2, 1)
    assert "device 2" in str(err.value)
    assert host.counter_faults == [False, False, True, False]
    host.rstcc()
    assert host.counter_faults == [False] * 4
    assert chain.counters == [0] * 4
    host.read_status("A")  # consistent again


def test_counter_mismatch_flag_mode(chain: FakeChain) -> None:
    host = HostDriver(chain.transfer, 4, raise_on_counter_mismatch=False)
    chain.deaf = {0}
    host.snap()
    assert len(host.read_sid()) == 4
    assert host.counter_faults == [True, False, False, False]


def test_pec_error_names_the_device(chain: FakeChain, host: HostDriver) -> None:
    chain.corrupt = {1, 3}
    with pytest.raises(PecError) as err:
        host.read_config_a()
    assert err.value.device == 1
    assert err.value.devices == (1, 3)
    assert "RDCFGA" in str(err.value)


def test_status_flags_pwm_and_sid(chain: FakeChain, host: HostDriver) -> None:
    chain.regs[0]["STATC"] = bytes.fromhex("0100000000a0")
    chain.regs[0]["SID"] = bytes.fromhex("010203040506")
    status = host.read_status()
    assert status[0]["CSFLT"] == 1
    assert status[0]["COMP"] == 1 and status[0]["VDE"] == 1
    assert "OC_CNTR" in status[0] and "REV" in status[0] and "VREF2" in status[0]
    host.clear_flags({"CSFLT": 0xFFFF, "SPIFLT": 1})
    assert chain.regs[3]["CLRFLAG"] == bytes.fromhex("ffff00000010")
    assert host.read_sid()[0] == bytes.fromhex("010203040506")
    duty = np.arange(64).reshape(4, 16) % 16
    host.write_pwm(duty)
    np.testing.assert_array_equal(host.read_pwm(), duty)
    with pytest.raises(ValueError, match=r"0\.\.15"):
        host.write_pwm(np.full(16, 16))


def test_wakeup_and_transfer_checks(chain: FakeChain, host: HostDriver) -> None:
    host.wakeup()
    assert chain.windows[-4:] == [b"\xff"] * 4
    chain.short_reply = True
    with pytest.raises(TransferError, match="returned"):
        host.read_config_a()


def test_argument_errors(host: HostDriver) -> None:
    with pytest.raises(ValueError, match="one field dict per device"):
        host.write_config_a([{"REFON": 1}])
    with pytest.raises(ValueError, match="not a read"):
        host.read("WRCFGA")
    with pytest.raises(ValueError, match="use read"):
        host.command("RDCVA")
    with pytest.raises(ValueError, match="kind"):
        host.read_cells("X")
    with pytest.raises(ValueError, match="n_devices"):
        HostDriver(lambda b: b, 0)
