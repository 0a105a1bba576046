"""Canonical symbols: the usual spellings, USD vs USDT, stocks vs ETFs, suggestions and refusals."""

from __future__ import annotations

import pytest

from asset_price_mcp.symbols import COINGECKO_IDS, Instrument, UnknownSymbol, parse_symbol, suggest


@pytest.mark.parametrize(
    ("text", "symbol", "kind"),
    [
        ("BTC", "BTC-USD", "crypto"),
        ("btcusdt", "BTC-USDT", "crypto"),
        ("BTCUSDT", "BTC-USDT", "crypto"),
        ("BTCUSD", "BTC-USD", "crypto"),
        ("BTC/USDT", "BTC-USDT", "crypto"),
        ("btc_usdt", "BTC-USDT", "crypto"),
        (" eth-eur ", "ETH-EUR", "crypto"),
        ("XBT/USD", "BTC-USD", "crypto"),
        ("XBTUSD", "BTC-USD", "crypto"),
        ("bitcoin", "BTC-USD", "crypto"),
        ("Ethereum", "ETH-USD", "crypto"),
        ("shiba inu", "SHIB-USD", "crypto"),
        ("avalanche-2", "AVAX-USD", "crypto"),
        ("$BTC", "BTC-USD", "crypto"),
        ("ETHBTC", "ETH-BTC", "crypto"),
        ("ETHBUSD", "ETH-BUSD", "crypto"),
        ("USDT", "USDT-USD", "crypto"),
        ("$AAPL", "AAPL", "stock"),
        ("aapl", "AAPL", "stock"),
        ("BRK.B", "BRK.B", "stock"),
        ("brk-b", "BRK.B", "stock"),
        ("GBTC", "GBTC", "etf"),
        ("SPY", "SPY", "etf"),
        ("qqq", "QQQ", "etf"),
        ("EUR/USD", "EUR-USD", "fx"),
        ("EURUSD", "EUR-USD", "fx"),
        ("EURUSD=X", "EUR-USD", "fx"),
        ("EUR", "EUR-USD", "fx"),
        ("XAUUSD", "XAU-USD", "metal"),
        ("gold", "XAU-USD", "metal"),
        ("Silver", "XAG-USD", "metal"),
        ("GC=F", "XAU-USD", "metal"),
        ("xau", "XAU-USD", "metal"),
    ],
)
def test_usual_spellings_parse_to_one_canonical_symbol(text, symbol, kind):
    inst = parse_symbol(text)
    assert (inst.symbol, inst.kind) == (symbol, kind)


def test_usd_and_usdt_quotes_stay_distinct():
    assert parse_symbol("BTCUSD").quote == "USD"
    assert parse_symbol("BTCUSDT").quote == "USDT"
    assert parse_symbol("BTCUSD") != parse_symbol("BTCUSDT")


def test_a_bare_coin_gets_the_documented_default_quote_usd():
    assert parse_symbol("eth") == Instrument("ETH-USD", "crypto", "ETH", "USD")


def test_canonical_symbols_parse_to_themselves():
    for symbol in ("BTC-USDT", "BTC-USD", "ETH-EUR", "AAPL", "SPY", "BRK.B", "EUR-USD", "XAU-USD"):
        assert parse_symbol(symbol).symbol == symbol


def test_a_stock_has_its_ticker_as_base_and_no_quote():
    assert parse_symbol("MSFT") == Instrument("MSFT", "stock", "MSFT", None)


def test_a_known_coin_base_wins_over_a_stock_reading_of_the_same_letters():
    assert parse_symbol("SOL").symbol == "SOL-USD"


def test_a_separated_pair_with_a_coin_quote_accepts_a_coin_outside_the_table():
    assert parse_symbol("WIF/USDT") == Instrument("WIF-USDT", "crypto", "WIF", "USDT")


def test_a_concatenated_pair_needs_a_known_base():
    with pytest.raises(UnknownSymbol):
        parse_symbol("WIFFUSDT")


def test_an_unknown_base_against_a_fiat_quote_is_refused_rather_than_guessed():
    with pytest.raises(UnknownSymbol, match="AAPL is not a known base"):
        parse_symbol("AAPL/USD")


@pytest.mark.parametrize("text", ["", "   ", "???", "BTC-", "-USD", "x" * 40, "BTC/BTC", "BTC/XYZ", "USD", "ABCDEFG"])
def test_garbage_is_refused_with_unknown_symbol(text):
    with pytest.raises(UnknownSymbol):
        parse_symbol(text)


def test_unknown_symbol_is_a_value_error_that_says_what_was_not_understood():
    with pytest.raises(ValueError, match=r"Symbol '\?\?\?' not understood") as err:
        parse_symbol("???")
    assert "BTC-USDT" in str(err.value)  # the accepted spellings, so the caller can fix the input


def test_an_empty_symbol_says_it_is_empty():
    with pytest.raises(UnknownSymbol, match="empty"):
        parse_symbol("")


def test_an_overlong_symbol_says_it_is_too_long():
    with pytest.raises(UnknownSymbol, match="longer than"):
        parse_symbol("B" * 40)


def test_the_refusal_of_a_mistyped_coin_lists_suggestions():
    with pytest.raises(UnknownSymbol) as err:
        parse_symbol("etherium")
    assert "ETH-USD" in err.value.suggestions
    assert "Did you mean: ETH-USD" in str(err.value)


def test_the_refusal_of_a_trailing_separator_suggests_the_coin():
    with pytest.raises(UnknownSymbol) as err:
        parse_symbol("BTC-")
    assert err.value.suggestions[0] == "BTC-USD"


def test_suggestions_keep_the_quote_that_was_typed():
    assert suggest("BTCCUSDT")[0] == "BTC-USDT"
    assert suggest("ETHH/EUR")[0] == "ETH-EUR"


def test_suggestions_cover_coin_names_and_etfs():
    assert suggest("solanna") == ["SOL-USD"]
    assert suggest("SPYY")[0] == "SPY"
    assert suggest("gld")[0] == "GLD"


def test_suggestions_are_limited_and_empty_for_noise():
    assert len(suggest("BTC", limit=2)) <= 2
    assert suggest("???") == []
    assert suggest("") == []


def test_the_coingecko_table_maps_major_bases_to_coin_ids():
    assert COINGECKO_IDS["BTC"] == "bitcoin"
    assert COINGECKO_IDS["BNB"] == "binancecoin"
    assert COINGECKO_IDS["XRP"] == "ripple"
    assert COINGECKO_IDS["USDT"] == "tether"
    assert len(COINGECKO_IDS) >= 40
