"""SIL TCP transport: real sockets on 127.0.0.1 against the in-process server thread.

Truth: the virtual pack's cell voltages and the chip design's stated accuracy (tme_mV), the
frame format of docs/sil-protocol.md, and an in-process DaisyChain driven with the same bytes.
"""

from __future__ import annotations

import random
import socket
import struct
import time
from collections.abc import Iterator

import numpy as np
import pytest

from bms_emu.config import load_chip, load_pack
from bms_emu.emulator import build_emulator
from bms_emu.host import HostDriver
from bms_emu.paths import shipped_config
from bms_emu.protocol.frames import build_read_frame
from hil import sil_protocol as sp
from hil.server import EmulatorHost, SilServer
from hil.sil_client import SilClient, SilError
from hil.transport import TransportError, open_transport

CHIP = load_chip(shipped_config("chips/bmic_target_1mV.yaml"))
PACK = load_pack(shipped_config("packs/lfp_16s_280Ah.yaml"))


def _emulator(n: int = 4, seed: int = 1):  # type: ignore[no-untyped-def]
    return build_emulator(CHIP, PACK, n, seed=seed)


@pytest.fixture()
def lockstep_server() -> Iterator[SilServer]:
    with SilServer(EmulatorHost(_emulator(), "lockstep"), frame_timeout_s=0.5) as srv:
        yield srv


def _raw(srv: SilServer) -> socket.socket:
    s = socket.create_connection(srv.address, timeout=5.0)
    return s


def _read_frame(s: socket.socket) -> tuple[int, int, bytes]:
    buf = b""
    while len(buf) < sp.HEADER_LEN:
        chunk = s.recv(sp.HEADER_LEN - len(buf))
        assert chunk, "server closed before a reply"
        buf += chunk
    ftype, seq, n = sp.parse_header(buf)
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    return ftype, seq, body


def _assert_closed(s: socket.socket) -> None:
    s.settimeout(5.0)
    assert s.recv(1) == b""


def _cells_ok(host: HostDriver, emu) -> float:  # type: ignore[no-untyped-def]
    host.write_config_a({"REFON": 1})
    host.wait(5e-3)
    host.start_cell_conversion()
    host.wait(2e-3)
    truth = np.stack([m.pack.cell_voltage_V() for m in emu.modules])
    return float(np.abs(host.read_cells("C") - truth).max())


def test_host_driver_reads_64_cells_over_tcp_within_the_chip_accuracy() -> None:
    emu = _emulator()
    with SilServer(EmulatorHost(emu, "lockstep")) as srv, \
            open_transport(srv.url) as spi:
        assert isinstance(spi, SilClient)
        info = spi.info()
        assert (info.n_devices, info.lockstep, info.version) == (4, True, 1)
        host = HostDriver(spi.transfer, 4, delay=spi.delay)
        worst = _cells_ok(host, emu)
        assert worst < CHIP.accuracy.tme_mV * 1e-3
        assert host.expected_counters == [d.command_counter for d in emu.chain.devices] == [2] * 4


def test_lockstep_replays_byte_for_byte_and_time_moves_only_on_request() -> None:
    frames = [build_read_frame(op, 4, 6) for op in (0x004, 0x006, 0x030, 0x032)]

    def session() -> list[bytes]:
        with SilServer(EmulatorHost(_emulator(), "lockstep")) as srv, \
                SilClient(*srv.address) as c:
            host = HostDriver(c.transfer, 4, delay=c.delay)
            host.write_config_a({"REFON": 1})
            t0 = c.info(refresh=True).t_s
            time.sleep(0.05)
            assert c.info(refresh=True).t_s == t0  # the wall clock does not move it
            c.advance_us(5000)
            assert c.info(refresh=True).t_s == pytest.approx(t0 + 5e-3, abs=1e-9)
            host.start_cell_conversion(cont=True, rd=True)
            out = []
            for _ in range(3):
                c.advance_us(9000)
                out += [c.transfer(f) for f in frames]
            return out

    # And the same bytes in process, with no socket: the transport adds nothing.
    emu = _emulator()
    host = HostDriver(emu.chain.transfer, 4, delay=emu.chain.delay)
    host.write_config_a({"REFON": 1})
    emu.chain.delay(5e-3)
    host.start_cell_conversion(cont=True, rd=True)
    direct = []
    for _ in range(3):
        emu.chain.delay(9e-3)
        direct += [emu.chain.transfer(f) for f in frames]
    assert session() == session() == direct


