"""Rate cards and market maps load strictly: every refusal names the file and the card or map."""

import shutil
from datetime import date
from decimal import Decimal

import pytest

from policy_service.core.rates import RateCardError, card_yaml, load_meta_csv, load_ratebook

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
    """The shipped card and map load, and every card names the address its numbers were carried from."""
    book = load_ratebook(RATES)
    assert [c.id for c in book.cards] == ["meta-usd-2026-04-01"]
    card = book.cards[0]
    assert card.source.startswith("https://github.com/") and card.tiers_source.startswith("https://github.com/")
    assert card.rates["Rest of Latin America"]["marketing"] == Decimal("0.0740")
    assert card.rates["India"]["authentication-international"] == Decimal("0.0304")
    assert card.rates["Brazil"]["service"] is None  # Meta writes n/a
    assert book.map_on(date(2026, 5, 1)).market_of("PR") == "Rest of Latin America"
    assert book.map_on(date(2026, 5, 1)).market_of("KZ") == "Other"
    assert book.card_on(date(2026, 7, 1), "USD") is None


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
    path.write_text(text + text.split("market_maps:\n", 1)[1].replace("id: meta-markets-2026-04", "id: again"))
    with pytest.raises(RateCardError, match="market map overlaps meta-markets-2026-04"):
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


def test_card_yaml_round_trips(tmp_path):
    """A CSV carried over by card_yaml loads back to the same prices and tiers."""
    card = load_meta_csv(META_CSV, META_TIERS, file="USD_rates.csv")
    folder = tmp_path / "rates"
    folder.mkdir()
    shutil.copy(RATES / "markets.yaml", folder)
    (folder / "card.yaml").write_text(card_yaml(card, card_id="c", until=date(2026, 6, 30), source="https://s",
                                                tiers_source="https://t", confidence="S"))
    loaded = load_ratebook(folder).cards[0]
    assert (loaded.rates, loaded.tiers) == (card.rates, card.tiers)
