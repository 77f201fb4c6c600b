"""Rate cards: what Meta charges per market and pricing category, dated, with volume tiers.

Prices are data, never Python: the shipped cards live in `rules/rates/*.yaml` (one card per file,
`rate_card:`, plus `market_maps:` in `rules/rates/markets.yaml`), each with its effective dates, the
address it was transcribed from (`source`), the Meta page it reproduces (`citation`) and a
confidence (C Meta's own page, S a secondary copy, R unconfirmed). A business may instead point the
`RATE_CARDS` setting at Meta's downloaded CSV for its currency (and `RATE_CARD_TIERS` at the
volume-tier CSV), or at its BSP's rates in the same layout; `load_meta_csv` reads that layout.

Layout of a card (Meta's own columns):
    rate_card:
      id, title, currency (ISO 4217), basis (message | conversation), effective {from, until},
      citation, source, confidence, [note], [partial: true]
      columns: [market, currency, marketing, utility, authentication, authentication-international, service]
      rates: [[market, currency, rate|null|unsourced, ...], ...]   # one row per market; null = "n/a"
      tiers: {source, <category>: {<market>: [[from, to|null, rate], ...]}}   # optional

A *partial* card is a copy of Meta's card that lists only some markets (or only some columns,
`unsourced`): it prices what it lists, and every other market or cell has no price, with a reason
naming what is missing. A full card lists every market of the market map in force.

`price_columns:` (rules/rates/categories.yaml) say which card column prices each charge category
Meta reports (marketing_lite at the marketing rate, group_* per participant, business_agent per
token: no column), and `volume_tiers:` which categories Meta discounts by volume — dated and cited
like the cards, so no category rule lives in Python.

Besides Meta's CSV, two layouts of the shared rate-card folder are read (`load_shared_csv`): the
wide one (`effective_from,currency,market,marketing,utility,...`) and the long one
(`effective_from,currency,market,category,rate,...`), with a long volume-tier file
(`effective_from,currency,market,category,from,to,rate`).

Amounts are `Decimal` (decimal strings in files and answers, never floats in arithmetic).

Errors: `RateCardError` (a `RulebookError`) naming `file:entry` — unknown market, negative or
non-decimal price, overlapping cards or maps, a card without dates, tiers that leave gaps.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..config import shipped
from .errors import RulebookError

# Meta's rate card columns, in Meta's order; the category names are those of the webhook `pricing.category`.
CATEGORIES = ("marketing", "utility", "authentication", "authentication-international", "service")
COLUMNS = ("market", "currency", *CATEGORIES)
BASES = {"message": "per delivered message", "conversation": "per conversation"}
CONFIDENCE = ("C", "S", "R")
CARD_KEYS = {"id", "title", "currency", "basis", "effective", "citation", "source", "confidence", "note",
             "columns", "rates", "tiers", "partial"}
COLUMN_KEYS = {"id", "title", "category", "column", "per_participant", "reason", "effective", "citation", "source",
               "confidence", "note"}
TIERED_KEYS = {"id", "title", "categories", "effective", "citation", "source", "confidence", "note"}
UNSOURCED = "unsourced"  # a cell of a partial card whose number no source gives (unlike Meta's n/a)
MAP_KEYS = {"id", "title", "effective", "citation", "source", "confidence", "note", "otherwise", "markets"}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# A price as Meta writes it: ASCII digits with at most one dot and digits after it. Decimal() alone also reads
# exponents (1e999: a 1,000-digit price), underscores (1_2 is 12) and other scripts' digits (٠.٠١ is 0.01); a
# leading minus is only matched to be refused as a negative price.
_PRICE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_DOCUMENT_KEYS = ("rate_card", "market_maps", "price_columns", "volume_tiers", "currencies")
CURRENCY_KEYS = {"id", "title", "citation", "source", "confidence", "not_billing", "codes"}
CURRENCIES_FILE = "currencies.yaml"  # in rules/rates/: ISO 4217's codes (core.rates.iso_4217)
_TITLE_DATE = re.compile(r"effective\s+([A-Z][a-z]+ \d{1,2}, \d{4})")


class RateCardError(RulebookError):
    """A rate card or market map is invalid; the message names the file and the entry."""


@dataclass(frozen=True)
class CurrencyList:
    """ISO 4217's alphabetic codes with their names (`codes`), and those no business is billed in (`not_billing`:
    gold, testing, fund codes... with what each is), as rules/rates/currencies.yaml lists them."""

    id: str
    citation: str
    codes: dict[str, str]
    not_billing: dict[str, str]

    @property
    def billing(self) -> tuple[str, ...]:
        """The codes a bill, a card, a report or a forecast may be in, sorted."""
        return tuple(sorted(set(self.codes) - set(self.not_billing)))

    def problem(self, code: str) -> str | None:
        """Why `code` cannot be a billing currency (not an ISO 4217 code, or one for no money), or None."""
        if code in self.not_billing:
            return f"{code} is ISO 4217's code for {self.not_billing[code]}, not a currency a bill is in"
        if code not in self.codes:
            return f"{code!r} is not an ISO 4217 currency code (like USD, EUR, BRL)"
        return None


@dataclass(frozen=True)
class Tier:
    """One volume tier: messages numbered `first`..`last` this month (last None = no upper end) cost `rate`."""

    first: int
    last: int | None
    rate: Decimal

    @property
    def label(self) -> str:
        """The tier as Meta's volume-tier table writes it, e.g. '100,001-1,000,000'."""
        return f"{self.first:,}-{self.last:,}" if self.last is not None else f"{self.first:,} and above"


class Dated:
    """An entry in force from `effective_from` through `effective_until` (None: open-ended)."""

    effective_from: date
    effective_until: date | None

    def covers(self, day: date) -> bool:
        """True when the entry is in force on the day."""
        return self.effective_from <= day and (self.effective_until is None or day <= self.effective_until)


