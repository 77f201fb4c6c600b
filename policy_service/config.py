"""Default settings; POLICY_* environment variables override them (e.g. POLICY_DATABASE_URL)."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent


def shipped(name: str) -> Path:
    """A data folder the wheel ships inside the package (rules, fixtures), else the checkout's top-level one."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else PROJECT_ROOT / name


class Config:
    """Settings the app factory loads before the environment and test overrides."""

    # POLICY_RULES_DIR overrides: the rule files the service runs (default: the ones shipped with it).
    RULES_DIR = str(shipped("rules"))
    # Price with Meta's downloaded rate card CSV for the business's currency (or its BSP's rates in that
    # layout) instead of the cards shipped in rules/rates/; RATE_CARD_TIERS is Meta's volume-tier CSV.
    RATE_CARDS: str | None = None
    RATE_CARD_TIERS: str | None = None
    # Fixture histories the reviewer pages offer and count toward rule coverage (POLICY_FIXTURES_DIR).
    FIXTURES_DIR = str(shipped("fixtures"))
    # None means a SQLite file in the Flask instance folder (the embedded default).
    DATABASE_URL = None
    # Apply pending schema migrations at start-up? None: an empty database gets the schema, and the
    # embedded SQLite file is migrated; a configured database holding tables is upgraded once per
    # release by `policy-service db upgrade`, and an app started on one that is behind refuses to
    # start (store.schema.SchemaBehind). True: always migrate. False: never, not even an empty one.
    DATABASE_AUTO_UPGRADE: bool | None = None
    # Phone numbers in the decision log keep only their calling code (and NANP area code) unless false.
    MASK_PHONE_NUMBERS = True
    # Meta's app secret signs every webhook (X-Hub-Signature-256); without it every webhook is refused.
    WHATSAPP_APP_SECRET = None
    # The token Meta echoes when subscribing the webhook; without it every subscription is refused.
    WHATSAPP_VERIFY_TOKEN = None
    # sha256 hex digests of the accepted API keys (a list, or one comma-separated string);
    # empty means the API is open. Generate one with: printf %s "$KEY" | sha256sum
    API_KEY_HASHES: list[str] | str = []
    # A request body larger than this is refused with 413 before it is parsed.
    MAX_CONTENT_LENGTH = 4 * 1024 * 1024
    MAX_BATCH_SIZE = 100
    # Seconds between a worker's checks for a rules reload published by any instance on the database
    # (POST /v1/admin/reload-rules, SIGHUP): a reload reaches every worker within about this long.
    RULES_CHECK_SECONDS = 2.0
    LOG_LEVEL = "INFO"
    API_TITLE = "policy-service"
    API_VERSION = "v1"
    # 3.1: a nullable object is anyOf [$ref, null], which typed clients read as `Charge | null`.
    OPENAPI_VERSION = "3.1.0"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_URL_PREFIX = "/"
    JSON_SORT_KEYS = False
