"""cocotb bench of ``rtl_models/cmd_table.sv`` against ``bms_emu.protocol.opcodes.decode_opcode``.

All 2048 opcodes: an opcode hits the RTL table exactly when the model decodes it to a command
of the RTL subset (parameterised ADCV/ADSV/RDSTATC variants included); for a hit the kind,
counter rule (``increments_cc`` / ``resets_cc``) and data length must be the model's, the
read group offset must be 6 x the group letter's index (A..F; 0 for ``*ALL``), and the code
must be the number ``afe_regfile`` / ``cmd_decoder`` use for that command (the table below,
the one contract the model cannot give).
"""

from __future__ import annotations

import pytest

from bms_emu.protocol.opcodes import ACTION, POLL, READ, WRITE, decode_opcode

try:  # simulator-only imports: plain pytest collection works without cocotb
    import cocotb
    from cocotb.triggers import Timer
except ImportError:  # pragma: no cover - conftest skips the RTL tests then
    cocotb = None

KIND = {ACTION: 0, WRITE: 1, READ: 2, POLL: 3}
# RTL code numbers (cmd_table.sv A_*, W_*, P_*, G_*): commands of the subset.
ACTION_CODES = {"ADCV": 1, "ADSV": 2, "CLRCELL": 3, "CLRSPIN": 4, "CLOVUV": 5, "MUTE": 6,
                "UNMUTE": 7, "RSTCC": 8, "SNAP": 9, "UNSNAP": 10}  # fmt: skip
WRITE_CODES = {"WRCFGA": 1, "WRCFGB": 2, "CLRFLAG": 3}
POLL_CODES = {"PLADC": 1, "PLCADC": 2, "PLSADC": 3}
GROUP_CODES = {"CFGA": 1, "CFGB": 2, "CV": 3, "SV": 4, "AC": 5, "STATC": 6, "STATD": 7,
               "STATE": 8, "SID": 9}  # fmt: skip
RESULT_GROUPS = {k + g for k in ("CV", "SV", "AC") for g in (*"ABCDEF", "ALL")}


def expected(opcode: int) -> tuple[int, ...] | None:
    """(kind, code, offset, len, inc, rst) of the RTL subset for ``opcode``, or None."""
    dec = decode_opcode(opcode)
    if dec is None:
        return None
    spec, _params = dec
    offset = 0
    if spec.name in ACTION_CODES:
        code = ACTION_CODES[spec.name]
    elif spec.name in WRITE_CODES:
        code = WRITE_CODES[spec.name]
    elif spec.name in POLL_CODES:
        code = POLL_CODES[spec.name]
    elif spec.kind == READ and spec.group in GROUP_CODES:
        code = GROUP_CODES[spec.group]
    elif spec.kind == READ and spec.group in RESULT_GROUPS:
        code = GROUP_CODES[spec.group[:2]]
        letter = spec.group[2:]
        offset = 0 if letter == "ALL" else 6 * "ABCDEF".index(letter)
    else:
        return None  # a command the RTL does not implement
    return (KIND[spec.kind], code, offset, spec.data_len, int(spec.increments_cc),
            int(spec.resets_cc))  # fmt: skip


if cocotb is not None:

    @cocotb.test()
    async def all_opcodes(dut):
        """Every 11-bit opcode against the model's decode table."""
        bad = []
        n_hit = 0
        for op in range(2048):
            dut.opcode.value = op
            await Timer(1, unit="ns")
            want = expected(op)
            hit = int(dut.hit.value)
            got = None
            if hit:
                n_hit += 1
                got = tuple(int(getattr(dut, s).value)
                            for s in ("kind", "code", "offset", "len", "inc_cc", "rst_cc"))
            if got != want:
                bad.append((hex(op), got, want))
        assert not bad, f"{len(bad)} opcodes differ (opcode, RTL, model), first {bad[:5]}"
        # 43 entries: 40 plain, ADCV 2^6 parameter variants (RD CONT DCP RSTF OW1 OW0),
        # ADSV 2^4 (CONT DCP OW1 OW0), RDSTATC 2 (ERR)
        assert n_hit == 40 + 64 + 16 + 2, n_hit


def test_cmd_table_rtl(request: pytest.FixtureRequest) -> None:
    """Build rtl_models/cmd_table.sv and run the cocotb test above."""
    from rtl_bench import run_bench

    run_bench(request, block="cmd_table", test_module="test_cmd_table")
