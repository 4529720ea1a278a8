"""``bms-emu sweep CONFIG``: Monte Carlo accuracy sweep with reports, history and resume."""

from __future__ import annotations

import argparse
import sys


def add_subparser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "sweep", help="population x conditions accuracy sweep (TME, fallout ppm, reports)",
        description="Run or resume a sweep. Exit codes: 0 ok, 1 a requirement not as expected, "
        "3 a metric regressed against the history, 130 interrupted (checkpoint kept: rerun "
        "the same command to resume), 2 bad config or missing dependency.")
    p.add_argument("config", metavar="CONFIG", help="sweep YAML (kind: sweep)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, metavar="N", help="local Dask cluster of N processes")
    g.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="use a running Dask cluster")
    p.add_argument("--out", default="bms-emu-sweep", metavar="DIR", help="output directory")
    p.add_argument("--history", metavar="FILE.sqlite",
                   help="history store: compare with the last runs, then record this one")
    p.add_argument("--chunk-devices", type=int, metavar="N",
                   help="devices per chunk (never changes results)")
    p.add_argument("--keep-checkpoint", action="store_true", help="keep chunk files at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--rtl-campaign", metavar="campaign.json",
                   help="include the RTL fault-injection campaign (python -m "
                        "tests.rtl.fault_campaign --out campaign.json) in the report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bms_emu.sweep.execute import run_sweep

    if args.workers is not None or args.scheduler is not None:
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            print("bms-emu sweep: --workers/--scheduler need dask: "
                  "pip install 'bms-emu[cluster]'", file=sys.stderr)
            return 2
    try:
        res = run_sweep(args.config, args.out, workers=args.workers, scheduler=args.scheduler,
                        chunk_devices=args.chunk_devices, history_path=args.history,
                        keep_checkpoint=args.keep_checkpoint, progress=not args.no_progress,
                        rtl_campaign_path=args.rtl_campaign)
    except KeyboardInterrupt:
        print(f"bms-emu sweep: interrupted; finished chunks are checkpointed under "
              f"{args.out}/checkpoint: rerun the same command to resume", file=sys.stderr)
        return 130
    s = res.summary
    for q in [*s["requirements"], *(s.get("budget") or {}).get("requirements", [])]:
        mark = "ok" if q["ok"] else "NOT OK"
        print(f"[{mark}] {q['name']}: {q['verdict']} (expected {q['expect']}): "
              f"{q.get('message', '')}")
    rc = s.get("rtl_campaign")
    if rc:
        lfm = "-" if rc["lfm"] is None else f"{rc['lfm']:.2%}"
        spfm = "-" if rc["spfm"] is None else f"{rc['spfm']:.2%}"
        print(f"RTL fault campaign {rc['design']['name']}: SPFM {spfm}, LFM {lfm}, residual "
              f"{rc['residual_fit']:.3g} FIT ({rc['residual_ppm_mission']:.3g} ppm / mission)")
    if res.regressions:
        for r in res.regressions:
            print(f"[REGRESSION] {r['metric']}: {r['value']:.6g} vs median of last "
                  f"{r['n_previous']} runs {r['baseline']:.6g} (margin {r['margin']:.3g})")
    print(f"wrote {res.out_dir}/summary.json, report.html, junit.xml in {res.wall_s:.1f} s "
          f"({res.chunks_computed} chunks computed, {res.chunks_resumed} resumed)")
    return res.exit_code
