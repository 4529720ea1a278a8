"""HIL transports: SIL TCP round trip and rate, serial-bridge shadow-update latency.

* TCP: ``bms-emu serve`` as a real subprocess (lock-step, 4-device chain) on loopback; the
  Python client sends RDCVA windows (36 bytes) back to back. Round trip = send to complete
  reply. Targets: median <= 200 us, >= 5000 transactions/s.
* Bridge: the reference bridge MCU and the PC side over a real pty (pyserial), wall pace; the
  bridge and the dev board run in a child process (a real bridge is its own MCU), the PC in
  this one. Cases: single-shot ADCV on 4 devices (the strict one), ADSV (8 ms) on 4 devices,
  single-shot ADCV on 1 device.
  The PC computes each conversion when its command arrives and tags the update with the
  completion time (``docs/bridge-protocol.md``, AT). End-to-end latency = the instant a read
  at the bridge could first return the new RDCVA image (the update's arrival, or the
  completion if it arrived before) minus the completion as the board sees it (its ADCV
  window + one C conversion), target <= 2 ms. Link latency = arrival minus the instant the PC
  had the result; compute = that instant minus the PC applying the command window (wall
  time), and the CPU time the PC's thread spent computing the result.

Run: ``python -m benchmarks.bench_hil [--bridge-only]`` (prints JSON; see BENCHMARKS.md).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tty
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from benchmarks.machine import emit
from bms_emu.config import load_chip, load_pack
from bms_emu.device.timing import DEFAULT_TIMING
from bms_emu.emulator import build_emulator
from bms_emu.host import HostDriver
from bms_emu.paths import shipped_config
from bms_emu.profile import CurrentProfile
from bms_emu.protocol.frames import build_read_frame
from hil.bridge_pc import BridgePC
from hil.bridge_ref import BridgeRef
from hil.server import EmulatorHost, warm_up
from hil.sil_client import SilClient

N_DEVICES = 4
RDCVA = 0x004
RDSVA = 0x003
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


#: Bridge scenarios: (key prefix, devices, command, read opcode it updates, conversion time).
BRIDGE_CASES = (
    ("bridge", N_DEVICES, "ADCV", RDCVA, DEFAULT_TIMING.c_conv_s),  # single-shot C: the strict one
    ("bridge_adsv", N_DEVICES, "ADSV", RDSVA, DEFAULT_TIMING.s_conv_s),  # S conversion (8 ms)
    ("bridge_1dev", 1, "ADCV", RDCVA, DEFAULT_TIMING.c_conv_s),  # compute scales with devices
)


def _board_and_bridge(master_fd: int, n_devices: int, command: str, opcode: int,
                      t_conv_s: float, n_conversions: int, conn: Connection) -> None:
    """Child process: the bridge MCU and the dev board driving it (a real bridge is its own
    MCU, so it does not share the PC's interpreter). Sends back one row per conversion:
    (completion as the board sees it, arrival of the update at the bridge, its lateness vs
    the PC's tag), all on the shared monotonic clock."""
    bridge = BridgeRef(master_fd).start()
    try:
        deadline = time.monotonic() + 60.0
        while not (bridge.shadow and len(bridge.cc) == n_devices):
            if time.monotonic() > deadline:
                raise RuntimeError("bridge link did not come up")
            time.sleep(0.01)
        board = HostDriver(bridge.spi_window, n_devices, delay=time.sleep)
        board.write_config_a({"REFON": 1})
        time.sleep(0.02)
        rows = []
        for _ in range(n_conversions):
            time.sleep(0.002)
            before = bridge.shadow_stamps.get(opcode)
            t_cmd = time.monotonic()  # the bridge stamps the window a little later: never late
            board.command(command)
            deadline = time.monotonic() + 2.0
            while bridge.shadow_stamps.get(opcode) is before:
                if time.monotonic() > deadline:
                    raise RuntimeError("no shadow update within 2 s")
                time.sleep(0.0005)  # the bridge stamps the arrival itself
            stamp = bridge.shadow_stamps[opcode]
            rows.append((t_cmd + t_conv_s, stamp.arrived_s, stamp.late_s))
            board.read_cells("C" if command == "ADCV" else "S")  # as a driver would
        conn.send(rows)
    except Exception as exc:  # reported by the parent
        conn.send(f"{type(exc).__name__}: {exc}")
    finally:
        bridge.shutdown()


def bench_bridge(prefix: str = "bridge", n_devices: int = N_DEVICES, command: str = "ADCV",
                 opcode: int = RDCVA, t_conv_s: float = DEFAULT_TIMING.c_conv_s,
                 n_conversions: int = 200, lookahead_s: float = 0.01) -> dict[str, float]:
    """Single-shot conversions through the reference bridge over a pty, wall pace.

    The board's view: the conversion completes ``t_conv_s`` after its command window (taken
    when the board starts the window, on the bridge's clock, so it is never late), and a read
    returns the new data from ``max(update arrives at the bridge, completion)``: the bridge
    holds an update tagged with a later completion time (AT) until then. The pack current is
    a +-100 A triangle (1 s period), so every result differs from the one before.
    """
    chip = load_chip(shipped_config("chips/bmic_target_1mV.yaml"))
    profile = CurrentProfile([0.0, 0.5, 1.0], [-100.0, 100.0, -100.0], "linear", repeat=True)
    emu = build_emulator(chip, load_pack(shipped_config("packs/lfp_16s_280Ah.yaml")), n_devices,
                         seed=1, profile=profile)
    # command bytes on the wire (2 MHz SPI) + the conversion: the completion after CS low
    t_conv_s = emu.chain.window_duration_s(4) + t_conv_s
    master, slave = os.openpty()
    tty.setraw(slave)
    recv, send = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=_board_and_bridge,
        args=(master, n_devices, command, opcode, t_conv_s, n_conversions, send), daemon=True)
    child.start()  # before the PC's threads exist: fork copies only this one
    warm_up(emu)
    host = EmulatorHost(emu, "wall")
    pc = BridgePC.open(host, os.ttyname(slave), lookahead_s=lookahead_s).start()
    # the PC's "result ready" instants, its forward before each, the compute's CPU time
    ready: list[float] = []
    forward: list[float] = []
    cpu: list[float] = []
    try:
        deadline = time.monotonic() + 600.0
        while not recv.poll(0.002):
            if time.monotonic() > deadline or not child.is_alive():
                raise RuntimeError("the board process stopped without a result")
            t = pc.changed_wall_s.get(opcode)
            if t is not None and (not ready or t != ready[-1]):
                ready.append(t)
                forward.append(pc.forward_wall_s)
                cpu.append(pc.ahead_cpu_s)
        rows = recv.recv()
        if isinstance(rows, str):
            raise RuntimeError(f"board process: {rows}")
    finally:
        pc.shutdown()
        child.join(10.0)
        for fd in (master, slave):
            os.close(fd)
    done, arrived = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    early = sum(1 for r in rows if r[2] is not None and r[2] < 0)
    t_ready = np.array(ready)
    idx = np.searchsorted(t_ready, arrived, side="right") - 1  # the PC's latest result before
    link = arrived[idx >= 0] - t_ready[idx[idx >= 0]]
    compute = t_ready - np.array(forward)
    a = arrived - done
    e2e = np.maximum(a, 0.0)  # an update that arrives early shows at the completion itself
    return {f"{prefix}_{k}": v for k, v in {
        "lookahead_ms": lookahead_s * 1e3,
        "link_latency_median_ms": float(np.median(link) * 1e3),
        "link_latency_p95_ms": float(np.percentile(link, 95) * 1e3),
        "end_to_end_latency_median_ms": float(np.median(e2e) * 1e3),
        "end_to_end_latency_p95_ms": float(np.percentile(e2e, 95) * 1e3),
        "end_to_end_latency_max_ms": float(e2e.max() * 1e3),
        "arrival_minus_completion_median_ms": float(np.median(a) * 1e3),
        "updates_held_until_completion": float(early),
        "emulator_compute_median_ms": float(np.median(compute) * 1e3),
        "emulator_compute_p95_ms": float(np.percentile(compute, 95) * 1e3),
        "emulator_compute_cpu_median_ms": float(np.median(cpu) * 1e3),
        "conversions": float(len(a)),
        "devices": float(n_devices),
    }.items()}


def bench_bridges() -> dict[str, float]:
    out: dict[str, float] = {}
    for prefix, n_dev, command, opcode, t_conv_s in BRIDGE_CASES:
        out.update(bench_bridge(prefix, n_dev, command, opcode, t_conv_s))
    return {**out, "bridge_latency_target_ms": 2.0, "load_average_1min": os.getloadavg()[0]}


def main() -> None:
    if "--bridge-only" in sys.argv[1:]:
        emit("hil", bench_bridges())
        return
    emit("hil", {**bench_tcp(), **bench_bridges()})


if __name__ == "__main__":
    main()
