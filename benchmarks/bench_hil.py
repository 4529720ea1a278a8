"""HIL transports: SIL TCP round trip and rate, serial-bridge shadow-update latency.

* TCP: ``bms-emu serve`` as a real subprocess (lock-step, 4-device chain) on loopback; the
  Python client sends RDCVA windows (36 bytes) back to back. Round trip = send to complete
  reply. Targets: median <= 200 us, >= 5000 transactions/s.
* Bridge: the reference bridge MCU and the PC side over a real pty (pyserial), 4 devices, wall
  pace, all in this process (three threads share the GIL; a real bridge is its own MCU).
  Link latency = the bridge storing the new RDCVA image minus the instant the PC had the
  conversion result (emulator compute done), target <= 2 ms. End-to-end latency = the same
  minus the wall-clock instant the conversion completed in emulated time: it adds the
  emulator's own compute time for the conversion (reported separately).

Run: ``python -m benchmarks.bench_hil`` (prints JSON; see BENCHMARKS.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import tty
from pathlib import Path

import numpy as np

from benchmarks.machine import emit
from bms_emu.config import load_chip, load_pack
from bms_emu.emulator import build_emulator
from bms_emu.host import HostDriver
from bms_emu.paths import shipped_config
from bms_emu.protocol.frames import build_read_frame
from hil.bridge_pc import BridgePC
from hil.bridge_ref import BridgeRef
from hil.server import EmulatorHost, warm_up
from hil.sil_client import SilClient

N_DEVICES = 4
RDCVA = 0x004
C_DIR = Path(__file__).resolve().parent.parent / "hil" / "clients" / "c"

# The same RDCVA window through the C client: what a host-built driver sees.
C_BENCH = r"""
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bms_emu_spi.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
                          return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
int main(int argc, char **argv) {
    int n = atoi(argv[2]), len = 4 + 8 * atoi(argv[3]);
    uint8_t tx[4 + 8 * 64], rx[sizeof tx];
    double *rtt = malloc(sizeof(double) * (size_t)n);
    int h = bms_emu_spi_open("127.0.0.1", (uint16_t)atoi(argv[1]));
    if (h < 0 || !rtt || len > (int)sizeof tx) return 1;
    memset(tx, 0xFF, sizeof tx);
    tx[0] = 0x00; tx[1] = 0x04; tx[2] = 0x07; tx[3] = 0xC2; /* RDCVA + PEC15 */
    for (int i = 0; i < 500; i++) bms_emu_spi_transfer(h, tx, rx, (size_t)len);
    double t0 = now();
    for (int i = 0; i < n; i++) {
        double t = now();
        if (bms_emu_spi_transfer(h, tx, rx, (size_t)len)) return 1;
        rtt[i] = now() - t;
    }
    double elapsed = now() - t0;
    qsort(rtt, (size_t)n, sizeof *rtt, cmp);
    printf("%.3f %.3f %.1f\n", rtt[n / 2] * 1e6, rtt[n * 99 / 100] * 1e6, n / elapsed);
    bms_emu_spi_close(h);
    free(rtt);
    return 0;
}
"""


def bench_tcp(n_windows: int = 20000) -> dict[str, float]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bms_emu.cli.main", "serve", "--spi", "tcp://127.0.0.1:0",
         "--chain", str(N_DEVICES), "--pace", "lockstep"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the server prints its port first
        port = int(line.split()[2].rsplit(":", 1)[1])
        frame = build_read_frame(RDCVA, N_DEVICES, 6)
        with SilClient("127.0.0.1", port) as c:
            for _ in range(500):  # warm caches on both sides
                c.transfer(frame)
            rtt = np.empty(n_windows)
            t_start = time.perf_counter()
            for i in range(n_windows):
                t0 = time.perf_counter()
                c.transfer(frame)
                rtt[i] = time.perf_counter() - t0
            elapsed = time.perf_counter() - t_start
        c_figures = _bench_c_client(port, n_windows)
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stdout is not None:
            proc.stdout.close()
    return {
        "tcp_rdcva_rtt_median_us": float(np.median(rtt) * 1e6),
        "tcp_rdcva_rtt_p99_us": float(np.percentile(rtt, 99) * 1e6),
        "tcp_transactions_per_s": n_windows / elapsed,
        **c_figures,
        "tcp_rtt_target_us": 200.0,
        "tcp_rate_target_per_s": 5000.0,
    }


def _bench_c_client(port: int, n_windows: int) -> dict[str, float]:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "bench_rtt.c"
        src.write_text(C_BENCH)
        exe = Path(tmp) / "bench_rtt"
        subprocess.run([cc, "-std=c99", "-O2", f"-I{C_DIR}", "-o", str(exe), str(src),
                        str(C_DIR / "bms_emu_spi.c")], check=True, timeout=120)
        out = subprocess.run([str(exe), str(port), str(n_windows), str(N_DEVICES)],
                             capture_output=True, text=True, check=True, timeout=300).stdout
    median_us, p99_us, rate = map(float, out.split())
    return {"tcp_c_client_rdcva_rtt_median_us": median_us, "tcp_c_client_rdcva_rtt_p99_us": p99_us,
            "tcp_c_client_transactions_per_s": rate}


def bench_bridge(n_conversions: int = 200) -> dict[str, float]:
    chip = load_chip(shipped_config("chips/bmic_target_1mV.yaml"))
    emu = build_emulator(chip, load_pack(shipped_config("packs/lfp_16s_280Ah.yaml")), N_DEVICES,
                         seed=1)
    warm_up(emu)
    host = EmulatorHost(emu, "wall")
    master, slave = os.openpty()
    tty.setraw(slave)
    bridge = BridgeRef(master).start()
    pc = BridgePC.open(host, os.ttyname(slave)).start()
    lat, link = [], []
    try:
        if not pc.synced.wait(5.0):
            raise RuntimeError("bridge link did not come up")
        board = HostDriver(bridge.spi_window, N_DEVICES, delay=time.sleep)
        board.write_config_a({"REFON": 1})
        time.sleep(0.02)
        for _ in range(n_conversions):
            before = bridge.shadow_changed_s.get(RDCVA, 0.0)
            board.start_cell_conversion()
            deadline = time.monotonic() + 2.0
            while bridge.shadow_changed_s.get(RDCVA, 0.0) <= before:
                if time.monotonic() > deadline:
                    raise RuntimeError("no shadow update within 2 s")
                time.sleep(0.0002)
            lat.append(bridge.shadow_changed_s[RDCVA] - host.wall_of(pc.changed_at_emu_s[RDCVA]))
            link.append(bridge.shadow_changed_s[RDCVA] - pc.changed_wall_s[RDCVA])
            board.read_cells("C")  # the dev board reads, as a driver would
            time.sleep(0.003)
    finally:
        pc.shutdown()
        bridge.shutdown()
        os.close(master)
        os.close(slave)
    a, b = np.array(lat), np.array(link)
    return {
        "bridge_link_latency_median_ms": float(np.median(b) * 1e3),
        "bridge_link_latency_p95_ms": float(np.percentile(b, 95) * 1e3),
        "bridge_link_latency_max_ms": float(b.max() * 1e3),
        "bridge_end_to_end_latency_median_ms": float(np.median(a) * 1e3),
        "bridge_end_to_end_latency_p95_ms": float(np.percentile(a, 95) * 1e3),
        "emulator_compute_median_ms": float(np.median(a - b) * 1e3),
        "bridge_conversions": float(len(a)),
        "bridge_latency_target_ms": 2.0,
    }


def main() -> None:
    emit("hil", {**bench_tcp(), **bench_bridge()})


if __name__ == "__main__":
    main()
