"""``cachegate serve`` (the proxy), ``cachegate embed`` (the embedding service), ``cachegate probe`` (the
prompt-cache probe, :mod:`proxy.probe.cli`).

Flags mirror the settings (``--cache-ttl 60`` is ``CACHE_TTL=60``); flags win over the environment.
A bad value stops start-up with a message naming the setting.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from proxy.errors import SettingsError
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
    import uvicorn

    from proxy.app import create_app
    from proxy.http.server import DrainingServer, uvicorn_options

    overrides = {spec.env: value for spec in SPECS if (value := getattr(args, spec.env)) is not None}
    try:
        settings = Settings.from_env({**os.environ, **overrides})
    except SettingsError as exc:
        print(f"cachegate: bad setting: {exc.message}", file=sys.stderr)
        return 2
    configure_logging(settings)
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None,
                            log_level=settings.log_level.lower(), timeout_graceful_shutdown=int(settings.drain_seconds),
                            **uvicorn_options())
    DrainingServer(config, on_drain=app.state.parts.health.drain, delay=settings.drain_delay).run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cachegate", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    _serve_parser(commands.add_parser("serve", help="run the caching proxy"))
    commands.add_parser("embed", help="run the embedding service (flags: see 'cachegate embed --help')",
                        add_help=False)
    commands.add_parser("probe", help="measure which upstream models cache prompts (flags: see "
                                      "'cachegate probe --help')", add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "probe":
        from proxy.probe.cli import main as probe_main

        return probe_main(rest)
    if args.command == "embed":
        from embedding_service.cli import main as embed_main

        return embed_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
