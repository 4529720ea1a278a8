"""The C client, compiled with the system compiler, against ``bms-emu serve`` as a subprocess.

Truth: the virtual pack's cell voltages (the same deterministic build in process), the chip
design's stated accuracy (tme_mV), the Python HostDriver reading the same registers, and the
error codes documented in bms_emu_spi.h.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import C_DIR

from bms_emu.config import load_chip, load_pack
from bms_emu.emulator import build_emulator
from bms_emu.host import HostDriver
from bms_emu.paths import shipped_config
from hil.sil_client import SilClient

CC = shutil.which("cc") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None, reason="no system C compiler")
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _compile(out: Path, *sources: Path) -> Path:
    r = subprocess.run([CC, *CFLAGS, f"-I{C_DIR}", "-o", str(out), *map(str, sources)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and not r.stderr, r.stderr  # warning-free under -Werror
    return out


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("c_example")
    return _compile(d / "example_read_cells", C_DIR / "example_read_cells.c",
                    C_DIR / "bms_emu_spi.c")


def _parse(stdout: str, n: int) -> np.ndarray:
    v = np.full((n, 16), np.nan)
    for line in stdout.splitlines():
        if line.startswith("cell "):
            _, dev, ch, volts = line.split()
            v[int(dev), int(ch) - 1] = float(volts)
    return v


def test_c_example_reads_every_cell_with_pec_and_counter_checked(
    example: Path, serve_process  # type: ignore[no-untyped-def]
) -> None:
    n, seed = 4, 1
    srv = serve_process(["--chain", str(n), "--seed", str(seed), "--pace", "lockstep"])
    r = subprocess.run([str(example), "127.0.0.1", str(srv.port)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "devices 4 pace lockstep" in r.stdout
    assert "counter 2 ok" in r.stdout  # RSTCC, then WRCFGA + ADCV counted by every device
    measured = _parse(r.stdout, n)
    assert not np.isnan(measured).any()

    chip = load_chip(shipped_config("chips/bmic_target_1mV.yaml"))
    emu = build_emulator(chip, load_pack(shipped_config("packs/lfp_16s_280Ah.yaml")), n,
                         seed=seed)
    truth = np.stack([m.pack.cell_voltage_V() for m in emu.modules])  # 0 A: the pack rests
    assert np.abs(measured - truth).max() < chip.accuracy.tme_mV * 1e-3

    # The Python driver reads the very registers the C program printed.
    with SilClient("127.0.0.1", srv.port) as c:
        host = HostDriver(c.transfer, n, delay=c.delay)
        host.expected_counters = [2] * n
        codes = np.rint((measured - 1.5) / 150e-6)  # the C program printed 1.5 V + code * LSB
        np.testing.assert_array_equal(host.read_cell_codes("C"), codes)
    assert srv.stop() == 0


ERRORS_C = r"""
#include <stdio.h>
#include "bms_emu_spi.h"
int main(int argc, char **argv) {
    uint8_t tx[4] = {0xFF, 0xFF, 0xFF, 0xFF}, rx[4];
    const char *msg = 0;
    int closed_port = atoi_port(argv[2]);
    (void)argc;
    printf("connect_refused %d\n", bms_emu_spi_open("127.0.0.1", (uint16_t)closed_port));
    int h = bms_emu_spi_open("127.0.0.1", (uint16_t)atoi_port(argv[1]));
    printf("open %d\n", h >= 0);
    printf("zero_length %d\n", bms_emu_spi_transfer(h, tx, rx, 0));
    printf("bad_handle %d\n", bms_emu_spi_transfer(99, tx, rx, 4));
    printf("transfer %d\n", bms_emu_spi_transfer(h, tx, rx, 4));
    printf("advance_in_wall %d\n", bms_emu_spi_advance_us(h, 1000));
    int code = bms_emu_spi_last_error(h, &msg);
    printf("last_error %d %s\n", code, msg);
    printf("wakeup %d\n", bms_emu_spi_wakeup(h));
    bms_emu_spi_close(h);
    printf("after_close %d\n", bms_emu_spi_transfer(h, tx, rx, 4));
    return 0;
}
"""


def test_c_client_error_codes(tmp_path: Path, serve_process) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "errors.c"
    src.write_text("#include <stdlib.h>\nstatic int atoi_port(const char *s) { return atoi(s); }\n"
                   + ERRORS_C)
    exe = _compile(tmp_path / "errors", src, C_DIR / "bms_emu_spi.c")
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed_port = probe.getsockname()[1]  # bound then released: nobody listens
    srv = serve_process(["--pace", "wall"])
    r = subprocess.run([str(exe), str(srv.port), str(closed_port)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert got["connect_refused"] == "-2"
    assert got["open"] == "1"
    assert got["zero_length"] == got["bad_handle"] == got["after_close"] == "-1"
    assert got["transfer"] == got["wakeup"] == "0"
    assert got["advance_in_wall"] == "-7"
    assert got["last_error"].startswith("9 ADVANCE_TIME needs --pace lockstep")
    assert srv.stop() == 0
