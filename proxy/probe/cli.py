"""``cachegate probe``: probe models once and print a table, or with ``--json`` a JSON list (one object per model).

Flags mirror the ``PROBE_*`` settings and win over them. A run that cannot start (a bad setting, no key
for Venice, unknown tests) exits with 2 and a message; one model failing is reported in its row, and
the others are probed all the same.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

import orjson

from embedding_service.envspec import parse_list, parse_range
from proxy.errors import CachegateError, SettingsError
from proxy.probe.catalog import advertised, is_text_model, list_models
from proxy.probe.clock import Clock, SystemClock
from proxy.probe.config import ProbeTarget, resolve
from proxy.probe.report import ProbeReport, render_table
from proxy.probe.runner import check_tests, run_probe
from proxy.settings import Settings
from proxy.upstream import HttpUpstream


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cachegate probe", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", help="comma-separated model ids, or all (text models of GET /models) "
                                         "[env PROBE_MODELS]")
    parser.add_argument("--tests", help="comma-separated: basic,hints,persistence,sizes,partial,stream,latency,ttl "
                                        "[env PROBE_TESTS]")
    parser.add_argument("--quick", action="store_true", default=None, help="the cheap variant [env PROBE_QUICK]")
    parser.add_argument("--ttl-range", metavar="MIN:MAX", help="seconds the TTL search brackets [env PROBE_TTL_RANGE]")
    parser.add_argument("--json", action="store_true", default=None,
                        help="print a JSON list, one object per model [env PROBE_JSON]")
    return parser


def _target(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[ProbeTarget, bool]:
    """What to probe, and whether to print JSON (``--json``, else ``PROBE_JSON``)."""
    settings = Settings.from_env(environ)
    try:
        tests = check_tests(parse_list(args.tests)) if args.tests else None
        ttl_range = parse_range(args.ttl_range) if args.ttl_range else None
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    models = parse_list(args.models) if args.models else None
    target = resolve(settings, models=models, tests=tests, quick=args.quick, ttl_range=ttl_range)
    return target, settings.probe_json if args.json is None else args.json


async def probe_models(target: ProbeTarget, clock: Clock, progress: IO[str] | None = None) -> list[ProbeReport]:
    upstream = HttpUpstream(target.upstream_url, timeout=target.timeout, max_connections=4)
    try:
        try:
            catalog = {entry["id"]: entry for entry in await list_models(upstream, target.api_key)}
        except CachegateError as exc:
            if target.models == ("all",):
                raise
            catalog = {}
            if progress is not None:
                print(f"cachegate probe: no prices: {exc.message}", file=progress)
        models = ([m for m, entry in catalog.items() if is_text_model(entry)] if target.models == ("all",)
                  else list(target.models))
        reports = []
        for model in models:
            if progress is not None:
                print(f"cachegate probe: {model} ...", file=progress, flush=True)
            reports.append(await run_probe(model, target.tests, upstream, api_key=target.api_key, clock=clock,
                                           config=target.config, advertised=advertised(catalog.get(model)),
                                           venice=target.venice))
        return reports
    finally:
        await upstream.aclose()


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None,
         clock: Clock | None = None, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = _parser().parse_args(argv)
    try:
        target, as_json = _target(args, os.environ if environ is None else environ)
    except SettingsError as exc:
        print(f"cachegate probe: {exc.message}", file=err)
        return 2
    try:
        reports = asyncio.run(probe_models(target, clock or SystemClock(), err))
    except CachegateError as exc:
        print(f"cachegate probe: {exc.message}", file=err)
        return 1
    if as_json:
        data: list[Any] = [report.as_dict() for report in reports]
        out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out.write(render_table(reports))
    return 0 if all(report.error is None for report in reports) else 1