def test_wakeup_request_brings_a_sleeping_chain_back(lockstep_server: SilServer) -> None:
    with SilClient(*lockstep_server.address) as c:
        host = HostDriver(c.transfer, 4, delay=c.delay)
        host.soft_reset()  # SRST: every device resets and sleeps
        rd = build_read_frame(0x002, 4, 6)
        assert c.transfer(rd) == b"\xff" * 36  # the first window only starts the wake-up
        c.advance_us(100_000)
        host.soft_reset()
        c.wakeup()
        host.assume_counters_reset()
        assert [cfg["REFON"] for cfg in host.read_config_a()] == [0] * 4


def test_wall_pace_follows_the_clock_and_refuses_advance() -> None:
    with SilServer(EmulatorHost(_emulator(1), "wall")) as srv, SilClient(*srv.address) as c:
        t0 = c.info(refresh=True).t_s
        time.sleep(0.2)
        dt = c.info(refresh=True).t_s - t0
        assert 0.15 < dt < 2.0
        with pytest.raises(SilError) as exc:
            c.advance_us(1000)
        assert exc.value.code == sp.E_MODE
        assert len(c.transfer(b"\xff" * 12)) == 12  # connection kept after a non-fatal error
        host = HostDriver(c.transfer, 1, delay=c.delay)  # delay sleeps in wall pace
        host.write_config_a({"REFON": 1})
        host.wait(5e-3)
        host.start_cell_conversion()
        host.wait(3e-3)
        assert not np.isnan(host.read_cells("C")).any()


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (b"XX" + bytes([1, 1]) + struct.pack(">II", 1, 4), sp.E_BAD_MAGIC),
        (b"BE" + bytes([7, 1]) + struct.pack(">II", 1, 4), sp.E_BAD_VERSION),
        (b"BE" + bytes([1, 1]) + struct.pack(">II", 1, sp.MAX_PAYLOAD + 1), sp.E_TOO_LARGE),
    ],
    ids=["bad-magic", "bad-version", "oversized"],
)
def test_unframeable_input_gets_an_error_frame_then_the_connection_is_closed(
    lockstep_server: SilServer, header: bytes, code: int
) -> None:
    with _raw(lockstep_server) as s:
        s.sendall(header)
        ftype, _seq, body = _read_frame(s)
        assert ftype == sp.ERROR
        assert sp.decode_error(body)[0] == code
        _assert_closed(s)
    with SilClient(*lockstep_server.address) as c:  # the server lives on
        assert c.info().n_devices == 4


@pytest.mark.parametrize(
    ("ftype", "payload", "code"),
    [
        (0x55, b"", sp.E_UNKNOWN_TYPE),
        (sp.TRANSFER, b"", sp.E_BAD_PAYLOAD),
        (sp.ADVANCE_TIME, b"\x00" * 3, sp.E_BAD_PAYLOAD),
        (sp.ADVANCE_TIME, struct.pack(">Q", sp.MAX_ADVANCE_US + 1), sp.E_BAD_PAYLOAD),
        (sp.INFO, b"x", sp.E_BAD_PAYLOAD),
        (sp.WAKEUP, b"x", sp.E_BAD_PAYLOAD),
    ],
    ids=["unknown-type", "empty-transfer", "short-advance", "huge-advance", "info-payload",
         "wakeup-payload"],
)
def test_well_framed_bad_requests_get_an_error_and_keep_the_connection(
    lockstep_server: SilServer, ftype: int, payload: bytes, code: int
) -> None:
    with _raw(lockstep_server) as s:
        s.sendall(sp.encode_frame(ftype, 41, payload))
        rtype, seq, body = _read_frame(s)
        assert (rtype, seq, sp.decode_error(body)[0]) == (sp.ERROR, 41, code)
        s.sendall(sp.encode_frame(sp.TRANSFER, 42, b"\xff\xff"))
        assert _read_frame(s) == (sp.TRANSFER | sp.REPLY, 42, b"\xff\xff")


