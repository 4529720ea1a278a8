"""``bms-emu config check FILE...`` and ``bms-emu config schema [KIND]``."""

from __future__ import annotations

import argparse
import json
import sys

from bms_emu.config import CONFIG_KINDS, ConfigError, config_json_schema, load_config


def add_subparser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("config", help="validate config files or print their JSON Schema")
    sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate YAML config files (kind from their 'kind:' key)")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(func=run_check)
    schema = sub.add_parser("schema", help="print the JSON Schema of the config files")
    schema.add_argument("kind", nargs="?", choices=sorted(CONFIG_KINDS), help="one kind only")
    schema.set_defaults(func=run_schema)


def run_check(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            cfg = load_config(path)
        except ConfigError as exc:
            failed += 1
            print(str(exc), file=sys.stderr)
            continue
        print(f"{path}: ok ({cfg.kind})")  # type: ignore[attr-defined]
    return 1 if failed else 0


def run_schema(args: argparse.Namespace) -> int:
    json.dump(config_json_schema(args.kind), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
