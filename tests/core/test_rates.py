"""Rate cards and market maps load strictly: every refusal names the file and the card or map."""

import re
import shutil
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from policy_service.core.rates import (
    RateCardError,
    card_yaml,
    gaps,
    load_meta_csv,
    load_ratebook,
    load_shared_csv,
)

from ..conftest import RULES_DIR

RATES = RULES_DIR / "rates"
META_CSV = """\
"Cost per message in USD on the WhatsApp Business Platform, effective April 1, 2026",,,,,,
We charge on a per-message basis on the WhatsApp Business Platform. Learn more here:,,,,https://x,,
Market,Currency,Marketing,Utility,Authentication,"Authentication-
International",Service
Brazil,USD,0.0625,0.0068,0.0068,n/a,n/a
India,USD,0.0118,0.0014,0.0014,0.0304,n/a
Other,USD,0.0604,0.0077,0.0077,n/a,n/a
"""
SECTION = ",From,To,Rate type,Rate,vs. List rate"
META_TIERS = """\
"Cost per message in USD ..., effective April 1, 2026 - Reflecting volume tiers",,,,,,,,,,,,,,,,
,,Utility,,,,,Authentication,,,,,Authentication-International,,,,
"Market
(per rate card)",Currency{SECTION}{SECTION}{SECTION}
Brazil,USD,0,"250,000",List rate,0.0068,0%,0,"500,000",List rate,0.0068,0%,n/a,n/a,n/a,n/a,n/a
,USD,"250,001",--,Tier rate,0.0065,-5%,"500,001",--,Tier rate,0.0065,-5%,n/a,n/a,n/a,n/a,n/a
India,USD,0,"25,000,000",List rate,0.0014,0%,0,"750,000",List rate,0.0014,0%,0,"750,000",List rate,0.0304,0%
,USD,"25,000,001",--,Tier rate,0.0013,-6%,"750,001",--,Tier rate,0.0013,-6%,"750,001",--,Tier rate,0.0286,-6%
""".replace("{SECTION}", SECTION)


@pytest.fixture
def rates_dir(tmp_path):
    target = tmp_path / "rates"
    shutil.copytree(RATES, target)
    return target


def _edit(path, old, new):
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_shipped_cards_load_with_their_sources():
    """The shipped cards and maps load, and every card names where its numbers were carried from."""
    book = load_ratebook(RATES)
    assert [c.id for c in book.cards] == [
        "meta-aed-2026-10-01", "meta-brl-2026-07-01", "meta-brl-2026-10-01", "meta-eur-2026-07-01",
        "meta-eur-2026-10-01", "meta-inr-2025-10-01", "meta-inr-2026-01-01", "meta-usd-2026-04-01",
        "meta-usd-2026-07-01", "meta-usd-2026-10-01"]
    assert all(c.source and c.confidence == "S" for c in book.cards)
    card = book.card_on(date(2026, 5, 1), "USD")
    assert card.source.startswith("https://github.com/") and card.tiers_source.startswith("https://github.com/")
    assert card.rates["Rest of Latin America"]["marketing"] == Decimal("0.0740")
    assert card.rates["India"]["authentication-international"] == Decimal("0.0304")
    assert card.rates["Brazil"]["service"] is None  # Meta writes n/a
    assert book.map_on(date(2026, 5, 1)).market_of("PR") == "Rest of Latin America"
    assert book.map_on(date(2026, 5, 1)).market_of("KZ") == "Other"
    assert book.card_on(date(2027, 1, 1), "USD") is None
    assert gaps(book) == []


def test_unknown_market_is_refused(rates_dir):
    """A card market that the market map in force does not name is refused, naming file and card."""
    path = rates_dir / "meta-usd-2026-04-01.yaml"
    path.write_text(path.read_text().replace("Chile", "Chilly"))  # its row and its tier tables
    with pytest.raises(RateCardError, match=r"rates/meta-usd-2026-04-01.yaml:meta-usd-2026-04-01: unknown market "
                                            r"'Chilly'"):
        load_ratebook(rates_dir)