@dataclass(frozen=True)
class RateCard(Dated):
    """Prices for one currency over a span of days: market -> category -> price (None where Meta writes n/a)."""

    id: str
    title: str
    currency: str
    basis: str
    effective_from: date
    effective_until: date | None
    citation: str
    source: str
    confidence: str
    rates: dict[str, dict[str, Decimal | None]]
    tiers: dict[str, dict[str, tuple[Tier, ...]]] = field(default_factory=dict)  # category -> market -> tiers
    tiers_source: str | None = None
    note: str = ""
    file: str = ""
    partial: bool = False  # lists only the markets (and cells) a source gave
    unsourced: frozenset[tuple[str, str]] = frozenset()  # (market, category) cells no source gives
    lines: dict[str, int] = field(default_factory=dict)  # market -> its row's line in a CSV (errors name it)


@dataclass(frozen=True)
class PriceColumn(Dated):
    """Which card column prices a charge category over a span of days (None: no per-message price, `reason`)."""

    id: str
    title: str
    category: str
    column: str | None
    per_participant: bool
    reason: str
    effective_from: date
    effective_until: date | None
    citation: str
    source: str
    confidence: str
    file: str = ""


@dataclass(frozen=True)
class TieredCategories(Dated):
    """Which card columns Meta discounts by monthly volume over a span of days (PMP-5)."""

    id: str
    categories: tuple[str, ...]
    effective_from: date
    effective_until: date | None
    citation: str
    confidence: str
    file: str = ""


@dataclass(frozen=True)
class MarketMap(Dated):
    """Which rate-card market a recipient's country belongs to over a span of days (Meta's "Rest of ..." markets)."""

    id: str
    title: str
    effective_from: date
    effective_until: date | None
    citation: str
    source: str
    confidence: str
    countries: dict[str, str]  # ISO 3166 alpha-2 -> market
    otherwise: str | None  # the market of every country not listed ("Other"), or None when not known
    file: str = ""

    def market_of(self, country: str) -> str | None:
        """The market of an ISO country code, or None when the map does not say."""
        return self.countries.get(country, self.otherwise)

    @property
    def markets(self) -> set[str]:
        """Every market the map names."""
        return set(self.countries.values()) | ({self.otherwise} if self.otherwise else set())


@dataclass(frozen=True)
class RateBook:
    """Every rate card and market map in force, validated; `version` hashes their files."""

    cards: tuple[RateCard, ...] = ()
    maps: tuple[MarketMap, ...] = ()
    version: str = "none"
    columns: tuple[PriceColumn, ...] = ()
    tiered: tuple[TieredCategories, ...] = ()

    def card_on(self, day: date, currency: str) -> RateCard | None:
        """The card for a currency in force on a day (cards of one currency never overlap)."""
        return next((c for c in self.cards if c.currency == currency and c.covers(day)), None)

    def map_on(self, day: date) -> MarketMap | None:
        """The market map in force on a day."""
        return next((m for m in self.maps if m.covers(day)), None)

    def currencies(self) -> list[str]:
        """The currencies some card is in."""
        return sorted({c.currency for c in self.cards})

    def column_on(self, day: date, category: str) -> PriceColumn | None:
        """The rule naming the card column of a charge category on a day (None: the column of that name)."""
        return next((c for c in self.columns if c.category == category and c.covers(day)), None)

    def tiered_on(self, day: date, column: str) -> bool:
        """True when Meta discounts this card column by monthly volume on the day."""
        return any(column in t.categories for t in self.tiered if t.covers(day))


# --- loading the shipped YAML --------------------------------------------------------------------

@lru_cache(maxsize=1)
def iso_4217() -> CurrencyList:
    """The ISO 4217 codes of the shipped rules/rates/currencies.yaml: a standard, read from the package's own rules
    whatever rules directory is configured. Raises RateCardError if the file is missing or malformed."""
    path = shipped("rules") / "rates" / CURRENCIES_FILE
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise RateCardError(f"cannot read ISO 4217's codes: {error}", file=str(path)) from None
    document = _yaml(raw, str(path))
    if not isinstance(document, dict) or "currencies" not in document:
        raise RateCardError("holds `currencies:`", file=str(path))
    return _currency_list(document["currencies"], str(path))


def _currency_list(item: Any, file: str) -> CurrencyList:
    entry = item.get("id") if isinstance(item, dict) else None
    _keys(item, CURRENCY_KEYS, ("id", "title", "citation", "source", "confidence", "codes"), file, entry, "currencies")
    codes, not_billing = item["codes"], item.get("not_billing") or {}
    for name, table in (("codes", codes), ("not_billing", not_billing)):
        if not isinstance(table, dict) or not all(isinstance(k, str) and _CURRENCY.fullmatch(k) and isinstance(v, str)
                                                  for k, v in table.items()):
            raise RateCardError(f"{name} maps three capital letters to a name", file=file, rule=str(entry))
    if set(not_billing) - set(codes):
        raise RateCardError(f"not_billing names codes not in codes: {', '.join(sorted(set(not_billing) - set(codes)))}",
                            file=file, rule=str(entry))
    _confidence(item["confidence"], file, str(entry))
    return CurrencyList(id=str(entry), citation=str(item["citation"]), codes=dict(codes), not_billing=dict(not_billing))


