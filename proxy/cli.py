"""``cachegate serve`` (the proxy), ``cachegate embed`` (the embedding service), ``cachegate probe`` (the
prompt-cache probe, :mod:`proxy.probe.cli`), ``cachegate db status`` (the migrations of every database: SQLite
under DATA_DIR, or PostgreSQL at DATABASE_URL).

Flags mirror the settings (``--cache-ttl 60`` is ``CACHE_TTL=60``); flags win over the environment.
A bad value stops start-up with a message naming the setting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from proxy.errors import SettingsError
from proxy.platform.sql import Schema
from proxy.redaction import redact_url, scrub
from proxy.setting_values import split_bind_address
from proxy.settings import SPECS, Settings


def _serve_parser(parser: argparse.ArgumentParser) -> None:
    for spec in SPECS:
        flag = "--" + spec.env.lower().replace("_", "-")
        parser.add_argument(flag, dest=spec.env, metavar=spec.env, help=f"{spec.help} [env {spec.env}]")


def configure_logging(settings: Settings) -> None:
    """Text or JSON lines (LOG_FORMAT), each carrying the request id: see :mod:`proxy.monitoring.logs`."""
    from proxy.monitoring.logs import configure_logging as configure

    configure(settings)


def serve(args: argparse.Namespace) -> int:
    from proxy.workers.plan import check, worker_index

    overrides = {spec.env: value for spec in SPECS if (value := getattr(args, spec.env)) is not None}
    try:
        settings = Settings.from_env({**os.environ, **overrides})
        check(settings)
        worker = worker_index(os.environ)
    except SettingsError as exc:
        print(f"cachegate: bad setting: {exc.message}", file=sys.stderr)
        return 2
    if settings.metrics_bind_address and split_bind_address(settings.metrics_bind_address) == \
            (settings.host, settings.port):
        print("cachegate: bad setting: METRICS_BIND_ADDRESS: must differ from HOST:PORT", file=sys.stderr)
        return 2
    configure_logging(settings)
    if settings.workers > 1:
        return supervise(settings, overrides)
    if worker is not None:
        return serve_worker(settings, worker)
    return _serve(settings)


def _serve(settings: Settings, sockets: Sequence[Any] | None = None, metrics_sockets: Sequence[Any] | None = None,
           parent: int | None = None, worker: int | None = None) -> int:
    """Run the proxy: on HOST:PORT (and METRICS_BIND_ADDRESS) itself, or, for worker number ``worker``, on the
    sockets given."""
    import uvicorn

    from proxy.app import create_app
    from proxy.http.server import DrainingServer, WorkerServer, uvicorn_options

    try:
        app = create_app(settings, worker=worker)
    except SettingsError as exc:  # one found while building the parts (a CA bundle that cannot be read, say)
        print(f"cachegate: bad setting: {exc.message}", file=sys.stderr)
        return 2
    options = {"log_config": None, "log_level": settings.log_level.lower(),
               "timeout_graceful_shutdown": int(settings.drain_seconds), **uvicorn_options()}
    served = {**options, **uvicorn_options(app.early)}  # the public listener answers memory hits before ASGI
    drain = app.state.parts.health.drain

    def public(config: uvicorn.Config) -> DrainingServer:
        if parent is None:
            return DrainingServer(config, on_drain=drain, delay=settings.drain_delay)
        return WorkerServer(config, on_drain=drain, delay=settings.drain_delay, parent=parent)

    if not settings.metrics_bind_address:
        public(uvicorn.Config(app, host=settings.host, port=settings.port, **served)).run(
            sockets=list(sockets) if sockets is not None else None)
        return 0
    from proxy.http.listeners import Listener
    from proxy.http.server import QuietServer

    host, port = split_bind_address(settings.metrics_bind_address)
    private = QuietServer(uvicorn.Config(Listener(app, monitoring=True), host=host, port=port, lifespan="off",
                                         **options))
    asyncio.run(_serve_both(public(uvicorn.Config(Listener(app, monitoring=False), host=settings.host,
                                                  port=settings.port, lifespan="on", **served)), private,
                            sockets, metrics_sockets))
    return 0


def supervise(settings: Settings, overrides: dict[str, str]) -> int:
    """``--workers N``: check that HOST:PORT is free (``SO_REUSEPORT`` would let the workers join another
    group of processes of this user listening there), then run the workers (:mod:`proxy.workers`)."""
    from proxy.http.server import listening_sockets
    from proxy.workers.plan import STARTUP_FAILURE, child_environment
    from proxy.workers.supervisor import Supervisor, worker_command

    try:
        for sock in listening_sockets(settings.host, settings.port, reuse_port=False):
            sock.close()
    except OSError as exc:
        print(f"cachegate: PORT: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return STARTUP_FAILURE
    environ = child_environment(os.environ, overrides, 0)
    return Supervisor(settings.workers, worker_command(), environ).run()


def _stop_quietly(sig: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve_worker(settings: Settings, index: int) -> int:
    """One worker of ``--workers N``: HOST:PORT with ``SO_REUSEPORT``, its metrics listener on port + ``index``."""
    from proxy.http.server import listening_sockets
    from proxy.workers.plan import STARTUP_FAILURE, metrics_address

    parent = os.getppid()
    for sig in (signal.SIGTERM, signal.SIGINT):  # told to stop before it serves (another worker failed): quietly
        signal.signal(sig, _stop_quietly)
    try:
        sockets = listening_sockets(settings.host, settings.port, reuse_port=True)
    except OSError as exc:
        print(f"cachegate: PORT: worker {index} cannot listen on {settings.host}:{settings.port}: {exc}",
              file=sys.stderr)
        return STARTUP_FAILURE
    metrics_sockets = None
    if settings.metrics_bind_address:
        host, port = metrics_address(settings.metrics_bind_address, index)
        try:
            metrics_sockets = listening_sockets(host, port, reuse_port=False)
        except OSError as exc:
            print(f"cachegate: METRICS_BIND_ADDRESS: worker {index} cannot listen on {host}:{port} (port + {index}): "
                  f"{exc}", file=sys.stderr)
            return STARTUP_FAILURE
    logging.getLogger("cachegate.workers").info("worker %d (pid %d) bound %s:%d with SO_REUSEPORT", index,
                                                os.getpid(), settings.host, settings.port)
    return _serve(settings, sockets, metrics_sockets, parent=parent, worker=index)


def databases(settings: Settings) -> list[tuple[str, Schema, bool]]:
    """Every database cachegate keeps: (its name, its owner's schema, whether it moves to PostgreSQL with
    DATABASE_URL). The history replicas share does; the caches of one machine stay in SQLite under DATA_DIR."""
    from proxy.cache import disk, history
    from proxy.monitoring import schema as monitoring
    from proxy.probe import schema as probe
    from proxy.semantic import labels

    return [("monitoring", monitoring.SCHEMA, True), ("probe", probe.SCHEMA, True),
            ("exact cache (disk level)", Schema("disk", disk.FILENAME, disk.MIGRATIONS), False),
            ("cache history (warm from history)", Schema("history", history.FILENAME, history.MIGRATIONS), False),
            ("semantic feedback (labelled pairs)", Schema("labels", labels.FILENAME, labels.MIGRATIONS), False)]


def _report(settings: Settings) -> list[dict[str, Any]]:
    """Each database's migrations, applied (when) or pending, on its engine."""
    from proxy.platform import postgres, sqlite

    report: list[dict[str, Any]] = []
    for name, schema, shared in databases(settings):
        if shared and settings.database_url:
            owner = postgres.schema_of(schema.name)
            exists, rows = asyncio.run(postgres.status(settings.database_url, owner, schema.migrations,
                                                       timeout=settings.database_timeout))
            report.append({"database": name, "engine": "postgres", "url": redact_url(settings.database_url),
                           "schema": owner, "exists": exists, "migrations": rows})
        else:
            path = settings.data_path / schema.filename
            report.append({"database": name, "engine": "sqlite", "path": str(path), "exists": path.exists(),
                           "migrations": sqlite.status(path, schema.migrations)})
    return report