def test_negative_price_is_refused(rates_dir):
    """A negative rate is refused with the market and category named."""
    _edit(rates_dir / "meta-usd-2026-04-01.yaml", '[Chile, USD, "0.0889"', '[Chile, USD, "-0.0889"')
    with pytest.raises(RateCardError, match=r"meta-usd-2026-04-01: Chile marketing: negative price -0.0889"):
        load_ratebook(rates_dir)


def test_overlapping_cards_are_refused(rates_dir):
    """Two cards of one currency in force on the same day are refused."""
    text = (rates_dir / "meta-usd-2026-04-01.yaml").read_text()
    (rates_dir / "second.yaml").write_text(text.replace("id: meta-usd-2026-04-01", "id: second")
                                           .replace("from: 2026-04-01", "from: 2026-06-01"))
    with pytest.raises(RateCardError, match=r"second.yaml:second: USD rate card overlaps meta-usd-2026-04-01"):
        load_ratebook(rates_dir)


def test_card_without_dates_is_refused(rates_dir):
    """A card must say from when it is in force."""
    _edit(rates_dir / "meta-usd-2026-04-01.yaml", "effective: {from: 2026-04-01, until: 2026-06-30}", "title2: x")
    with pytest.raises(RateCardError, match="unknown rate_card key"):
        load_ratebook(rates_dir)
    _edit(rates_dir / "meta-usd-2026-04-01.yaml", "title2: x", "effective: {until: 2026-06-30}")
    with pytest.raises(RateCardError, match="effective must be a mapping with from"):
        load_ratebook(rates_dir)


def test_tiers_with_a_gap_or_a_wrong_list_rate_are_refused(rates_dir):
    """Tier tables must run on without gaps and start at the card's list rate."""
    path = rates_dir / "meta-usd-2026-04-01.yaml"
    _edit(path, '[100001, 1000000, "0.0247"]', '[100002, 1000000, "0.0247"]')
    with pytest.raises(RateCardError, match=r"tiers.utility.Argentina\[1\]: starts at 100002, expected 100001"):
        load_ratebook(rates_dir)
    _edit(path, '[100002, 1000000, "0.0247"]', '[100001, 1000000, "0.0247"]')
    _edit(path, 'Argentina: [[0, 100000, "0.0260"]', 'Argentina: [[0, 100000, "0.0261"]')
    with pytest.raises(RateCardError, match="first tier's rate 0.0261 is not the list rate 0.0260"):
        load_ratebook(rates_dir)


def test_overlapping_market_maps_and_double_listed_countries_are_refused(rates_dir):
    """A country in two markets of one map, or two maps on one day, is refused."""
    path = rates_dir / "markets.yaml"
    _edit(path, "Brazil: [BR]", "Brazil: [BR, AR]")
    with pytest.raises(RateCardError, match="AR is in both 'Argentina' and 'Brazil'"):
        load_ratebook(rates_dir)
    _edit(path, "Brazil: [BR, AR]", "Brazil: [BR]")
    text = path.read_text()
    first = text.split("market_maps:\n", 1)[1].split("  - id: meta-markets-2026-07")[0]
    path.write_text(text + first.replace("id: meta-markets-2025-10", "id: again"))
    with pytest.raises(RateCardError, match="market map overlaps meta-markets-2025-10"):
        load_ratebook(rates_dir)


def test_meta_csv_reads_rates_tiers_and_effective_date():
    """Meta's downloaded CSV (preamble, broken header, n/a, tier sections) becomes a card."""
    card = load_meta_csv(META_CSV, META_TIERS, file="USD_rates.csv")
    assert (card.currency, card.effective_from, card.basis) == ("USD", date(2026, 4, 1), "message")
    assert card.rates["India"] == {"marketing": Decimal("0.0118"), "utility": Decimal("0.0014"),
                                   "authentication": Decimal("0.0014"),
                                   "authentication-international": Decimal("0.0304"), "service": None}
    india = card.tiers["authentication-international"]["India"]
    assert [(t.first, t.last, t.rate) for t in india] == [(1, 750_000, Decimal("0.0304")),
                                                          (750_001, None, Decimal("0.0286"))]
    assert "Brazil" not in card.tiers["authentication-international"]