def load_ratebook(directory: str | Path, *, csv_rates: str | Path | None = None,
                  csv_tiers: str | Path | None = None) -> RateBook:
    """Read `rules/rates/` (market maps and cards); with `csv_rates`, Meta's CSV replaces the shipped cards.

    Raises RateCardError naming file and entry on any invalid card, map, date or price.
    A missing directory means no cards (every price is then unknown, with that reason).
    """
    root = Path(directory)
    digest = hashlib.sha256()
    maps: list[MarketMap] = []
    cards: list[RateCard] = []
    columns: list[PriceColumn] = []
    tiered: list[TieredCategories] = []
    files = sorted(p for p in root.rglob("*.yaml") if p.is_file()) if root.is_dir() else []
    for path in files:
        relative = str(path.relative_to(root.parent)) if root.parent != root else path.name
        raw = path.read_bytes()
        # ISO 4217's code list decides no charge and no price (it refuses input before a decision): it is left
        # out of the rate book's version, so a new code does not change every decision's rulebook_version.
        if path.name != CURRENCIES_FILE:
            digest.update(relative.encode() + b"\0" + raw + b"\0")
        document = _yaml(raw, relative)
        if not isinstance(document, dict) or not (set(_DOCUMENT_KEYS) & set(document)):
            raise RateCardError(f"a rates file holds {' or '.join(f'`{k}:`' for k in _DOCUMENT_KEYS)}",
                                file=relative)
        unknown = sorted(set(document) - set(_DOCUMENT_KEYS))
        if unknown:
            raise RateCardError(f"unknown key(s): {', '.join(unknown)}", file=relative)
        for item in document.get("market_maps") or []:
            maps.append(_market_map(item, relative))
        for item in document.get("price_columns") or []:
            columns.append(_price_column(item, relative))
        for item in document.get("volume_tiers") or []:
            tiered.append(_tiered(item, relative))
        if "currencies" in document:  # ISO 4217's codes: validated here, read by iso_4217()
            _currency_list(document["currencies"], relative)
        if "rate_card" in document:
            cards.append(_card(document["rate_card"], relative))
    if csv_rates:
        rates_path = Path(csv_rates)
        tiers_text = Path(csv_tiers).read_text(encoding="utf-8-sig") if csv_tiers else None
        raw_csv = rates_path.read_bytes()
        digest.update(str(rates_path).encode() + b"\0" + raw_csv + (tiers_text or "").encode())
        cards = [load_meta_csv(raw_csv.decode("utf-8-sig"), tiers_text, file=str(rates_path))]
    book = RateBook(cards=tuple(sorted(cards, key=lambda c: (c.currency, c.effective_from))),
                    maps=tuple(sorted(maps, key=lambda m: m.effective_from)),
                    version="sha256:" + digest.hexdigest()[:16],
                    columns=tuple(sorted(columns, key=lambda c: (c.category, c.effective_from))),
                    tiered=tuple(sorted(tiered, key=lambda t: t.effective_from)))
    check_ratebook(book)
    return book


def check_ratebook(book: RateBook) -> None:
    """Refuse overlapping cards (per currency) or maps, and any card market no map in force names."""
    ids: dict[str, str] = {}
    for entry in (*book.maps, *book.cards):
        if entry.id in ids:
            raise RateCardError(f"duplicate id (also in {ids[entry.id]})", file=entry.file, rule=entry.id)
        ids[entry.id] = entry.file
    _no_overlap(book.maps, "market map")
    _no_overlap(book.tiered, "volume_tiers entry")
    for currency in book.currencies():
        _no_overlap([c for c in book.cards if c.currency == currency], f"{currency} rate card")
    for category in sorted({c.category for c in book.columns}):
        _no_overlap([c for c in book.columns if c.category == category], f"price column of {category}")
    for card in book.cards:
        check_markets(card, book.maps)
        overlapping = [m for m in book.maps if _overlap(card, m)]
        if not card.partial and card.file.endswith(".yaml"):  # a shipped card; a business's CSV is its own
            for market_map in overlapping:
                absent = sorted(market_map.markets - set(card.rates))
                if absent:
                    raise RateCardError(f"lists no row for {', '.join(absent)} of market map {market_map.id}: "
                                        "mark the card `partial: true` if its source gives only some markets",
                                        file=card.file, rule=card.id)


def check_markets(card: RateCard, maps: tuple[MarketMap, ...] | list[MarketMap]) -> None:
    """Refuse a card market that a market map in force on any of the card's days does not name (`Narnia`): no
    recipient could ever be priced by that row. `rules lint` (check_ratebook) and `rates import` share this check.
    A card no map overlaps passes (priced nowhere until a map covers it; `gaps` reports it). Raises RateCardError
    naming the market, the map and, for a card read from a CSV, the row's line."""
    overlapping = [m for m in maps if _overlap(card, m)]
    for market in card.rates:
        missing = [m.id for m in overlapping if market not in m.markets]
        if missing:
            line = f"line {card.lines[market]}: " if market in card.lines else ""
            raise RateCardError(f"{line}unknown market {market!r}: market map {missing[0]} does not name it",
                                file=card.file, rule=card.id)


def gaps(book: RateBook) -> list[tuple[str, str, str]]:
    """Days the cards leave uncovered, as (file, id, message): a gap between two cards of one currency,
    between two market maps, or a card day no market map covers. Prices there are null (with the reason)."""
    found: list[tuple[str, str, str]] = []

    def runs(entries, what: str) -> None:
        ordered = sorted(entries, key=lambda e: e.effective_from)
        for before, after in zip(ordered, ordered[1:], strict=False):
            if before.effective_until is not None and (after.effective_from - before.effective_until).days > 1:
                found.append((after.file, after.id, f"gap between {what} {before.id} (until {before.effective_until})"
                                                    f" and this one (from {after.effective_from})"))

    runs(book.maps, "market map")
    for currency in book.currencies():
        runs([c for c in book.cards if c.currency == currency], f"{currency} rate card")
    for card in book.cards:
        day, last = card.effective_from, card.effective_until or max(
            [card.effective_from] + [m.effective_from for m in book.maps])
        while day <= last:
            market_map = book.map_on(day)
            if market_map is None:
                found.append((card.file, card.id, f"no market map covers {day} (the card's days from then are "
                                                  "priced nowhere)"))
                break
            if market_map.effective_until is None:
                break
            day = market_map.effective_until + timedelta(days=1)
    return found


def _no_overlap(entries, what: str) -> None:
    ordered = sorted(entries, key=lambda e: e.effective_from)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before.effective_until is None or before.effective_until >= after.effective_from:
            raise RateCardError(f"{what} overlaps {before.id} ({before.file}) from {after.effective_from}",
                                file=after.file, rule=after.id)


