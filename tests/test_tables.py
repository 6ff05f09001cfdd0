import pandas as pd

from tierbook.tables import money, signed_interval, styled


def test_money_formats_sign_symbol_and_separators():
    assert money(1234567.891, "CNY") == "¥1,234,567.89"
    assert money(-120, "GBP") == "-£120.00"
    assert money(5, "SEK") == "SEK 5.00"


def test_signed_interval_uses_decimals_only_where_whole_numbers_would_not_tell_the_bounds_apart():
    assert signed_interval(12.4, 9.2, 15.6) == ("+12", "+9", "+16")
    # an NPS from many answers: -9.4 to -8.6 read "-9 … -9" in whole numbers
    assert signed_interval(-9.04, -9.4, -8.6) == ("-9.0", "-9.4", "-8.6")
    assert signed_interval(-9.0, -9.04, -8.96) == ("-9.00", "-9.04", "-8.96")
    assert signed_interval(0.0, -0.4, 0.4) == ("+0.0", "-0.4", "+0.4")  # not "-0 to +0"
    assert signed_interval(5, 5, 5) == ("+5.00", "+5.00", "+5.00")  # no more than two decimals


def test_styled_formats_numbers_escapes_client_strings_and_truncates():
    frame = pd.DataFrame({"store": ["<b>上海</b>", "B"], "revenue": [1234.5, None], "orders": [12345, 7], "share": [0.1234, 0.5]})
    html = styled(frame, currency="CNY", money_cols=["revenue"], int_cols=["orders"], pct_cols=["share"]).to_html()
    assert "&lt;b&gt;上海&lt;/b&gt;" in html and "<b>上海" not in html
    assert "¥1,234.50" in html and "12,345" in html and "12.3%" in html
    assert "nan" not in html.lower().replace("nanum", "")
    long = styled(pd.DataFrame({"x": range(100)}), max_rows=10, csv="tables/x.csv").to_html()
    assert long.count("<tr>") == 11 and 'First 10 of 100 rows; all rows in <a href="tables/x.csv">tables/x.csv</a>' in long  # header + 10 rows
