"""Seeds: same seed, byte-identical state; different seed, different spread."""

from __future__ import annotations

import numpy as np
from pack_testlib import make_config

from bms_emu.pack import VirtualPack

SPREAD = {
    "capacity_rel_sigma": 0.02,
    "r0_rel_sigma": 0.05,
    "initial_soc_sigma": 0.02,
    "self_discharge_rel_sigma": 0.3,
}


def _run(pack: VirtualPack) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    r = np.full(16, np.inf)
    r[7] = 30.0
    pack.set_balance_resistance(r)
    for i in rng.uniform(-100, 100, 200):
        pack.step(1.0, float(i))
    return pack.snapshot()


def test_same_seed_gives_byte_identical_snapshot() -> None:
    cfg = make_config(spread=SPREAD, cell={"warburg": {"r_mOhm": 0.2, "tau_s": 17.0}})
    a = _run(VirtualPack(cfg, seed=9))
    b = _run(VirtualPack(cfg, seed=9))
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].tobytes() == b[key].tobytes(), key


def test_different_seed_gives_different_spread() -> None:
    cfg = make_config(spread=SPREAD, cell={"self_discharge_pct_per_month": 2.0})
    p1, p2 = VirtualPack(cfg, seed=1), VirtualPack(cfg, seed=2)
    for key in ("capacity_Ah", "r0_Ohm", "self_discharge_A"):
        assert not np.array_equal(p1.cell_parameters()[key], p2.cell_parameters()[key]), key
    assert not np.array_equal(p1.soc(), p2.soc())


def test_seed_none_uses_config_seed() -> None:
    cfg = make_config(spread=SPREAD, seed=17)
    np.testing.assert_array_equal(VirtualPack(cfg).soc(), VirtualPack(cfg, seed=17).soc())


def test_spread_has_the_configured_size() -> None:
    """Relative sigmas 2 % / 5 % show in the cells (loose bounds for 16 samples)."""
    cfg = make_config(spread=SPREAD, n_cells=20)
    p = VirtualPack(cfg, seed=4).cell_parameters()
    cap_rel = p["capacity_Ah"] / 100.0 - 1
    r0_rel = p["r0_Ohm"] / 0.5e-3 - 1
    assert 0.008 < np.std(cap_rel) < 0.04
    assert 0.02 < np.std(r0_rel) < 0.1


def test_initial_soc_is_clipped_to_unit_interval() -> None:
    cfg = make_config(cell={"initial_soc": 0.99}, spread={"initial_soc_sigma": 0.2})
    soc = VirtualPack(cfg, seed=1).soc()
    assert np.all((soc >= 0.0) & (soc <= 1.0))
    assert np.any(soc == 1.0)