def _overlap(a, b) -> bool:
    return a.effective_from <= (b.effective_until or date.max) and b.effective_from <= (a.effective_until or date.max)


def _yaml(raw: bytes, file: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise RateCardError(f"not valid YAML: {error}", file=file) from None


def _keys(item: Any, allowed: set[str], required: tuple[str, ...], file: str, entry: str | None, what: str) -> None:
    if not isinstance(item, dict):
        raise RateCardError(f"{what} must be a mapping", file=file, rule=entry)
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise RateCardError(f"unknown {what} key(s): {', '.join(unknown)}", file=file, rule=entry)
    missing = [k for k in required if item.get(k) in (None, "")]
    if missing:
        raise RateCardError(f"{what} is missing {', '.join(missing)}", file=file, rule=entry)


def _dates(item: dict[str, Any], file: str, entry: str) -> tuple[date, date | None]:
    effective = item.get("effective")
    if not isinstance(effective, dict) or effective.get("from") is None:
        raise RateCardError("effective must be a mapping with from (and until)", file=file, rule=entry)
    unknown = sorted(set(effective) - {"from", "until"})
    if unknown:
        raise RateCardError(f"unknown effective key(s): {', '.join(unknown)}", file=file, rule=entry)
    start = _day(effective["from"], file, entry, "effective.from")
    until = None if effective.get("until") is None else _day(effective["until"], file, entry, "effective.until")
    if until is not None and until < start:
        raise RateCardError(f"effective.until {until} is before effective.from {start}", file=file, rule=entry)
    return start, until


def _day(value: Any, file: str, entry: str, what: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise RateCardError(f"{what} is not a date (YYYY-MM-DD): {value!r}", file=file, rule=entry) from None


def _confidence(value: Any, file: str, entry: str) -> str:
    if value not in CONFIDENCE:
        raise RateCardError(f"confidence must be one of C, S, R (got {value!r})", file=file, rule=entry)
    return str(value)


def price_value(value: Any, file: str, entry: str, where: str) -> Decimal | None:
    """A price cell: a non-negative decimal, or None for Meta's 'n/a' (null or empty).

    Only plain ASCII decimals are prices (`0.0625`, `12`); anything else (`1e999`, `1_2`, `٠.٠١`, `NaN`, `0x10`,
    `+1`, `.5`) raises RateCardError naming `where`, as does a negative price."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "n/a")):
        return None
    if isinstance(value, bool):
        raise RateCardError(f"{where}: {value!r} is not a price", file=file, rule=entry)
    text = str(value).strip()
    if not _PRICE.fullmatch(text):
        raise RateCardError(f"{where}: {value!r} is not a decimal price (digits, one optional dot: 0.0625)",
                            file=file, rule=entry)
    if text.startswith("-"):  # -0 too: a price is never written with a sign
        raise RateCardError(f"{where}: negative price {value}", file=file, rule=entry)
    return Decimal(text)


def _card(item: Any, file: str) -> RateCard:
    entry = item.get("id") if isinstance(item, dict) else None
    _keys(item, CARD_KEYS, ("id", "title", "currency", "basis", "citation", "source", "confidence", "columns",
                            "rates"), file, entry, "rate_card")
    entry = str(item["id"])
    currency = str(item["currency"])
    if problem := iso_4217().problem(currency):
        raise RateCardError(f"currency: {problem}", file=file, rule=entry)
    if item["basis"] not in BASES:
        raise RateCardError(f"basis must be one of {', '.join(BASES)} (got {item['basis']!r})", file=file, rule=entry)
    if tuple(item["columns"]) != COLUMNS:
        raise RateCardError(f"columns must be Meta's: {', '.join(COLUMNS)}", file=file, rule=entry)
    start, until = _dates(item, file, entry)
    rows = item["rates"]
    if not isinstance(rows, list) or not rows:
        raise RateCardError("rates must be a non-empty list of rows", file=file, rule=entry)
    partial = item.get("partial", False)
    if not isinstance(partial, bool):
        raise RateCardError(f"partial must be true or false (got {partial!r})", file=file, rule=entry)
    unsourced: set[tuple[str, str]] = set()
    rates = _rows(rows, currency, file, entry, unsourced if partial else None)
    tiers, tiers_source = _tiers(item.get("tiers"), rates, file, entry)
    return RateCard(
        id=entry, title=str(item["title"]), currency=currency, basis=str(item["basis"]), effective_from=start,
        effective_until=until, citation=str(item["citation"]), source=str(item["source"]),
        confidence=_confidence(item["confidence"], file, entry), rates=rates, tiers=tiers,
        tiers_source=tiers_source, note=" ".join(str(item.get("note", "")).split()), file=file,
        partial=partial, unsourced=frozenset(unsourced),
    )


def _rows(rows: list[Any], currency: str, file: str, entry: str, unsourced: set[tuple[str, str]] | None = None,
          lines: dict[tuple[str, str], int] | None = None) -> dict[str, dict[str, Decimal | None]]:
    """Rows of a card; with `unsourced` (a partial card) the cell `unsourced` is allowed and collected there. `lines`
    ((market, category) -> a CSV's line) puts the line in a price's refusal."""
    rates: dict[str, dict[str, Decimal | None]] = {}
    for number, row in enumerate(rows, start=1):
        where = f"rates row {number}"
        if not isinstance(row, list) or len(row) != len(COLUMNS):
            raise RateCardError(f"{where}: a row has {len(COLUMNS)} cells ({', '.join(COLUMNS)})", file=file,
                                rule=entry)
        market, row_currency, *prices = row
        if not isinstance(market, str) or not market.strip():
            raise RateCardError(f"{where}: market must be a name", file=file, rule=entry)
        if row_currency != currency:
            raise RateCardError(f"{where} ({market}): currency {row_currency!r} is not the card's {currency}",
                                file=file, rule=entry)
        if market in rates:
            raise RateCardError(f"{where}: market {market!r} listed twice", file=file, rule=entry)
        rates[market] = {}
        for category, value in zip(CATEGORIES, prices, strict=True):
            if value == UNSOURCED:
                if unsourced is None:
                    raise RateCardError(f"{where} ({market}): {category} is `unsourced`, allowed only on a card "
                                        "marked `partial: true`", file=file, rule=entry)
                unsourced.add((market, category))
                rates[market][category] = None
                continue
            line = (lines or {}).get((market, category))
            rates[market][category] = price_value(value, file, entry,
                                                  f"{f'line {line}: ' if line else ''}{market} {category}")
    return rates


def _tiers(block: Any, rates: dict[str, dict[str, Decimal | None]], file: str,
           entry: str) -> tuple[dict[str, dict[str, tuple[Tier, ...]]], str | None]:
    if block is None:
        return {}, None
    if not isinstance(block, dict) or not block.get("source"):
        raise RateCardError("tiers must be a mapping with a source and per-category tables", file=file, rule=entry)
    tiers: dict[str, dict[str, tuple[Tier, ...]]] = {}
    for category, table in block.items():
        if category == "source":
            continue
        if category not in CATEGORIES:
            raise RateCardError(f"tiers: unknown category {category!r}", file=file, rule=entry)
        if not isinstance(table, dict):
            raise RateCardError(f"tiers.{category} must map market -> [[from, to, rate], ...]", file=file, rule=entry)
        tiers[category] = {}
        for market, steps in table.items():
            if market not in rates:
                raise RateCardError(f"tiers.{category}: unknown market {market!r} (not in rates)", file=file,
                                    rule=entry)
            tiers[category][market] = _steps(steps, rates[market][category], file, entry, f"tiers.{category}.{market}")
    return tiers, str(block["source"])


def _steps(steps: Any, list_rate: Decimal | None, file: str, entry: str, where: str) -> tuple[Tier, ...]:
    if not isinstance(steps, list) or not steps:
        raise RateCardError(f"{where}: a non-empty list of [from, to, rate]", file=file, rule=entry)
    result: list[Tier] = []
    expected_first = 0
    for index, step in enumerate(steps):
        if not isinstance(step, list) or len(step) != 3:
            raise RateCardError(f"{where}[{index}]: a tier is [from, to, rate]", file=file, rule=entry)
        first, last, rate = step
        if not isinstance(first, int) or (last is not None and not isinstance(last, int)):
            raise RateCardError(f"{where}[{index}]: from and to are whole message counts", file=file, rule=entry)
        if first != expected_first:
            raise RateCardError(f"{where}[{index}]: starts at {first}, expected {expected_first} (gap or overlap)",
                                file=file, rule=entry)
        if last is not None and last < first:
            raise RateCardError(f"{where}[{index}]: to {last} is below from {first}", file=file, rule=entry)
        amount = price_value(rate, file, entry, f"{where}[{index}]")
        if amount is None:
            raise RateCardError(f"{where}[{index}]: a tier needs a rate", file=file, rule=entry)
        # Meta's first tier counts from 0 ("0 to 100,000" is the list rate for messages 1..100,000).
        result.append(Tier(first=max(first, 1), last=last, rate=amount))
        if last is None and index != len(steps) - 1:
            raise RateCardError(f"{where}[{index}]: only the last tier is open-ended", file=file, rule=entry)
        expected_first = (last or 0) + 1
    if result[-1].last is not None:
        raise RateCardError(f"{where}: the last tier must be open-ended (to: null)", file=file, rule=entry)
    if list_rate is None or result[0].rate != list_rate:
        raise RateCardError(f"{where}: the first tier's rate {result[0].rate} is not the list rate {list_rate}",
                            file=file, rule=entry)
    return tuple(result)


def _market_map(item: Any, file: str) -> MarketMap:
    entry = item.get("id") if isinstance(item, dict) else None
    _keys(item, MAP_KEYS, ("id", "title", "citation", "source", "confidence", "markets"), file, entry, "market map")
    entry = str(item["id"])
    start, until = _dates(item, file, entry)
    markets = item["markets"]
    if not isinstance(markets, dict) or not markets:
        raise RateCardError("markets must map market -> [ISO country codes]", file=file, rule=entry)
    countries: dict[str, str] = {}
    for market, codes in markets.items():
        if not isinstance(codes, list) or not codes:
            raise RateCardError(f"market {market!r}: list its ISO 3166 country codes", file=file, rule=entry)
        for code in codes:
            if not isinstance(code, str) or not _COUNTRY.fullmatch(code):
                raise RateCardError(f"market {market!r}: {code!r} is not an ISO 3166 alpha-2 code", file=file,
                                    rule=entry)
            if code in countries:
                raise RateCardError(f"{code} is in both {countries[code]!r} and {market!r}", file=file, rule=entry)
            countries[code] = str(market)
    otherwise = item.get("otherwise")
    return MarketMap(
        id=entry, title=str(item["title"]), effective_from=start, effective_until=until,
        citation=str(item["citation"]), source=str(item["source"]),
        confidence=_confidence(item["confidence"], file, entry), countries=countries,
        otherwise=str(otherwise) if otherwise else None, file=file,
    )


def _price_column(item: Any, file: str) -> PriceColumn:
    entry = item.get("id") if isinstance(item, dict) else None
    _keys(item, COLUMN_KEYS, ("id", "title", "category", "citation", "source", "confidence"), file, entry,
          "price column")
    entry = str(item["id"])
    start, until = _dates(item, file, entry)
    column = item.get("column")
    if column is not None and column not in CATEGORIES:
        raise RateCardError(f"column must be one of {', '.join(CATEGORIES)} or null (got {column!r})", file=file,
                            rule=entry)
    if column is None and not item.get("reason"):
        raise RateCardError("a category priced by no column needs a reason", file=file, rule=entry)
    per_participant = item.get("per_participant", False)
    if not isinstance(per_participant, bool):
        raise RateCardError("per_participant must be true or false", file=file, rule=entry)
    return PriceColumn(
        id=entry, title=str(item["title"]), category=str(item["category"]), column=column,
        per_participant=per_participant, reason=" ".join(str(item.get("reason") or "").split()),
        effective_from=start, effective_until=until, citation=str(item["citation"]), source=str(item["source"]),
        confidence=_confidence(item["confidence"], file, entry), file=file,
    )


def _tiered(item: Any, file: str) -> TieredCategories:
    entry = item.get("id") if isinstance(item, dict) else None
    _keys(item, TIERED_KEYS, ("id", "title", "categories", "citation", "source", "confidence"), file, entry,
          "volume_tiers entry")
    entry = str(item["id"])
    start, until = _dates(item, file, entry)
    categories = item["categories"]
    if not isinstance(categories, list) or any(c not in CATEGORIES for c in categories):
        raise RateCardError(f"categories must list card columns ({', '.join(CATEGORIES)})", file=file, rule=entry)
    return TieredCategories(id=entry, categories=tuple(categories), effective_from=start, effective_until=until,
                            citation=str(item["citation"]), confidence=_confidence(item["confidence"], file, entry),
                            file=file)


# --- the shared rate-card folder's CSV layouts ---------------------------------------------------

_LONG_HEADER = ("effective_from", "currency", "market", "category", "rate")
_WIDE_HEADER = ("effective_from", "currency", "market", *(c.replace("-", "_") for c in CATEGORIES))
_TIER_HEADER = ("effective_from", "currency", "market", "category", "from", "to", "rate")


def shared_layout(text: str) -> str | None:
    """'long' or 'wide' when the CSV has one of the shared folder's headers (see the module docstring), else None."""
    header = tuple(h.strip().lower() for h in next(csv.reader(io.StringIO(text)), []))
    if header[:len(_LONG_HEADER)] == _LONG_HEADER:
        return "long"
    if header[:len(_WIDE_HEADER)] == _WIDE_HEADER:
        return "wide"
    return None


def load_shared_csv(text: str, tiers_text: str | None = None, *, file: str = "rates.csv",
                    partial: bool | None = None) -> list[RateCard]:
    """Cards from the shared folder's wide or long CSV: one card per (currency, effective_from), in file order.

    In the long layout a (market, category) the file does not give is `unsourced` and every card is
    partial (it lists what a source quoted); in the wide layout `n/a` is Meta's n/a and a card is
    full unless `partial`. `authentication_international` is read as Meta's
    `authentication-international`. `tiers_text` is the long volume-tier layout; a band written from
    its predecessor's upper bound (0-250,000 then 250,000-2,000,000) starts one message later, as in
    Meta's own tables. A card's end date is not in these files (see `card_yaml`). Raises
    RateCardError naming the file and the line.
    """
    layout = shared_layout(text)
    if layout is None:
        raise RateCardError(f"header must be {','.join(_LONG_HEADER)} (long) or {','.join(_WIDE_HEADER)} (wide)",
                            file=file, rule=Path(file).name)
    cells: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    lines: dict[tuple[str, str], dict[str, int]] = {}
    cell_lines: dict[tuple[str, str], dict[tuple[str, str], int]] = {}  # per card, (market, category) -> line
    for line, row in _headed_rows(text, file, "line"):
        where = f"line {line}"
        start = _csv_day(row.get("effective_from"), file, where)
        currency = (row.get("currency") or "").strip()
        market = (row.get("market") or "").strip()
        if not market:
            raise RateCardError(f"{where}: needs a market", file=file, rule=Path(file).name)
        if problem := iso_4217().problem(currency):
            raise RateCardError(f"{where}: currency: {problem}", file=file, rule=Path(file).name)
        card = cells.setdefault((currency, start.isoformat()), {})
        lines.setdefault((currency, start.isoformat()), {}).setdefault(market, line)
        if layout == "wide":
            if market in card:
                raise RateCardError(f"{where}: market {market!r} listed twice", file=file, rule=Path(file).name)
            card[market] = {c: row.get(c.replace("-", "_")) for c in CATEGORIES}
            cell_lines.setdefault((currency, start.isoformat()), {}).update({(market, c): line for c in CATEGORIES})
            continue
        category = _category((row.get("category") or "").strip(), file, where)
        prices = card.setdefault(market, {})
        if category in prices:
            raise RateCardError(f"{where}: {market} {category} given twice", file=file, rule=Path(file).name)
        prices[category] = row.get("rate")
        cell_lines.setdefault((currency, start.isoformat()), {})[(market, category)] = line
    tier_rows = _shared_tiers(tiers_text, file) if tiers_text else {}
    cards = []
    for (currency, start), markets in cells.items():
        entry = f"{Path(file).name} {currency} {start}"
        is_partial = layout == "long" if partial is None else partial
        table = [[market, currency, *(prices.get(c, UNSOURCED) if is_partial else prices.get(c) for c in CATEGORIES)]
                 for market, prices in markets.items()]
        unsourced: set[tuple[str, str]] = set()
        rates = _rows(table, currency, file, entry, unsourced if is_partial else None,
                      cell_lines[(currency, start)])
        steps = tier_rows.get((currency, start), {})
        tiers = {category: {market: _steps(bands, rates.get(market, {}).get(category), file, entry,
                                           f"tiers.{category}.{market}")
                            for market, bands in by_market.items() if _known(market, rates, file, entry)}
                 for category, by_market in steps.items()}
        day = date.fromisoformat(start)
        cards.append(RateCard(
            id=f"shared-{currency.lower()}-{start}",
            title=f"Cost per message in {currency} on the WhatsApp Business Platform, effective "
                  f"{day.strftime('%B')} {day.day}, {day.year}" + (" (partial copy)" if is_partial else ""),
            currency=currency, basis="message", effective_from=day, effective_until=None,
            citation="https://developers.facebook.com/docs/whatsapp/pricing", source=file, confidence="S",
            rates=rates, tiers=tiers, tiers_source=f"{file} (volume tiers)" if tiers else None,
            note="", file=file, partial=is_partial, unsourced=frozenset(unsourced), lines=lines[(currency, start)],
        ))
    return cards


def _shared_tiers(text: str, file: str) -> dict[tuple[str, str], dict[str, dict[str, list[list[Any]]]]]:
    header = tuple(h.strip().lower() for h in next(csv.reader(io.StringIO(text)), []))
    if header[:len(_TIER_HEADER)] != _TIER_HEADER:
        raise RateCardError(f"volume tiers: header must start {','.join(_TIER_HEADER)}", file=file,
                            rule=Path(file).name)
    found: dict[tuple[str, str], dict[str, dict[str, list[list[Any]]]]] = {}
    for line, row in _headed_rows(text, file, "volume tiers line"):
        where = f"volume tiers line {line}"
        start = _csv_day(row.get("effective_from"), file, where).isoformat()
        category = _category((row.get("category") or "").strip(), file, where)
        bands = found.setdefault(((row.get("currency") or "").strip(), start), {}).setdefault(
            category, {}).setdefault((row.get("market") or "").strip(), [])
        try:
            first = _count(row.get("from") or "")
            last = None if not (row.get("to") or "").strip() else _count(row["to"])
        except ValueError:
            raise RateCardError(f"{where}: from and to are whole message counts", file=file,
                                rule=Path(file).name) from None
        if bands and first == bands[-1][1]:
            first += 1  # written from the previous band's upper bound: the band starts at the next message
        bands.append([first, last, row.get("rate")])
    return found


def _headed_rows(text: str, file: str, where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each row of a CSV under its header line, as {column: cell}, with the line the row ends on. Raises
    RateCardError naming the line of a row with fewer or more cells than the header: csv.DictReader fills missing
    cells with None (a wide row `2025-10-01,INR,Brazil,4.5` left its other categories unpriced) and keeps extra
    ones aside, and both were read as if the row were whole."""
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        extra = row.pop(None, None)  # type: ignore[call-overload]  # DictReader's restkey: the cells past the header
        missing = [name for name, cell in row.items() if cell is None]  # its restval: the cells short of it
        if extra is not None or missing:
            given = len(reader.fieldnames or ()) + len(extra or ()) - len(missing)
            raise RateCardError(f"{where} {reader.line_num}: {given} cells where the header has "
                                f"{len(reader.fieldnames or ())} ({','.join(reader.fieldnames or ())})",
                                file=file, rule=Path(file).name)
        yield reader.line_num, row


def _csv_day(value: str | None, file: str, where: str) -> date:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        raise RateCardError(f"{where}: effective_from is not a date (YYYY-MM-DD): {value!r}", file=file,
                            rule=Path(file).name) from None


def _category(value: str, file: str, where: str) -> str:
    category = value.replace("_", "-")
    if category not in CATEGORIES:
        raise RateCardError(f"{where}: unknown category {value!r} (one of {', '.join(CATEGORIES)})", file=file,
                            rule=Path(file).name)
    return category


# --- Meta's downloaded CSV -----------------------------------------------------------------------

def load_meta_csv(text: str, tiers_text: str | None = None, *, file: str = "rates.csv",
                  source: str | None = None) -> RateCard:
    """A card from Meta's rate card CSV ("Cost per message in USD ..., effective April 1, 2026").

    The title line gives the effective date and the basis (per message / per conversation); the
    header row is `Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service`
    (Meta breaks the last-but-one name over two lines); `n/a` means no rate. `tiers_text` is Meta's
    volume-tier CSV for the same currency (Utility / Authentication / Authentication-International
    sections of From, To, Rate type, Rate, vs. List rate). The card has no end date: it is the
    business's current card. Raises RateCardError naming the file and the row.
    """
    reader = csv.reader(io.StringIO(text))
    rows, ends = [], []  # each record, and the line it ends on (a quoted cell may span lines)
    for row in reader:
        rows.append(row)
        ends.append(reader.line_num)
    entry = Path(file).name
    header_at = next((i for i, row in enumerate(rows) if row and _norm(row[0]) == "market"), None)
    if header_at is None:
        raise RateCardError("no header row starting with Market", file=file, rule=entry)
    header = [_norm(cell) for cell in rows[header_at]]
    wanted = [_norm(c) for c in COLUMNS]
    if header[:len(wanted)] != wanted:
        raise RateCardError(f"header must be Meta's columns {', '.join(COLUMNS)} (got {', '.join(header)})",
                            file=file, rule=entry)
    preamble = " ".join(" ".join(r) for r in rows[:header_at])
    title = " ".join(rows[0][0].split()) if rows[0] else entry
    effective = _title_date(preamble)
    if effective is None:
        raise RateCardError("the title line names no effective date ('effective April 1, 2026')", file=file,
                            rule=entry)
    basis = "conversation" if "per conversation" in preamble.lower() else "message"
    numbered = [(ends[i], r[:len(COLUMNS)]) for i, r in enumerate(rows) if i > header_at and r and r[0].strip()]
    for i, row in enumerate(rows):  # a row short of Meta's columns, or with more cells filled, is no card's row
        if i > header_at and row and row[0].strip() and (
                len(row) < len(COLUMNS) or any(cell.strip() for cell in row[len(COLUMNS):])):
            raise RateCardError(f"line {ends[i]}: {len(row)} cells where Meta's rows have {len(COLUMNS)} "
                                f"({', '.join(COLUMNS)})", file=file, rule=entry)
    body = [r for _, r in numbered]
    if not body:
        raise RateCardError("no market rows under the header", file=file, rule=entry)
    currencies = {r[1].strip() for r in body}
    if len(currencies) != 1:
        raise RateCardError(f"one currency per card (got {', '.join(sorted(currencies))})", file=file, rule=entry)
    currency = currencies.pop()
    if problem := iso_4217().problem(currency):
        raise RateCardError(f"currency: {problem}", file=file, rule=entry)
    cells = [[r[0].strip(), r[1].strip(), *r[2:]] for r in body]
    rates = _rows(cells, currency, file, entry,
                  lines={(r[0].strip(), c): line for line, r in reversed(numbered) for c in CATEGORIES})
    tiers: dict[str, dict[str, tuple[Tier, ...]]] = {}
    tiers_source = None
    if tiers_text is not None:
        tiers = _csv_tiers(tiers_text, rates, file, entry)
        tiers_source = f"{file} (volume tiers)"
    return RateCard(
        id=f"csv-{currency.lower()}-{effective.isoformat()}", title=title, currency=currency,
        basis=basis, effective_from=effective, effective_until=None,
        citation="https://developers.facebook.com/docs/whatsapp/pricing", source=source or file, confidence="C",
        rates=rates, tiers=tiers, tiers_source=tiers_source, note="Meta's CSV, supplied by the business", file=file,
        lines={r[0].strip(): line for line, r in reversed(numbered)},
    )


def _csv_tiers(text: str, rates: dict[str, dict[str, Decimal | None]], file: str,
               entry: str) -> dict[str, dict[str, tuple[Tier, ...]]]:
    reader = csv.reader(io.StringIO(text))
    rows, ends = [], []  # each record, and the line it ends on (Meta's header cell spans two lines)
    for row in reader:
        rows.append(row)
        ends.append(reader.line_num)
    sections = next((r for r in rows if any(_norm(c) == "utility" for c in r)), None)
    header_at = next((i for i, r in enumerate(rows) if len(r) > 2 and _norm(r[2]) == "from"), None)
    if sections is None or header_at is None:
        raise RateCardError("volume tiers: no Utility/Authentication section row or From/To header", file=file,
                            rule=entry)
    width = len(rows[header_at])
    for i in range(header_at + 1, len(rows)):  # a filled cell past the header's columns was ignored without a word
        if any(cell.strip() for cell in rows[i][width:]):
            raise RateCardError(f"volume tiers line {ends[i]}: {len(rows[i])} cells where the header has {width}",
                                file=file, rule=entry)
    starts = {_norm(c): i for i, c in enumerate(sections) if _norm(c) in
              ("utility", "authentication", "authentication-international")}
    tables: dict[str, dict[str, list[list[Any]]]] = {c: {} for c in starts}
    market = None
    for row in rows[header_at + 1:]:
        if not row:
            continue
        if row[0].strip():
            market = row[0].strip()
        if market is None:
            continue
        for category, start in starts.items():
            first, last, _kind, rate = (row + [""] * 5)[start:start + 4]
            if first.strip().lower() in ("", "n/a"):
                continue
            tables[category].setdefault(market, []).append([_count(first), None if last.strip() == "--"
                                                            else _count(last), rate])
    return {category: {m: _steps(steps, rates.get(m, {}).get(category), file, entry, f"tiers.{category}.{m}")
                       for m, steps in table.items() if _known(m, rates, file, entry)}
            for category, table in tables.items()}


def _known(market: str, rates: dict[str, Any], file: str, entry: str) -> bool:
    if market not in rates:
        raise RateCardError(f"volume tiers: unknown market {market!r} (not in the rate card)", file=file, rule=entry)
    return True


def _count(text: str) -> int:
    return int(text.replace(",", "").strip())


def _norm(cell: str) -> str:
    return re.sub(r"[\s-]+", "-", cell.strip().lower()).replace("-(per-rate-card)", "")


def _title_date(title: str) -> date | None:
    match = _TITLE_DATE.search(" ".join(title.split()))
    if not match:
        return None
    return datetime.strptime(match.group(1), "%B %d, %Y").date()


def card_yaml(card: RateCard, *, card_id: str, until: date | None, source: str, tiers_source: str | None,
              confidence: str, note: str = "", title: str | None = None) -> str:
    """A card as a `rules/rates/*.yaml` file (Meta's column order, prices as decimal strings), for review.

    Used by `policy-service rates import` to carry a downloaded CSV over with its source address.
    """
    def cell(market: str, category: str) -> str:
        if (market, category) in card.unsourced:
            return UNSOURCED
        value = card.rates[market][category]
        return "null" if value is None else f'"{value}"'

    lines = [
        "rate_card:",
        f"  id: {card_id}",
        f"  title: {_scalar(title or card.title)}",
        f"  currency: {card.currency}",
        f"  basis: {card.basis}",
        f"  effective: {{from: {card.effective_from.isoformat()}, until: {until.isoformat() if until else 'null'}}}",
        f"  citation: {card.citation}",
        f"  source: {_scalar(source)}",
        f"  confidence: {confidence}",
    ]
    if note:
        lines.append(f"  note: {_scalar(note)}")
    if card.partial:
        lines.append("  partial: true  # lists only what its source gives; any other market or cell has no price")
    lines.append(f"  columns: [{', '.join(COLUMNS)}]")
    lines.append("  rates:")
    for market in card.rates:
        cells = ", ".join(cell(market, c) for c in CATEGORIES)
        lines.append(f"    - [{_quote(market)}, {card.currency}, {cells}]")
    if card.tiers:
        lines.append("  tiers:")
        lines.append(f"    source: {_scalar(tiers_source or card.tiers_source or '')}")
        for category, table in card.tiers.items():
            if not table:
                continue
            lines.append(f"    {category}:  # [from, to, rate]: messages this month, per portfolio and market")
            for market, steps in table.items():
                rows = ", ".join(f"[{0 if i == 0 else t.first}, {'null' if t.last is None else t.last}, \"{t.rate}\"]"
                                 for i, t in enumerate(steps))
                lines.append(f"      {_quote(market)}: [{rows}]")
    return "\n".join(lines) + "\n"


def _scalar(text: str) -> str:
    """A one-line YAML scalar (quoted when it must be)."""
    return yaml.safe_dump(text, width=10_000, allow_unicode=True).splitlines()[0]


def _quote(text: str) -> str:
    return f'"{text}"' if any(ch in text for ch in "&:#,") else text
