"""Settings: defaults, then POLICY_* environment variables, then explicit overrides — validated once, at start-up.

`load_settings(overrides)` is the one loader (pydantic-settings): the Flask app (`configured_app`), the
Python API and gunicorn.conf.py read the same validated `Settings`. A value that cannot be read stops the
start with `SettingsError`, naming each variable, the value given (never a secret's) and what it must be:

    POLICY_MAX_BATCH_SIZE='lots': must be a whole number (Input should be a valid integer, …)

Readings: booleans accept true/false, 1/0, yes/no, on/off (any case); sizes accept bytes (4194304) or a
unit (4MiB = 4194304 bytes, 4MB = 4000000 bytes, 512kB); an empty variable means the default.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import (
    ByteSize,
    DirectoryPath,
    Field,
    FilePath,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
ENV_PREFIX = "POLICY_"
# Variables with the prefix that are not settings of the service (the test suite's database).
NOT_SETTINGS = ("POLICY_TEST_", "POLICY_POSTGRES_")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# The database URL schemes store.database opens (peewee's playhouse.db_url names).
DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql")
log = logging.getLogger("policy_service.config")
# Upper bounds of the settings in seconds. Every number a setting holds is finite and bounded: `inf` (or 1e999)
# passed a bare "positive" check and then failed every request (socket.settimeout, timedelta: OverflowError).
HOUR = 3_600
DAY = 86_400
MOST_WORKERS = 1_024  # POLICY_WORKERS' bound, and WEB_CONCURRENCY's (web_concurrency)


def shipped(name: str) -> Path:
    """A data folder the wheel ships inside the package (rules, fixtures), else the checkout's top-level one."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else PROJECT_ROOT / name


DEFAULT_RULES_DIR = str(shipped("rules"))
DEFAULT_FIXTURES_DIR = str(shipped("fixtures"))


def parse_key_hashes(setting: Any) -> tuple[str, ...]:
    """API key digests as lowercase hex, from a list or one comma-separated string (as the environment gives).

    Raises ValueError naming the positions that are not sha256 hex digests: a plain key configured by
    mistake would otherwise lock every client out without a word.
    """
    if setting is None:
        return ()
    items = setting.split(",") if isinstance(setting, str) else list(setting)
    hashes = tuple(str(item).strip().lower() for item in items if str(item).strip())
    malformed = [index for index, digest in enumerate(hashes) if not SHA256_HEX.fullmatch(digest)]
    if malformed:
        raise ValueError(f"items {malformed} are not sha256 hex digests (64 hex characters); "
                         "configure the digest of each key, e.g. printf %s \"$KEY\" | sha256sum")
    return hashes


ROLES = ("client", "reviewer", "operator")
KEY_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def check_database_url(value: str) -> str:
    """`value` unchanged if it is a URL store.database can open (scheme sqlite://, postgres:// or postgresql://; one
    of PostgreSQL naming a host or a database; a port, if any, 0-65535; query values of digits ASCII: as
    playhouse.db_url reads them); raises ValueError saying what it must be. The rule of POLICY_DATABASE_URL (Settings)
    and of `--database-url` (cli.inputs.DatabaseUrl)."""
    parts = urlsplit(value)
    if parts.scheme not in DATABASE_SCHEMES:
        raise ValueError(f"must be a database URL starting {' or '.join(s + '://' for s in DATABASE_SCHEMES)} "
                         "(e.g. postgresql://user:password@host:5432/name or sqlite:////srv/log.sqlite3)")
    if parts.scheme != "sqlite" and not (parts.hostname or parts.path.strip("/")):
        raise ValueError("names no host or database (e.g. postgresql://user:password@host:5432/name)")
    # Read as playhouse.db_url reads it when the database opens: its port (`:99999`, `:abc` raised ValueError
    # there, a traceback at start) and each query value made of digits, which it turns into an int ('²' or
    # 5,000 digits raised ValueError too).
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("has a port that is not a whole number 0-65535 "
                         "(e.g. postgresql://user:password@host:5432/name)") from None
    for name, text in parse_qsl(parts.query, keep_blank_values=True):
        if text.isdigit() and not (text.isascii() and len(text) <= 16):
            raise ValueError(f"query parameter {name!r} must be a whole number in at most 16 ASCII digits (0-9)")
    return value


@dataclass(frozen=True)
class ApiKey:
    """One configured key: its name (logged with each decision it makes), its roles, its sha256 hex digest."""

    name: str
    roles: frozenset[str]
    digest: str


