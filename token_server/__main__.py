"""`python -m token_server --host H --port P`: run the token server."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from contract import CharacterFileError

from .app import create_app
from .http_server import run
from .logs import configure_logging, warn_about_short_secret
from .settings import Settings


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the app and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m token_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    settings = Settings()
    warn_about_short_secret(settings.livekit_api_secret.get_secret_value())
    try:
        app = create_app(settings, reload_on_sighup=True)
    except (CharacterFileError, FileNotFoundError) as exc:
        print(f"error: cannot load characters: {exc}", file=sys.stderr)
        return 2
    ready = (
        f"token server on http://{args.host}:{args.port} "
        f"(LiveKit {settings.livekit_url}, database {settings.database_url.split('://')[0]})"
    )
    try:
        run(app, host=args.host, port=args.port, on_ready=lambda: print(ready, flush=True))
    except (OSError, SQLAlchemyError) as exc:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        print(
            f"error: cannot start: {type(exc).__name__}: {exc} "
            f"(listening on {args.host}:{args.port}, database {where})",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