def test_meta_csv_errors_name_the_file():
    """A CSV without Meta's header, or a tier table for an unknown market, is refused by file name."""
    with pytest.raises(RateCardError, match="my.csv:my.csv: no header row starting with Market"):
        load_meta_csv("a,b\n1,2\n", file="my.csv")
    with pytest.raises(RateCardError, match="unknown market 'India'"):
        load_meta_csv(META_CSV.replace("India,USD,0.0118,0.0014,0.0014,0.0304,n/a\n", ""), META_TIERS, file="x.csv")


def test_setting_a_csv_replaces_the_shipped_cards(tmp_path):
    """With a CSV named, that card alone prices; the shipped market map still places countries."""
    rates, tiers = tmp_path / "USD.csv", tmp_path / "USD_tiers.csv"
    rates.write_text(META_CSV)
    tiers.write_text(META_TIERS)
    book = load_ratebook(RATES, csv_rates=rates, csv_tiers=tiers)
    assert [c.id for c in book.cards] == ["csv-usd-2026-04-01"]
    assert book.cards[0].effective_until is None


def test_a_business_csv_with_a_market_no_map_names_is_refused_naming_its_line(tmp_path):
    """The RATE_CARDS setting's CSV goes through the check `rules lint` and `rates import` use (check_markets): a
    row for Narnia is refused naming the file, the row's line (Meta's header spans two lines) and the market."""
    rates = tmp_path / "USD.csv"
    rates.write_text(META_CSV.replace("Other,USD", "Narnia,USD"))
    with pytest.raises(RateCardError, match=r"USD.csv:csv-usd-2026-04-01: line 7: unknown market 'Narnia': "
                                            r"market map meta-markets-2025-10 does not name it"):
        load_ratebook(RATES, csv_rates=rates)


def test_card_yaml_round_trips(tmp_path):
    """A CSV carried over by card_yaml loads back to the same prices and tiers."""
    card = load_meta_csv(META_CSV, META_TIERS, file="USD_rates.csv")
    folder = tmp_path / "rates"
    folder.mkdir()
    shutil.copy(RATES / "markets.yaml", folder)
    card = replace(card, partial=True)  # three markets of Meta's card: a partial copy
    (folder / "card.yaml").write_text(card_yaml(card, card_id="c", until=date(2026, 6, 30), source="https://s",
                                                tiers_source="https://t", confidence="S"))
    loaded = load_ratebook(folder).cards[0]
    assert (loaded.rates, loaded.tiers) == (card.rates, card.tiers)


SHARED = Path("/work/shared/data/rate-cards")  # read only when present (the shipped cards were imported from it)


def test_market_maps_follow_meta_by_period():
    """July 2026 makes Poland, Romania and Hungary standalone; October 2026 nine more, Bangladesh among them."""
    book = load_ratebook(RATES)
    june, july, october = date(2026, 6, 30), date(2026, 7, 1), date(2026, 10, 1)
    assert [book.map_on(d).market_of("PL") for d in (june, july)] == ["Rest of Central & Eastern Europe", "Poland"]
    assert [book.map_on(d).market_of("HU") for d in (june, july)] == ["Rest of Central & Eastern Europe", "Hungary"]
    assert [book.map_on(d).market_of("BD") for d in (july, october)] == ["Rest of Asia Pacific", "Bangladesh"]
    assert [book.map_on(d).market_of("KZ") for d in (july, october)] == ["Other", "Kazakhstan"]
    assert book.map_on(date(2025, 10, 1)).market_of("ZW") == "Rest of Africa"