def parse_api_keys(setting: Any) -> tuple[ApiKey, ...]:
    """API keys from a list or one comma-separated string of `name:role[+role…]:sha256hex` entries.

    Raises ValueError naming each bad entry by position and name, never echoing a value (a plain key
    configured by mistake is a secret).
    """
    if setting is None:
        return ()
    items = setting.split(",") if isinstance(setting, str) else list(setting)
    keys, problems = [], []
    for index, item in enumerate(entry for entry in items if isinstance(entry, ApiKey) or str(entry).strip()):
        if isinstance(item, ApiKey):
            keys.append(item)
            continue
        name, _, rest = str(item).strip().partition(":")
        role_text, _, digest = rest.partition(":")
        roles = frozenset(role_text.split("+"))
        digest = digest.strip().lower()
        if not KEY_NAME.fullmatch(name):
            problems.append(f"item {index}: the name must be 1-64 letters, digits, '_', '.', '@' or '-'")
        elif not roles <= set(ROLES):
            problems.append(f"item {index} ({name}): roles must be among {', '.join(ROLES)} (joined by +)")
        elif not SHA256_HEX.fullmatch(digest):
            problems.append(f"item {index} ({name}): the third part must be the key's sha256 hex digest, "
                            "e.g. printf %s \"$KEY\" | sha256sum")
        else:
            keys.append(ApiKey(name, roles, digest))
    if problems:
        raise ValueError("entries are name:role:sha256 — " + "; ".join(problems))
    names = [key.name for key in keys]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"names {repeated} more than once: each key needs its own name")
    return tuple(keys)


class Settings(BaseSettings):
    """Every setting of the service; environment variable POLICY_<NAME>, e.g. POLICY_DATABASE_URL."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, case_sensitive=False, env_ignore_empty=True,
                                      extra="forbid", frozen=True, validate_default=True)

    # The rule files the service runs (default: the ones shipped with it).
    rules_dir: DirectoryPath = Path(DEFAULT_RULES_DIR)
    # Price with Meta's downloaded rate card CSV for the business's currency (or its BSP's rates in that
    # layout) instead of the cards shipped in rules/rates/; rate_card_tiers is Meta's volume-tier CSV.
    rate_cards: FilePath | None = None
    rate_card_tiers: FilePath | None = None
    # Fixture histories the reviewer pages offer and count toward rule coverage.
    fixtures_dir: DirectoryPath = Path(DEFAULT_FIXTURES_DIR)
    # None means a SQLite file in the Flask instance folder (the embedded default).
    database_url: str | None = None
    # Apply pending schema migrations at start-up? None: an empty database gets the schema, and the
    # embedded SQLite file is migrated; a configured database holding tables is upgraded once per
    # release by `policy-service db upgrade`, and an app started on one that is behind refuses to
    # start (store.schema.SchemaBehind). True: always migrate. False: never, not even an empty one.
    database_auto_upgrade: bool | None = None
    # Phone numbers in the decision log keep only their calling code (and NANP area code) unless false.
    mask_phone_numbers: bool = True
    # Meta's app secret signs every webhook (X-Hub-Signature-256); without it every webhook is refused.
    whatsapp_app_secret: str | None = Field(default=None, repr=False)
    # The token Meta echoes when subscribing the webhook; without it every subscription is refused.
    whatsapp_verify_token: str | None = Field(default=None, repr=False)
    # How stored webhook payloads are processed (service.ingest): background (a thread per worker, after the
    # answer; a body of at most webhook_inline_max_bytes is processed before the answer, so a client reads its
    # own writes), inline (every body before answering), off (`policy-service webhooks process` only); None:
    # inline under TESTING, else background. Then events per transaction, a processor's lease on a payload
    # (seconds), attempts before a payload is failed, and how often each worker looks for leftovers (seconds).
    webhook_processing: Literal["background", "inline", "off"] | None = None
    webhook_inline_max_bytes: ByteSize = Field(default=ByteSize(64 * 1024), ge=0)
    webhook_batch_size: int = Field(default=500, gt=0, le=100_000)
    webhook_lease_seconds: float = Field(default=60.0, gt=0, le=DAY, allow_inf_nan=False)
    webhook_max_attempts: int = Field(default=5, gt=0, le=1_000)
    webhook_poll_seconds: float = Field(default=5.0, gt=0, le=HOUR, allow_inf_nan=False)
    # sha256 hex digests of the accepted API keys (comma-separated); empty means the API is open.
    api_key_hashes: Annotated[tuple[str, ...], NoDecode] = ()
    # How the host's decision-log writer (gunicorn with the app preloaded, the embedded SQLite file) makes a commit
    # durable. 0: every commit is forced to disk before the decision is answered (SQLite synchronous=FULL): a
    # decision a client has seen survives a power loss. N > 0 (the default, 0.1): a decision is answered once its
    # commit is written to the file (synchronous=NORMAL), which survives the crash of any process (kill -9), and
    # the file is forced to disk at most N seconds later: a power loss or operating-system crash may roll back the
    # decisions of the last N seconds. Forcing each commit cost ~0.4 ms of CPU per decision (bench/README.md).
    # Other writers (webhooks, business state, PostgreSQL) always commit durably.
    decision_log_sync_seconds: float = Field(default=0.1, ge=0, le=60, allow_inf_nan=False)
    # gunicorn with the app preloaded on the embedded SQLite file: the master runs one decision-log writer for the
    # host's workers (store/log_writer.py). False: each worker commits its own rows (to compare both).
    log_writer: bool = True
    # A request body larger than this is refused with 413 before it is parsed.
    max_content_length: ByteSize = Field(default=ByteSize(4 * 1024 * 1024), gt=0)
    # Most requests in one POST /v1/decisions/batch.
    max_batch_size: int = Field(default=100, gt=0, le=100_000)
    # Seconds between a worker's checks for a rules reload published by any instance on the database
    # (POST /v1/admin/reload-rules, SIGHUP): a reload reaches every worker within about this long.
    rules_check_seconds: float = Field(default=2.0, gt=0, le=HOUR, allow_inf_nan=False)
    # API keys by name and role: comma-separated name:role:sha256 entries (roles client, reviewer, operator,
    # joined by +); the name is logged with each decision the key makes. Empty (and no api_key_hashes): open.
    api_keys: Annotated[tuple[ApiKey, ...], NoDecode] = ()
    # Signs reviewers' session cookies and the pages' CSRF tokens; the same on every instance. None: one is
    # made at each start (logins do not survive a restart nor reach another instance).
    secret_key: str | None = Field(default=None, repr=False)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # gunicorn (gunicorn.conf.py): worker processes (None: WEB_CONCURRENCY, else the CPU count), threads
    # per worker, the worker timeout and the idle keep-alive in seconds, and loading the rules once in
    # the master before forking.
    workers: int | None = Field(default=None, gt=0, le=MOST_WORKERS)
    threads: int = Field(default=16, gt=0, le=1_024)
    timeout: int = Field(default=30, gt=0, le=DAY)
    keepalive: int = Field(default=5, gt=0, le=HOUR)
    preload: bool = True
    # gunicorn's workers (web/worker.py): seconds a request's head (request line and headers) may take to arrive,
    # from the worker starting to read it, and seconds the socket may go without progress once the head is read
    # (each read of the body, each write of the answer); then 408 and the connection is closed.
    header_timeout: float = Field(default=5.0, gt=0, le=HOUR, allow_inf_nan=False)
    body_timeout: float = Field(default=10.0, gt=0, le=HOUR, allow_inf_nan=False)

    @field_validator("api_key_hashes", mode="before")
    @classmethod
    def _digests(cls, value: Any) -> tuple[str, ...]:
        return parse_key_hashes(value)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> tuple[ApiKey, ...]:
        return parse_api_keys(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("whatsapp_verify_token", "whatsapp_app_secret", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        # A test override or a Python caller may give an all-digit token as a number.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return None if value is None else check_database_url(value)

    def flask_config(self) -> dict[str, Any]:
        """The settings as the Flask app's config keys (upper case; paths as str, sizes as int bytes)."""
        values = self.model_dump()
        for name, value in values.items():
            if isinstance(value, Path):
                values[name] = str(value)
        values["max_content_length"] = int(self.max_content_length)
        values["webhook_inline_max_bytes"] = int(self.webhook_inline_max_bytes)
        values["api_keys"] = self.api_keys  # the keys themselves, not dumped to dicts
        return {name.upper(): value for name, value in values.items()}