def db_status(args: argparse.Namespace) -> int:
    """Print each database's migrations, applied (when) or pending; reads only, creates nothing."""
    environ = {**os.environ, **({"DATA_DIR": args.data_dir} if args.data_dir else {})}
    try:
        settings = Settings.from_env(environ)
    except SettingsError as exc:
        print(f"cachegate: bad setting: {exc.message}", file=sys.stderr)
        return 2
    try:
        report = _report(settings)
    except (TimeoutError, OSError) as exc:
        print(f"cachegate: DATABASE_URL does not answer: {scrub(str(exc)) or type(exc).__name__}", file=sys.stderr)
        return 1
    except Exception as exc:  # the driver's own errors (authentication, no such database)
        print(f"cachegate: DATABASE_URL refused: {scrub(str(exc)) or type(exc).__name__}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for db in report:
        where = db["path"] if db["engine"] == "sqlite" else f"{db['url']} (schema {db['schema']})"
        print(f"{db['database']}: {where}" + ("" if db["exists"] else " (not created yet)"))
        for row in db["migrations"]:
            applied = row["applied_at"]
            when = (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(applied))) + " UTC"
                    if applied is not None else "pending")
            print(f"  {row['version']:>3}  {when:<23}  {row['description']}")
    return 0


async def _serve_both(public: Any, private: Any, sockets: Sequence[Any] | None = None,
                      metrics_sockets: Sequence[Any] | None = None) -> None:
    """The public server (which runs the app's lifespan) first; the metrics listener once it has started;
    when either stops (a signal, a port already taken), both stop. A worker passes the sockets to serve on."""
    first = asyncio.create_task(public.serve(sockets=list(sockets) if sockets is not None else None))
    while not public.started and not first.done():
        await asyncio.sleep(0.05)
    tasks = [first]
    if not first.done():
        tasks.append(asyncio.create_task(private.serve(
            sockets=list(metrics_sockets) if metrics_sockets is not None else None)))
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    public.should_exit = private.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cachegate", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    _serve_parser(commands.add_parser("serve", help="run the caching proxy"))
    commands.add_parser("embed", help="run the embedding service (flags: see 'cachegate embed --help')",
                        add_help=False)
    commands.add_parser("probe", help="measure which upstream models cache prompts (flags: see "
                                      "'cachegate probe --help')", add_help=False)
    db_parser = commands.add_parser("db", help="the databases: SQLite under DATA_DIR, or PostgreSQL at DATABASE_URL")
    db = db_parser.add_subparsers(dest="db_command", required=True)
    db_status_parser = db.add_parser("status", help="list every database's migrations: applied or pending")
    db_status_parser.add_argument("--data-dir", help="the directory to look in [env DATA_DIR]")
    db_status_parser.add_argument("--json", action="store_true", help="print JSON")
    semantic = commands.add_parser("semantic", help="the semantic tier").add_subparsers(dest="semantic_command",
                                                                                         required=True)
    export_parser = semantic.add_parser("export-feedback", help="write the feedback verdicts as labelled pairs "
                                                                "(JSON lines, bench/verifier's format)")
    export_parser.add_argument("--data-dir", help="the directory to read [env DATA_DIR]")
    export_parser.add_argument("--out", help="the file to write (default: standard output)")
    args, rest = parser.parse_known_args(argv)
    if args.command == "probe":
        from proxy.probe.cli import main as probe_main

        return probe_main(rest)
    if args.command == "embed":
        from embedding_service.cli import main as embed_main

        return embed_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "db":
        return db_status(args)
    if args.command == "semantic":
        return export_feedback(args)
    return serve(args)


def export_feedback(args: argparse.Namespace) -> int:
    """``cachegate semantic export-feedback``: every verdict as a labelled pair, one JSON object a line."""
    from proxy.semantic.labels import FILENAME, export

    data_dir = Path(args.data_dir or os.environ.get("DATA_DIR") or Settings().data_dir)
    lines = [json.dumps(pair, ensure_ascii=False) for pair in export(data_dir / FILENAME)]
    text = "".join(line + "\n" for line in lines)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"{len(lines)} labelled pairs -> {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
