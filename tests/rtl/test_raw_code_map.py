"""cocotb bench of ``rtl_models/raw_code_map.sv`` against
``bms_emu.afe.adc_params.raw_code_from_sinc3``, for R = 1024 (C-ADC) and R = 8192 (S-ADC).

Vectors: the ends and the middle of the code range (0, 1, R**3/2 +- 1, R**3 - 1, R**3), every
D within +-64 of exact round-half-up ties (raw value k + 1/2), and random D over
[0, R**3]. Every RTL result must equal the model's bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from bms_emu.afe.adc_params import R_CADC, R_SADC, raw_code_from_sinc3

try:  # simulator-only imports: plain pytest collection works without cocotb
    import cocotb
    from cocotb.triggers import Timer
except ImportError:  # pragma: no cover - conftest skips the RTL tests then
    cocotb = None


if cocotb is not None:

    @cocotb.test()
    async def raw_map_vs_model(dut):
        """Corner, near-tie and random sinc3 codes."""
        from rtl_bench import assert_same

        R = int(cocotb.plusargs["R"])
        r3 = R**3
        rng = np.random.default_rng(R)
        corners = [0, 1, r3 // 2 - 1, r3 // 2, r3 // 2 + 1, r3 - 1, r3]
        # exact ties (raw value k + 1/2): 2 * 960000 = 1875 * 2**10, so they recur every
        # r3 / 2**10 codes at an odd multiple of r3 / 2**11 from the middle
        step = r3 >> 10
        ties = [r3 // 2 + step // 2 + int(j) * step for j in rng.integers(-400, 400, 20)]
        near = [t + o for t in ties for o in range(-64, 65)]
        d = np.array(corners + near + rng.integers(0, r3 + 1, 1000).tolist(), dtype=np.int64)
        d = np.clip(d, 0, r3)
        got = []
        for v in d.tolist():
            dut.d.value = v
            await Timer(1, unit="ns")
            got.append(dut.raw.value.to_signed())
        assert_same(got, raw_code_from_sinc3(d, R).tolist(), f"raw_code_map R={R}")


@pytest.mark.parametrize("R", [R_CADC, R_SADC])
def test_raw_code_map_rtl(request: pytest.FixtureRequest, R: int) -> None:
    """Build rtl_models/raw_code_map.sv for this R and run the cocotb test above."""
    from rtl_bench import run_bench

    run_bench(request, block="raw_code_map", test_module="test_raw_code_map",
              parameters={"R": R})