class SettingsError(ValueError):
    """Settings that cannot be read; the message lists every problem, one line each, by variable name."""


class DatabaseUrlRefused(SettingsError):
    """POLICY_DATABASE_URL (or --database-url) naming something the store cannot use although the URL reads well: a
    file that is not a database (store.database.not_a_database), a directory, a file in a missing folder
    (store.database.unusable_file) or another application's database (store.database.foreign_tables). `reason` is
    the problem alone, for a usage error naming the option; the message names the variable and the URL (its password
    masked)."""

    def __init__(self, url: str, reason: str) -> None:
        self.reason = reason
        super().__init__(f"policy-service settings cannot be read:\n  {ENV_PREFIX}DATABASE_URL="
                         f"{_shown('database_url', url)!r}: {reason}")


def web_concurrency(environ: Mapping[str, str] | None = None) -> int | None:
    """The worker count of the platform's WEB_CONCURRENCY variable (gunicorn.conf.py, when POLICY_WORKERS is unset);
    None when it is unset or empty. Raises SettingsError naming it when it is not a whole number in ASCII digits
    from 1 to MOST_WORKERS: int() took "１" (fullwidth), and 0 or 1025 went to gunicorn as they were."""
    value = (os.environ if environ is None else environ).get("WEB_CONCURRENCY", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit() and len(value) <= 4 and 1 <= int(value) <= MOST_WORKERS:
        return int(value)
    raise SettingsError(f"policy-service settings cannot be read:\n  WEB_CONCURRENCY={value!r}: must be a whole "
                        f"number of worker processes from 1 to {MOST_WORKERS} (or unset: POLICY_WORKERS, else the "
                        "CPU count)")


def listen_address(environ: Mapping[str, str] | None = None) -> str:
    """gunicorn's bind address, "HOST:PORT" (gunicorn.conf.py): HOST (0.0.0.0) and PORT (8000), the default when
    unset or empty; an IPv6 HOST (::, ::1, or [::1]) in brackets ("[::1]:8000"). Raises SettingsError naming PORT
    when it is not a whole number in ASCII digits from 0 to 65535 (0: a free port the system chooses): 99999 reached
    socket.bind as an OverflowError traceback; naming HOST when it holds a colon but is no IPv6 address, or a space
    (HOST=::1 was "'' is not a valid port number" from gunicorn)."""
    environ = os.environ if environ is None else environ
    host = environ.get("HOST", "").strip() or "0.0.0.0"
    port = environ.get("PORT", "").strip() or "8000"
    problems = []
    if ":" in host:
        bare = host.removeprefix("[").removesuffix("]")
        try:
            host = f"[{ipaddress.IPv6Address(bare)}]"
        except ValueError:
            problems.append(f"HOST={host!r}: must be a host name or an IP address (IPv6 as ::1 or [::1]); the port is "
                            "PORT")
    elif not host.isprintable() or " " in host:
        problems.append(f"HOST={host!r}: must be a host name or an IP address")
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and int(port) <= 65_535):
        problems.append(f"PORT={port!r}: must be a whole number from 0 to 65535 (or unset: 8000)")
    if problems:
        raise SettingsError("policy-service settings cannot be read:" + "".join(f"\n  {line}" for line in problems))
    return f"{host}:{port}"