def test_a_full_card_must_list_every_market_and_unsourced_cells_need_a_partial_card(rates_dir):
    """A card not marked partial that leaves out a market of the map, or writes `unsourced`, is refused."""
    path = rates_dir / "meta-inr-2025-10-01.yaml"
    text = path.read_text()
    path.write_text("\n".join(line for line in text.split("\n") if not line.startswith("    - [Peru,")))
    with pytest.raises(RateCardError, match="lists no row for Peru of market map meta-markets-2025-10"):
        load_ratebook(rates_dir)
    path.write_text(text.replace('[Peru, INR, "5.1536"', "[Peru, INR, unsourced"))
    with pytest.raises(RateCardError, match="allowed only on a card marked `partial: true`"):
        load_ratebook(rates_dir)


def test_gaps_between_cards_and_maps_are_reported(rates_dir):
    """A day between two cards of a currency, or a card day without a market map, is a gap (lint error)."""
    _edit(rates_dir / "meta-usd-2026-07-01.yaml", "from: 2026-07-01", "from: 2026-07-02")
    _edit(rates_dir / "markets.yaml", "{from: 2026-10-01, until: 2026-12-31}", "{from: 2026-10-02, until: 2026-12-31}")
    found = gaps(load_ratebook(rates_dir))
    assert ("rates/meta-usd-2026-07-01.yaml", "meta-usd-2026-07-01",
            "gap between USD rate card meta-usd-2026-04-01 (until 2026-06-30) and this one (from 2026-07-02)") in found
    assert any(f[1] == "meta-markets-2026-10" and "gap between market map" in f[2] for f in found)
    assert any(f[1] == "meta-aed-2026-10-01" and "no market map covers 2026-10-01" in f[2] for f in found)


LONG = """effective_from,currency,market,category,rate,source_ref,note
2026-10-01,BRL,Brazil,marketing,0.3217,S5,
2026-10-01,BRL,Brazil,utility,0.035,S5,
2026-10-01,AED,Bangladesh,authentication_international,0.3526,S7,
"""
LONG_TIERS = """effective_from,currency,market,category,from,to,rate,vs_list,source_ref
2026-10-01,BRL,Brazil,utility,0,250000,0.035,0%,S5
2026-10-01,BRL,Brazil,utility,250000,,0.0333,-5%,S5
"""


def test_the_shared_long_layout_reads_one_partial_card_per_currency_and_date():
    """Rows not given are unsourced (not n/a); a band written from its predecessor's bound starts one later."""
    brl, aed = load_shared_csv(LONG, LONG_TIERS, file="long.csv")
    assert (brl.currency, brl.effective_from, brl.partial) == ("BRL", date(2026, 10, 1), True)
    assert brl.rates["Brazil"]["marketing"] == Decimal("0.3217")
    assert ("Brazil", "authentication") in brl.unsourced and ("Brazil", "marketing") not in brl.unsourced
    assert [(t.first, t.last) for t in brl.tiers["utility"]["Brazil"]] == [(1, 250_000), (250_001, None)]
    assert aed.rates["Bangladesh"]["authentication-international"] == Decimal("0.3526")
    with pytest.raises(RateCardError, match="line 2: unknown category 'promo'"):
        load_shared_csv(LONG.replace("marketing,0.3217", "promo,0.3217"), file="long.csv")


WIDE = ("effective_from,currency,market,marketing,utility,authentication,authentication_international,service\n"
        "2025-10-01,INR,Brazil,4.5,0.6,0.6,n/a,n/a\n")


