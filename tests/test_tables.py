import pandas as pd

from tierbook.tables import money, styled


def test_money_formats_sign_symbol_and_separators():
    assert money(1234567.891, "CNY") == "¥1,234,567.89"
    assert money(-120, "GBP") == "-£120.00"
    assert money(5, "SEK") == "SEK 5.00"


def test_styled_formats_numbers_escapes_client_strings_and_truncates():
    frame = pd.DataFrame({"store": ["<b>上海</b>", "B"], "revenue": [1234.5, None], "orders": [12345, 7], "share": [0.1234, 0.5]})
    html = styled(frame, currency="CNY", money_cols=["revenue"], int_cols=["orders"], pct_cols=["share"]).to_html()
    assert "&lt;b&gt;上海&lt;/b&gt;" in html and "<b>上海" not in html
    assert "¥1,234.50" in html and "12,345" in html and "12.3%" in html
    assert "nan" not in html.lower().replace("nanum", "")
    long = styled(pd.DataFrame({"x": range(100)}), max_rows=10, csv="tables/x.csv").to_html()
    assert long.count("<tr>") == 11 and 'First 10 of 100 rows; all rows in <a href="tables/x.csv">tables/x.csv</a>' in long  # header + 10 rows