# Never echoed in an error: a plain API key configured by mistake is a secret too.
SECRET_SETTINGS = frozenset({"whatsapp_app_secret", "whatsapp_verify_token", "api_key_hashes", "api_keys",
                             "secret_key"})
FRIENDLY = {
    "int_parsing": "must be a whole number",
    "bool_parsing": "must be true or false (also 1/0, yes/no, on/off)",
    "byte_size": "must be a size in bytes, or with a unit: 4194304, 4MiB, 4MB, 512kB",
    "byte_size_unit": "must be a size in bytes, or with a unit: 4194304, 4MiB, 4MB, 512kB",
    "path_not_directory": "must be an existing directory",
    "path_not_file": "must be an existing file",
}


def _problem(error: Mapping[str, Any]) -> str:
    name = str(error["loc"][0]) if error["loc"] else "?"
    variable = ENV_PREFIX + name.upper()
    if error["type"] == "extra_forbidden":
        return f"{name.upper()}: not a setting (the settings are {', '.join(sorted(Settings.model_fields)).upper()})"
    given = "" if name in SECRET_SETTINGS else f"={_shown(name, error.get('input'))!r}"
    reason = error["msg"].removeprefix("Value error, ")
    friendly = FRIENDLY.get(error["type"])
    return f"{variable}{given}: {friendly} ({reason})" if friendly else f"{variable}{given}: {reason}"


def _shown(name: str, value: Any) -> Any:
    """A value as an error may show it: a database URL without its password."""
    if name == "database_url" and isinstance(value, str):
        parts = urlsplit(value)
        if parts.password:
            return value.replace(f":{parts.password}@", ":***@", 1)
    return value


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """The validated settings: defaults, then POLICY_* environment variables, then `overrides`.

    Override names are the settings' names in any case ("MAX_BATCH_SIZE" or "max_batch_size"). Raises
    SettingsError listing every unreadable value (or unknown override) by its POLICY_ variable name.
    A POLICY_* variable that is not a setting is logged as a warning and ignored.
    """
    _warn_unknown(os.environ)
    values = {name.lower(): value for name, value in (overrides or {}).items()}
    try:
        return Settings(**values)
    except ValidationError as error:
        problems = "\n".join(f"  {_problem(item)}" for item in error.errors())
        raise SettingsError(f"policy-service settings cannot be read:\n{problems}") from None


# Unknown variables already reported: a command that reads the settings twice (the CLI's check, then the
# store it opens) reports each once.
_REPORTED: set[str] = set()


def _warn_unknown(environ: Mapping[str, str]) -> None:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for name in environ:
        upper = name.upper()
        if upper.startswith(ENV_PREFIX) and upper not in known and not upper.startswith(NOT_SETTINGS) \
                and name not in _REPORTED:
            _REPORTED.add(name)
            log.warning("%s is not a setting of policy-service and is ignored (settings: %s)",
                        name, ", ".join(sorted(known)))