def test_a_csv_row_with_fewer_or_more_cells_than_its_header_is_refused_naming_its_line():
    """csv.DictReader gave a wide row `2025-10-01,INR,Brazil,4.5` its missing categories as None (the card then
    left them unpriced) and kept a row's extra cell aside: a row of the shared layouts (rates and volume tiers) or of
    Meta's CSV (and its volume tiers: a filled cell past their header) with fewer or more cells than its header is a
    RateCardError naming the line; whole rows (and empty trailing cells) still load."""
    [card] = load_shared_csv(WIDE, file="wide.csv")
    assert card.rates["Brazil"]["utility"] == Decimal("0.6")
    cases = [(WIDE + "2025-10-01,INR,India,4.5\n", "line 3: 4 cells where the header has 8"),
             (WIDE.replace("n/a,n/a\n", "n/a,n/a,x\n"), "line 2: 9 cells where the header has 8"),
             (LONG + "2026-10-01,BRL,Brazil,service\n", "line 5: 4 cells where the header has 7"),
             (LONG.replace("0.035,S5,", "0.035,S5,,extra"), "line 3: 8 cells where the header has 7")]
    for text, message in cases:
        with pytest.raises(RateCardError, match=message):
            load_shared_csv(text, file="shared.csv")
    with pytest.raises(RateCardError, match="volume tiers line 2: 7 cells where the header has 9"):
        load_shared_csv(LONG, LONG_TIERS.replace("0.035,0%,S5", "0.035"), file="long.csv")
    for text, line in ((META_CSV.replace("n/a,n/a\nIndia", "n/a\nIndia"), 5),
                       (META_CSV.replace("0.0304,n/a", "0.0304,n/a,0.5"), 6)):
        with pytest.raises(RateCardError, match=f"line {line}: [0-9] cells where Meta's rows have 7"):
            load_meta_csv(text, file="USD.csv")
    assert load_meta_csv(META_CSV.replace("0.0304,n/a", "0.0304,n/a,,"), file="USD.csv").rates["India"]
    with pytest.raises(RateCardError, match="volume tiers line 7: 19 cells where the header has 17"):
        load_meta_csv(META_CSV, META_TIERS.replace(",0.0304,0%\n", ",0.0304,0%,9,9\n"), file="USD.csv")
    assert load_meta_csv(META_CSV, META_TIERS.replace(",0.0304,0%\n", ",0.0304,0%,,\n"), file="USD.csv").tiers


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared rate-card folder is not on this machine")
def test_shipped_partial_cards_equal_the_shared_folder():
    """Every number of the shipped cards imported from the shared folder is the folder's, unchanged."""
    book = load_ratebook(RATES)
    shipped = {(c.currency, c.effective_from): c for c in book.cards}
    for name, tiers in (("partial-rates-2026.csv", "volume-tiers-2026.csv"), ("meta-inr-2025-10-01.csv", None)):
        cards = load_shared_csv((SHARED / name).read_text(),
                                (SHARED / tiers).read_text() if tiers else None, file=name)
        for card in cards:
            twin = shipped[(card.currency, card.effective_from)]
            assert (twin.rates, twin.unsourced, twin.tiers, twin.partial) == (
                card.rates, card.unsourced, card.tiers, card.partial)


def test_a_card_or_csv_in_a_code_that_is_no_iso_4217_currency_is_refused(tmp_path):
    """A card's currency is checked against ISO 4217's codes (rules/rates/currencies.yaml), as every request's is:
    XYZ (three capital letters) and XAU (gold) are refused naming the card; MXN (ISO 4217's, no card yet) loads."""
    folder = tmp_path / "rates"
    shutil.copytree(RATES, folder)
    card = folder / "meta-usd-2026-04-01.yaml"
    for code, problem in (("XYZ", "'XYZ' is not an ISO 4217 currency code"),
                          ("XAU", "XAU is ISO 4217's code for gold")):
        card.write_text((RATES / "meta-usd-2026-04-01.yaml").read_text().replace("USD", code))
        with pytest.raises(RateCardError, match=problem):
            load_ratebook(folder)
    with pytest.raises(RateCardError, match="currency: 'XYZ' is not an ISO 4217"):
        load_meta_csv(META_CSV.replace(",USD,", ",XYZ,"), file="x.csv")
    card.write_text((RATES / "meta-usd-2026-04-01.yaml").read_text().replace("USD", "MXN"))
    assert "MXN" in load_ratebook(folder).currencies()


