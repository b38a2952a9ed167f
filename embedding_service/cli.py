"""``python -m embedding_service`` (and ``cachegate embed``): serve the embedding service with uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .errors import SettingsError
from .settings import EmbedSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m embedding_service",
        description="Serve all-MiniLM-L6-v2 sentence embeddings over HTTP (POST /embed, POST /v1/embeddings). "
                    "Other settings come from EMBED_* environment variables.")
    parser.add_argument("--host", help="interface to listen on (default: EMBED_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: EMBED_PORT or 8001)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error", "critical"],
                        help="log level (default: LOG_LEVEL or info)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = EmbedSettings.from_env()
    except SettingsError as exc:
        print(f"embedding service: {exc.message}", file=sys.stderr)
        return 2
    overrides = {"host": args.host, "port": args.port,
                 "log_level": args.log_level.upper() if args.log_level else None}
    settings = settings.replace(**{key: value for key, value in overrides.items() if value is not None})
    if not 0 <= settings.port <= 65535:
        print(f"embedding service: --port: expected 0 to 65535, got {settings.port}", file=sys.stderr)
        return 2

    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Imported here so that --help and settings errors answer without loading uvicorn and starlette.
    import uvicorn

    from .app import create_app

    # loop/http "auto" pick uvloop and httptools when installed (they are, via uvicorn[standard]).
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, loop="auto", http="auto",
                log_level=settings.log_level.lower(), access_log=settings.log_level == "DEBUG")
    return 0