def test_incomplete_frame_hits_the_deadline(lockstep_server: SilServer) -> None:
    with _raw(lockstep_server) as s:
        t0 = time.monotonic()
        s.sendall(sp.encode_frame(sp.TRANSFER, 1, b"\x00" * 8)[:15])
        ftype, _, body = _read_frame(s)
        assert (ftype, sp.decode_error(body)[0]) == (sp.ERROR, sp.E_TIMEOUT)
        assert 0.4 < time.monotonic() - t0 < 5.0
        _assert_closed(s)


def test_random_garbage_never_takes_the_server_down(lockstep_server: SilServer) -> None:
    rng = random.Random(8)
    for i in range(24):
        with _raw(lockstep_server) as s:
            blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            if i % 2:  # valid header, random type and payload
                blob = sp.encode_frame(rng.randrange(256), i, blob[: rng.randrange(64)])
            s.sendall(blob)
    with SilClient(*lockstep_server.address) as c:
        assert len(c.transfer(build_read_frame(0x004, 4, 6))) == 36
        assert c.info().n_devices == 4


def test_disconnect_mid_frame_then_reconnect_keeps_the_chain_state(
    lockstep_server: SilServer,
) -> None:
    with SilClient(*lockstep_server.address) as c:
        host = HostDriver(c.transfer, 4, delay=c.delay)
        host.write_config_a({"REFON": 1, "CTH": 3})
    with _raw(lockstep_server) as s:
        s.sendall(sp.encode_frame(sp.TRANSFER, 1, b"\x00" * 36)[:20])  # then vanish
    with SilClient(*lockstep_server.address) as c:
        host = HostDriver(c.transfer, 4, delay=c.delay)
        host.expected_counters = [1] * 4  # the first session's WRCFGA counted
        assert [cfg["CTH"] for cfg in host.read_config_a()] == [3] * 4


def test_clients_are_served_interleaved_and_extra_clients_are_refused() -> None:
    host = EmulatorHost(_emulator(), "lockstep")
    with SilServer(host, max_clients=2) as srv, SilClient(*srv.address) as a, \
            SilClient(*srv.address) as b:
        rd = build_read_frame(0x002, 4, 6)
        for _ in range(20):
            assert len(a.transfer(rd)) == len(b.transfer(rd)) == 36
        with _raw(srv) as extra:
            ftype, _, body = _read_frame(extra)
            assert (ftype, sp.decode_error(body)[0]) == (sp.ERROR, sp.E_BUSY)
            _assert_closed(extra)
        assert len(a.transfer(rd)) == 36


def test_client_deadline_when_the_server_never_answers() -> None:
    with socket.create_server(("127.0.0.1", 0)) as mute:
        port = mute.getsockname()[1]
        with SilClient("127.0.0.1", port, timeout_s=0.3) as c:
            peer, _ = mute.accept()
            with peer:
                t0 = time.monotonic()
                with pytest.raises(TransportError, match="within"):
                    c.transfer(b"\xff")
                assert time.monotonic() - t0 < 3.0
    with pytest.raises(TransportError, match="cannot connect"):
        SilClient("127.0.0.1", port, timeout_s=1.0)  # nobody listens there any more


def test_serve_subprocess_prints_its_port_and_stops_on_ctrl_c(
    serve_process,  # type: ignore[no-untyped-def]
) -> None:
    """SIGINT here; the C client tests stop their servers with SIGTERM and check status 0."""
    import signal

    p = serve_process(["--chain", "2", "--pace", "lockstep"])
    assert "pace=lockstep devices=2" in p.line
    with SilClient("127.0.0.1", p.port) as c:
        assert c.info().n_devices == 2
        t0 = time.monotonic()
        assert p.stop(signal.SIGINT) == 0
        assert time.monotonic() - t0 < 5.0
        with pytest.raises(TransportError):
            c.transfer(b"\xff")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--spi", "udp://127.0.0.1:1"], "--spi must look like tcp://"),
        (["--spi", "none", "--serial", "/dev/no-such-bridge"], "could not open port"),
        (["--chain", "0"], "--chain must be >= 1"),
    ],
    ids=["bad-url", "no-serial-device", "empty-chain"],
)
def test_serve_reports_bad_endpoints_without_a_traceback(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bms_emu.cli.main import main

    assert main(["serve", "--pace", "lockstep", *args]) == 2
    assert message in capsys.readouterr().err