def test_the_iso_4217_list_is_data_checked_like_a_card():
    """rules/rates/currencies.yaml loads with the rates (a malformed one is a lint error) and lists every card's
    currency; the codes no bill is in are ISO 4217's own."""
    from policy_service.core.rates import iso_4217

    codes = iso_4217()
    assert set(load_ratebook(RATES).currencies()) <= set(codes.billing)
    assert {"USD", "BRL", "MXN", "XOF", "ZWG"} <= set(codes.billing) and "XAU" not in codes.billing
    assert codes.problem("USD") is None and codes.problem("usd") and codes.problem("XYZ")


@pytest.mark.parametrize("price", ["1e999", "1E-999", "1_2", "1_0", "٠.٠١", "٠.٥", "NaN", "Infinity", "0x10", "+0.5",
                                   ".5", "5.", "1.2.3", "１２"])
def test_a_price_that_is_not_a_plain_ascii_decimal_is_refused_naming_its_line(tmp_path, price):
    """Decimal() read exponents, underscores and other scripts' digits: a Meta CSV's `Brazil,USD,1e999` priced
    Brazil marketing at a 1,000-digit amount, `1_2` at 12 and `٠.٠١` at 0.01 (RATE_CARDS setting and `rates
    import` alike). A price cell is now only ASCII digits with one optional dot: anything else is a RateCardError
    naming the file, the card and the row's line, in Meta's CSV and in the shared wide and long layouts."""
    rates = tmp_path / "USD.csv"
    rates.write_text(META_CSV.replace("Brazil,USD,0.0625", f"Brazil,USD,{price}"), encoding="utf-8")
    refused = re.escape(f"USD.csv:USD.csv: line 5: Brazil marketing: {price!r} is not a decimal price")
    with pytest.raises(RateCardError, match=refused):
        load_ratebook(RATES, csv_rates=rates)
    with pytest.raises(RateCardError, match=refused):
        load_meta_csv(rates.read_text(encoding="utf-8"), file=str(rates))
    wide = f"wide.csv INR 2025-10-01: line 2: Brazil utility: {price!r} is not a"
    with pytest.raises(RateCardError, match=re.escape(wide)):
        load_shared_csv(WIDE.replace("4.5,0.6", f"4.5,{price}"), file="wide.csv")
    long = f"long.csv BRL 2026-10-01: line 3: Brazil utility: {price!r} is not a"
    with pytest.raises(RateCardError, match=re.escape(long)):
        load_shared_csv(LONG.replace("utility,0.035", f"utility,{price}"), file="long.csv")


def test_plain_decimal_prices_still_load_and_a_signed_one_is_negative(rates_dir):
    """The refusal above keeps what Meta writes: `12`, `0.0625`, `0` and a YAML number load as that decimal; a
    price written with a minus (`-0.0889`, `-0` too) is refused as a negative price, naming file and card."""
    card = load_meta_csv(META_CSV.replace("Brazil,USD,0.0625,0.0068", "Brazil,USD,12,0"), file="x.csv")
    assert (card.rates["Brazil"]["marketing"], card.rates["Brazil"]["utility"]) == (Decimal("12"), Decimal("0"))
    assert card.rates["India"]["marketing"] == Decimal("0.0118")
    _edit(rates_dir / "meta-usd-2026-04-01.yaml", '[Chile, USD, "0.0889"', "[Chile, USD, 0.0889")
    card = next(c for c in load_ratebook(rates_dir).cards if c.id == "meta-usd-2026-04-01")
    assert card.rates["Chile"]["marketing"] == Decimal("0.0889")
    _edit(rates_dir / "meta-usd-2026-04-01.yaml", "[Chile, USD, 0.0889", '[Chile, USD, "-0"')
    with pytest.raises(RateCardError, match=r"meta-usd-2026-04-01: Chile marketing: negative price -0$"):
        load_ratebook(rates_dir)
