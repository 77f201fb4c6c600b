"""Default settings; POLICY_* environment variables override them (e.g. POLICY_DATABASE_URL)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Config:
    """Settings the app factory loads before the environment and test overrides."""

    RULES_DIR = str(PROJECT_ROOT / "rules")
    # Price with Meta's downloaded rate card CSV for the business's currency (or its BSP's rates in that
    # layout) instead of the cards shipped in rules/rates/; RATE_CARD_TIERS is Meta's volume-tier CSV.
    RATE_CARDS: str | None = None
    RATE_CARD_TIERS: str | None = None
    # Fixture histories the reviewer pages offer and count toward rule coverage.
    FIXTURES_DIR = str(PROJECT_ROOT / "fixtures")
    # None means a SQLite file in the Flask instance folder (the embedded default).
    DATABASE_URL = None
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
    LOG_LEVEL = "INFO"
    API_TITLE = "policy-service"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_URL_PREFIX = "/"
    JSON_SORT_KEYS = False
