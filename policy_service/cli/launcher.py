"""`policy-service-gunicorn`: gunicorn's own command line with the service's start checks, the Procfile's and the
image's web process (`policy-service-gunicorn -c gunicorn.conf.py "policy_service:create_app()"`).

gunicorn alone ended some starts in its own traceback where one line says what to fix: gunicorn.config reads
WEB_CONCURRENCY with int() as it is imported, before gunicorn.conf.py can check it (WEB_CONCURRENCY=lots: a
ValueError), and an app that cannot start (POLICY_DATABASE_URL naming a file that is not a database, a database
unavailable or behind this release's migrations, a bad rule file) went up through gunicorn's app loader. Here the
settings and WEB_CONCURRENCY are checked before gunicorn is imported (a bad one: its message on stderr, exit status
2, as gunicorn.conf.py gives), and an app that cannot start is its message on stderr and exit status 4 — gunicorn's
"App failed to load", with which the master stops instead of forking the next worker when the workers load the app
(POLICY_PRELOAD=false).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

from ..config import ENV_PREFIX, SettingsError, listen_address, load_settings, web_concurrency

# A setting that cannot be read (gunicorn.conf.py exits with the same status).
SETTINGS_ERROR = 2
# gunicorn's Arbiter.APP_LOAD_ERROR: a worker exiting with it stops the master ("App failed to load.").
APP_LOAD_ERROR = 4


def start_error(error: Exception) -> str | None:
    """The message of an error that stops the app's start (policy_service.create_app): a setting it cannot use
    (config.SettingsError, e.g. POLICY_DATABASE_URL naming a file that is not a database), a database behind this
    release's migrations (store.SchemaBehind) or unavailable (store.STORAGE_FAULTS: the one-line message the API
    gives with its 503, the reason logged), a bad rule file (core.errors.RulebookError, naming the file; a bad rate
    card CSV names POLICY_RATE_CARDS or POLICY_RATE_CARD_TIERS, which named it); None for
    any other error (a defect, whose traceback is kept)."""
    from ..core.errors import RulebookError
    from ..store import STORAGE_FAULTS, SchemaBehind, database

    if isinstance(error, (SettingsError, SchemaBehind)):
        return str(error)
    if isinstance(error, RulebookError):
        settings = load_settings()
        for name, given in (("RATE_CARDS", settings.rate_cards), ("RATE_CARD_TIERS", settings.rate_card_tiers)):
            # Meta's CSV is named by its own setting, outside the rules directory: blame that setting.
            if given is not None and error.file is not None and Path(error.file) == Path(given):
                return f"policy-service cannot start: invalid rate card in {ENV_PREFIX}{name}={str(given)!r}: {error}"
        # The served rules are the settings' (POLICY_RULES_DIR); the error names the file within them.
        return f"policy-service cannot start: invalid rules in {settings.rules_dir}: {error}"
    if isinstance(error, STORAGE_FAULTS):
        # Nothing was answered: the reason is logged without claiming a 503.
        return database.unavailable_message(error, answered=False)
    return None


def _stop(message: str, status: int) -> NoReturn:
    print(message, file=sys.stderr, flush=True)
    sys.exit(status)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run gunicorn with `argv` (default: this process's arguments), gunicorn's own options and APP_MODULE.

    Exits 2 (before gunicorn is imported) when a setting, WEB_CONCURRENCY or PORT cannot be read, 4 when the app
    cannot start (start_error), each with its message alone on stderr; otherwise as gunicorn exits."""
    try:
        load_settings()
        workers = web_concurrency()
        listen_address()
    except SettingsError as error:
        _stop(str(error), SETTINGS_ERROR)
    if workers is None:
        # Empty (the default, as for every setting): gunicorn.config's int() would fail on it as it is imported.
        os.environ.pop("WEB_CONCURRENCY", None)
    import gunicorn.app.base
    from gunicorn.app.wsgiapp import WSGIApplication
    from gunicorn.arbiter import Arbiter
    from gunicorn.errors import HaltServer

    class Master(Arbiter):
        """gunicorn's arbiter, except that it halts once: when the workers load the app and two of them fail,
        gunicorn's halt reaps the second while stopping and raised its HaltServer again, as a traceback."""

        halting = False

        def halt(self, reason=None, exit_status=0):
            self.halting = True
            super().halt(reason, exit_status)

        def reap_workers(self):
            try:
                super().reap_workers()
            except HaltServer:
                if not self.halting:
                    raise

    class Application(WSGIApplication):
        """gunicorn's application, whose load (in the master with preload, else in each worker) ends a start
        error in its message instead of a traceback."""

        def load(self):
            try:
                return super().load()
            except Exception as error:
                message = start_error(error)
                if message is None:
                    raise
                _stop(message, APP_LOAD_ERROR)

    # gunicorn's BaseApplication.run starts the Arbiter its module imported; this process runs nothing else.
    gunicorn.app.base.Arbiter = Master
    if argv is not None:
        sys.argv[1:] = argv
    Application("%(prog)s [OPTIONS] [APP_MODULE]", prog="policy-service-gunicorn").run()
    sys.exit(0)


if __name__ == "__main__":
    main()
