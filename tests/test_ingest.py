import numpy as np
import pandas as pd
import pytest

from tierbook.errors import TierbookError
from tierbook.ingest import (
    detect_encoding,
    map_source,
    parse_ids,
    parse_numbers,
    parse_text,
    read_all,
    read_source,
)
from tierbook.params import load_params

from .conftest import write_params

GBK_CLIENT = """
sources:
  transactions:
    - name: pos
      path: pos.csv
      columns: {会员卡号: customer_id, 交易时间: order_date, 数量: quantity, 单价: unit_price, 单据类型: order_status}
      date_format: "%Y/%m/%d %H:%M"
      returns: [{column: order_status, equals: [退货]}]
"""


def _params(project, text, client="acme"):
    write_params(project, client, text)
    (project / "data" / client).mkdir(parents=True, exist_ok=True)
    return load_params(client, project / "params")


def test_gbk_csv_with_chinese_headers_is_detected_and_parsed(project):
    params = _params(project, GBK_CLIENT)
    text = "会员卡号,交易时间,数量,单价,单据类型\n00012,2024/03/05 14:22,2,19.90,销售\n00012,2024/03/06 10:00,-1,19.90,退货\n,2024/03/07 09:30,1,5.00,销售\n"
    (project / "data/acme/pos.csv").write_bytes(text.encode("gbk"))
    tables, inventory = read_all(params, project)
    tx = tables["transactions"]
    assert inventory[0]["encoding"] == "gb18030" and inventory[0]["rows"] == 3
    assert tx["customer_id"].tolist()[:2] == ["00012", "00012"]  # zero-padded ids survive
    assert pd.isna(tx["customer_id"].iloc[2])
    assert tx["amount"].round(2).tolist() == [39.8, -19.9, 5.0]
    assert tx["is_return"].tolist() == [False, True, False]
    assert tx["order_date"].iloc[0] == pd.Timestamp("2024-03-05 14:22")
    assert tx["row"].tolist() == [1, 2, 3]
    assert tx["channel"].tolist() == ["pos"] * 3 and tx["currency"].tolist() == ["CNY"] * 3
    # the status only made the returns: it is not carried into cleaning
    assert "order_status" not in tx


def test_repeated_text_of_transactions_is_categorical_and_ids_share_the_files_buffers(project):
    """Store and category repeat a few values: categoricals (sorted categories) in the mapped lines, blanks missing. An id
    column with nothing to strip is the file's own Arrow column (its buffers, not a copy); one with spaces is stripped."""
    params = _params(project, """
sources:
  transactions:
    - name: pos
      path: pos.csv
      columns: {小票号: order_id, 会员卡号: customer_id, 交易时间: order_date, 金额: amount, 门店: store, 品类: category}
""")
    text = "小票号,会员卡号,交易时间,金额,门店,品类\nP1,C1,2024-03-05,10,静安店,美妆\nP2, C2 ,2024-03-06,20,天猫,\nP3,C1,2024-03-07,5,静安店,食品\n"
    (project / "data/acme/pos.csv").write_bytes(text.encode("gbk"))
    tx = read_all(params, project)[0]["transactions"]
    assert isinstance(tx["store"].dtype, pd.CategoricalDtype) and tx["store"].cat.categories.tolist() == ["天猫", "静安店"]
    assert tx["store"].tolist() == ["静安店", "天猫", "静安店"]
    assert isinstance(tx["category"].dtype, pd.CategoricalDtype) and tx["category"].astype(object).tolist()[::2] == ["美妆", "食品"]
    assert pd.isna(tx["category"].iloc[1])
    assert tx["customer_id"].tolist() == ["C1", "C2", "C1"]

    column = pd.Series(["A1", "B22", None, "C3"], dtype="string[pyarrow]")
    for parse in (parse_ids, parse_text):
        same = parse(column)
        assert same.iloc[[0, 1, 3]].tolist() == ["A1", "B22", "C3"] and pd.isna(same.iloc[2])
        assert same.array._pa_array.chunk(0).buffers()[2].address == column.array._pa_array.chunk(0).buffers()[2].address
    spaced = parse_text(pd.Series([" A1", "B22 ", "  ", "C3"], dtype="string[pyarrow]"))
    assert spaced.tolist()[:2] == ["A1", "B22"] and pd.isna(spaced.iloc[2]) and spaced.iloc[3] == "C3"


def test_utf8_bom_header_has_no_bom_and_semicolons_are_sniffed(project):
    params = _params(project, GBK_CLIENT.replace("pos.csv", "pos_bom.csv"))
    text = "会员卡号;交易时间;数量;单价;单据类型\nC1;2024/01/02 10:00;1;1,234.50;销售\n"
    (project / "data/acme/pos_bom.csv").write_bytes(text.encode("utf-8-sig"))
    tables, inventory = read_all(params, project)
    assert inventory[0]["encoding"] == "utf-8-sig"
    assert tables["transactions"]["amount"].tolist() == [1234.5]


def test_xlsx_with_title_rows_above_the_header(project):
    params = _params(project, """
sources:
  transactions:
    - name: shop
      path: sales.xlsx
      header_row: 2
      columns: {客户: customer_id, 日期: order_date, 金额: amount}
  customers:
    name: members
    path: members.xlsx
    columns: {客户: customer_id, 姓名: name, 手机: phone, 地区: region}
""")
    sheet = pd.DataFrame([["销售明细 2024", None, None], [None, None, None], ["客户", "日期", "金额"],
                          [12345, pd.Timestamp("2024-05-01"), "¥1,000.00"], ["A7", pd.Timestamp("2024-05-02"), 88.5]])
    sheet.to_excel(project / "data/acme/sales.xlsx", header=False, index=False)
    pd.DataFrame({"客户": ["12345"], "姓名": ["张三"], "手机": ["13800000000"], "地区": ["华东"]}).to_excel(
        project / "data/acme/members.xlsx", index=False)
    tables, _ = read_all(params, project)
    tx = tables["transactions"]
    assert tx["customer_id"].tolist() == ["12345", "A7"]  # Excel's 12345.0 becomes "12345"
    assert tx["amount"].tolist() == [1000.0, 88.5]
    assert tx["order_date"].tolist() == [pd.Timestamp("2024-05-01"), pd.Timestamp("2024-05-02")]
    customers = tables["customers"]
    assert list(customers.columns) == ["source", "row", "customer_id", "region"]  # PII never leaves ingest


def test_missing_column_names_file_column_and_closest(project):
    params = _params(project, GBK_CLIENT)
    (project / "data/acme/pos.csv").write_bytes("会员号,交易时间,数量,单价,单据类型\nC1,2024/01/02 10:00,1,2,销售\n".encode("gbk"))
    with pytest.raises(TierbookError) as err:
        read_all(params, project)
    message = str(err.value)
    assert "pos.csv: column '会员卡号' (mapped to customer_id) is not in the file; did you mean '会员号'?" in message
    assert "\n" not in message


def test_mostly_unparseable_dates_stop_with_the_fix(project):
    params = _params(project, GBK_CLIENT)
    rows = "".join(f"C{i},05-03-2024,1,2,销售\n" for i in range(5))
    (project / "data/acme/pos.csv").write_bytes(("会员卡号,交易时间,数量,单价,单据类型\n" + rows).encode("gbk"))
    with pytest.raises(TierbookError, match=r"column '交易时间' \(mapped to order_date\) parses for only 0% of 5 values .*set `date_format`"):
        read_all(params, project)


def test_missing_and_empty_files_are_one_line_errors(project):
    params = _params(project, GBK_CLIENT)
    with pytest.raises(TierbookError, match="pos.csv does not exist"):
        read_all(params, project)
    (project / "data/acme/pos.csv").write_bytes(b"")
    with pytest.raises(TierbookError, match="pos.csv: the file is empty"):
        read_all(params, project)


def test_detect_encoding():
    assert detect_encoding("客户,金额\n张三,12\n".encode("utf-8")) == "utf-8"
    assert detect_encoding("\ufeffid,amount\n".encode("utf-8")) == "utf-8-sig"
    sample = ("会员卡号,门店,交易时间\n" + "C000001,上海徐汇店,2024/03/05 14:22\n" * 20).encode("gbk")
    assert detect_encoding(sample) == "gb18030"
    # only the header is Chinese: charset_normalizer alone says cp949 (Korean) for this one
    header_only = ("会员卡号,交易日期,金额\n" + "".join(f"C{i % 7},2025-01-{i + 1:02d},{i}.5\n" for i in range(30))).encode("gbk")
    assert detect_encoding(header_only) == "gb18030"
    assert detect_encoding("고객,금액\n김민수,12\n".encode("cp949")) == "gb18030"  # the price: Korean is read as GB18030 (Chinese clients)


def test_parse_numbers_and_ids():
    values = pd.Series(["¥1,234.50", "-¥120.00", " 3 ", "12 元", "abc", None], dtype=object)
    parsed = parse_numbers(values)
    assert parsed.iloc[:4].tolist() == [1234.5, -120.0, 3.0, 12.0]
    assert parsed.iloc[4:].isna().all()
    ids = parse_ids(pd.Series(["00001", 17850.0, " C9 ", "", None], dtype=object))
    assert ids.iloc[:3].tolist() == ["00001", "17850", "C9"] and ids.iloc[3:].isna().all()


def test_plain_numbers_are_the_nearest_double():
    # Arrow's cast reads plain numbers (pandas' to_numeric was one unit in the last place off for the long one); zero has no sign
    values = pd.Series(["3.14159265358979323846", "0.1", "-0", "-0.0", "+5", "1.", ".5", "1e5", "1e400", "inf", "12,5"], dtype="string")
    parsed = parse_numbers(values)
    assert parsed.iloc[:8].tolist() == [3.141592653589793, 0.1, 0.0, 0.0, 5.0, 1.0, 0.5, 100000.0]
    assert not np.signbit(parsed.iloc[2:4]).any()
    assert parsed.iloc[8:10].isna().all()  # not finite: unparseable
    assert np.isnan(parsed.iloc[10])  # a decimal comma in a column of points: unparseable, not guessed


def test_reading_never_modifies_the_input(project):
    params = _params(project, GBK_CLIENT)
    path = project / "data/acme/pos.csv"
    path.write_bytes("会员卡号,交易时间,数量,单价,单据类型\nC1,2024/01/02 10:00,1,2,销售\n".encode("gbk"))
    before = path.read_bytes(), path.stat().st_mtime_ns
    raw = read_source(params.sources.transactions[0], path)
    map_source(raw, params.sources.transactions[0], params)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_gbk_detected_whatever_byte_the_sample_ends_on():
    from tierbook.ingest import detect_encoding

    raw = ("小票号,会员卡号,门店,品类\n" + "P001,C01,上海徐汇店,美妆\n" * 3000).encode("gbk")
    # the head of a big file ends anywhere, also inside a two-byte character
    assert {detect_encoding(raw[:cut]) for cut in range(len(raw) - 12, len(raw))} == {"gb18030"}


def _pandas_read(path, encoding, delimiter=","):
    return pd.read_csv(path, encoding=encoding, sep=delimiter, dtype="string[pyarrow]", keep_default_na=False, na_values=[""],
                       skipinitialspace=True)


def test_arrow_csv_reader_reads_what_pandas_reads_and_leaves_the_rest_to_it(tmp_path):
    """Whole files go through pyarrow's reader (GB bytes parsed as they are, each column decoded); the frame
    equals pandas' reading with the options it had: spaces after a delimiter dropped, a value of spaces only
    or "" missing, and quoted delimiters and line ends kept. What Arrow would read differently falls back (None)."""
    from tierbook.ingest import _read_csv_arrow

    text = '会员卡号,门店,金额\n"001", 上海店 ,"1,234.50"\n002,"北京\n二店",   \n003,,""\n'
    gbk = tmp_path / "pos.csv"
    gbk.write_bytes(text.encode("gbk"))
    frame = _read_csv_arrow(gbk, "gb18030", ",", 0, text)
    pd.testing.assert_frame_equal(frame, _pandas_read(gbk, "gb18030"))
    assert frame["会员卡号"].tolist() == ["001", "002", "003"] and frame["金额"].iloc[0] == "1,234.50"
    assert frame["门店"].iloc[0] == "上海店 " and frame["门店"].iloc[1] == "北京\n二店" and frame["金额"].isna().tolist() == [False, True, True]
    # every GB lead and trail byte next to delimiters, quotes and line ends: a character whose trail byte is "@" or "|"
    # (0x40, 0x7C), GB18030's four-byte characters (digits as their 2nd and 4th bytes), distinct Chinese values on
    # every row and one repeated, in GBK and GB18030 files
    for codec, extra in (("gbk", "丂亅"), ("gb18030", "丂亅𠀀€")):
        rows = "".join(f'{i},"{extra}{i}店,"|"{extra}",{extra} {i}\n' for i in range(300))
        body = "编号,名称|备注,类型\n" + rows
        path = tmp_path / f"{codec}.csv"
        path.write_bytes(body.encode(codec))
        frame = _read_csv_arrow(path, codec, ",", 0, body)
        pd.testing.assert_frame_equal(frame, _pandas_read(path, codec))
        assert frame["类型"].iloc[7] == f"{extra} 7" and frame["名称|备注"].iloc[0] == f'{extra}0店,|"{extra}"'
    # delimited by "|", the second byte of 亅: the file is transcoded, not parsed as bytes
    piped = tmp_path / "piped.csv"
    body = "编号|名称\n1|亅店\n2|丂\n"
    piped.write_bytes(body.encode("gbk"))
    frame = _read_csv_arrow(piped, "gbk", "|", 0, body)
    pd.testing.assert_frame_equal(frame, _pandas_read(piped, "gbk", "|"))
    assert frame["名称"].tolist() == ["亅店", "丂"]
    bad = tmp_path / "bad.csv"
    bad.write_bytes("编号,名称\n1,".encode("gbk") + b"\x81\x20" + b"\n")  # a lead byte without its trail byte
    assert _read_csv_arrow(bad, "gbk", ",", 0, "编号,名称\n") is None  # pandas' reader names the decoding problem
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffid;amount\nA;1\n".encode("utf-8"))
    pd.testing.assert_frame_equal(_read_csv_arrow(bom, "utf-8-sig", ";", 0, "id;amount\nA;1\n"), _pandas_read(bom, "utf-8-sig", ";"))
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n", encoding="utf-8")
    assert _read_csv_arrow(ragged, "utf-8", ",", 0, "a,b\n1,2\n3,4,5\n") is None  # pandas names the line
    assert _read_csv_arrow(ragged, "utf-8", r"\s+", 0, "a b\n") is None  # a regular expression: pandas only
    assert _read_csv_arrow(ragged, "utf-8", ",", 0, "a,a\n1,2\n") is None  # a repeated name: pandas renames it a.1
    assert _read_csv_arrow(ragged, "utf-8", ",", 0, 'a,b\n1, "x,y"\n') is None  # a quote after a space: pandas unquotes it


def _workbook(path, rows):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)


def test_workbook_read_by_fastexcel_maps_as_pandas_reading_does(project, monkeypatch):
    """fastexcel's typed columns (text with pandas' missing-value texts missing, whole numbers as ints, dates
    with their times, a column of empty cells) map onto the same rows as pandas' reading of the cells; a
    sheet it cannot give so (a column mixing text and numbers, a repeated or empty header name, empty
    columns left of the table, true/false cells) is left to pandas (None)."""
    import datetime as dt

    from tierbook import workbook

    params = _params(project, """
sources:
  transactions:
    - name: shop
      path: sales.xlsx
      columns: {客户: customer_id, 日期: order_date, 金额: amount, 单号: order_id, 店: store}
  customers:
    name: members
    path: members.xlsx
    columns: {卡号: customer_id, 生日: birth_date, 地区: region, 等级: member_tier}
    attributes: {积分: points}
""")
    _workbook(project / "data/acme/sales.xlsx", [
        ["客户", "日期", "金额", "单号", "店"],
        ["C1", dt.datetime(2024, 5, 1, 14, 23, 17), 1000, 17850, None],
        ["NA", dt.datetime(2024, 5, 2, 9, 0, 0, 250000), 88.5, 17851.5, None],
        ["C2", None, 12.25, 3, None],
        ["C3 ", dt.datetime(2024, 5, 3), -5, None, None],
        ["C1", dt.datetime(2024, 5, 1, 14, 23, 17), 1000, 17850, None],  # an exact duplicate of the first row
    ])
    _workbook(project / "data/acme/members.xlsx", [
        ["卡号", "生日", "地区", "等级", "积分"],
        ["C1", dt.datetime(1990, 1, 31), "N/A", "金卡", 1.5],
        ["C2", None, "华东", "null", 2],
        ["C3", dt.datetime(1985, 12, 1), "", "普通", None],
    ])
    for name, columns in (("sales.xlsx", ["客户", "日期"]), ("members.xlsx", ["卡号"])):
        assert workbook.read_sheet(project / "data/acme" / name, 0, 0, None, columns) is not None  # fastexcel read these
    fast, _ = read_all(params, project)
    monkeypatch.setattr(workbook, "read_sheet", lambda *args: None)
    slow, _ = read_all(params, project)
    pd.testing.assert_frame_equal(fast["customers"], slow["customers"])
    # the row hashes are of the rows' text, dates written with the column's precision rather than each its own: the same
    # rows are equal (exact duplicates), the hashes differ
    pd.testing.assert_frame_equal(fast["transactions"].drop(columns="row_hash"), slow["transactions"].drop(columns="row_hash"))
    assert pd.factorize(fast["transactions"]["row_hash"])[0].tolist() == pd.factorize(slow["transactions"]["row_hash"])[0].tolist() == [0, 1, 2, 3, 0]
    assert fast["transactions"]["customer_id"].iloc[0] == "C1" and pd.isna(fast["transactions"]["customer_id"].iloc[1])  # "NA": missing
    assert fast["transactions"]["order_date"].iloc[1] == pd.Timestamp("2024-05-02 09:00:00.250")
    assert fast["transactions"]["order_id"].tolist()[:3] == ["17850", "17851.5", "3"]
    assert fast["customers"]["region"].isna().tolist() == [True, False, True]
    monkeypatch.undo()

    odd = project / "data/acme/odd.xlsx"
    for rows in ([["id", "x"], ["a", 1], [5, 2]],  # text and a number in one column
                 [["id", "id"], ["a", 1]], [["id", None, "x"], ["a", 1, 2]],  # a repeated name, an empty one
                 [["id", "x"], ["a", True]]):  # true/false cells
        _workbook(odd, rows)
        assert workbook.read_sheet(odd, 0, 0, None, ["id"]) is None
    _workbook(odd, [[None, "id", "x"], [None, "a", 1]])  # an empty column left of the table: pandas names it "Unnamed: 0"
    assert workbook.read_sheet(odd, 0, 0, None, ["id"]) is None
    _workbook(odd, [["id", "x"], ["a", 1]])
    assert workbook.read_sheet(odd, 0, 0, None, ["id", "y"]) is None  # a mapped column not in the header: pandas' error names it


TWO_TABLES = GBK_CLIENT + """
  survey:
    name: survey
    path: survey.csv
    columns: {customer_id: customer_id, response_date: response_date, nps: nps}
"""


def test_a_table_taken_while_the_others_are_read_is_read_alls_and_errors_come_in_source_order(project):
    from concurrent.futures import ThreadPoolExecutor

    from tierbook.ingest import Reading

    params = _params(project, TWO_TABLES)
    pos = "会员卡号,交易时间,数量,单价,单据类型\nC1,2024/03/05 14:22,2,19.90,销售\nC2,2024/03/06 10:00,-1,19.90,退货\n"
    (project / "data/acme/pos.csv").write_bytes(pos.encode("gbk"))
    (project / "data/acme/survey.csv").write_text("customer_id,response_date,nps\nC1,2024-04-01,9\nC2,2024-04-02,3\n", encoding="utf-8")
    whole, inventory = read_all(params, project)
    with ThreadPoolExecutor(max_workers=2) as pool:
        reading = Reading(params, project, pool)
        transactions = reading.table("transactions")
        rest, inventory_after = reading.finish()
    pd.testing.assert_frame_equal(transactions, whole["transactions"])
    assert list(rest) == ["survey"]
    pd.testing.assert_frame_equal(rest["survey"], whole["survey"])
    assert inventory_after == inventory and [r["rows"] for r in inventory] == [2, 2]
    # the survey broken: the transactions are still taken, the survey's error comes with finish
    (project / "data/acme/survey.csv").write_text("customer_id,response_date\nC1,2024-04-01\n", encoding="utf-8")
    with ThreadPoolExecutor(max_workers=2) as pool:
        reading = Reading(params, project, pool)
        assert reading.table("transactions")["customer_id"].tolist() == ["C1", "C2"]
        with pytest.raises(TierbookError, match=r"survey.csv: column 'nps' \(mapped to nps\) is not in the file"):
            reading.finish()
    # both broken: the first declared source's error, from the table that waits for it
    (project / "data/acme/pos.csv").write_bytes("会员号,交易时间,数量,单价,单据类型\nC1,2024/01/02 10:00,1,2,销售\n".encode("gbk"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        with pytest.raises(TierbookError, match="pos.csv: column '会员卡号'"):
            Reading(params, project, pool).table("transactions")


def test_check_reads_a_head_copy_of_a_workbook_that_types_its_rows_as_the_whole_file(tmp_path, monkeypatch):
    """The check before a run reads a copy of the workbook cut after its first rows (workbook.head_copy):
    shared strings and date styles come with it, so its first rows are the whole file's first rows, cell for
    cell; a sheet chosen by name behind a shorter one, a title row above the header and empty rows left out of
    the file are found the same; a sheet no longer than the copy is read from the file itself."""
    import datetime as dt

    import xlsxwriter

    from tierbook import ingest, workbook
    from tierbook.params import TransactionSource

    path = tmp_path / "orders.xlsx"
    book = xlsxwriter.Workbook(path)
    dates = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    book.add_worksheet("说明").write_row(0, 0, ["导出说明", "只有一行"])
    sheet = book.add_worksheet("订单")
    sheet.write_row(0, 0, ["订单导出 2024"])  # a title row above the header
    sheet.write_row(1, 0, ["卡号", "下单时间", "金额", "城市"])
    n = 3_000
    for i in range(n):
        row = 2 + i + (5 if i >= 10 else 0)  # rows 12-16 of the sheet are left out of the file (empty)
        sheet.write_string(row, 0, f"C{i % 97:04d}")  # shared strings, repeated
        sheet.write_datetime(row, 1, dt.datetime(2024, 1, 1) + dt.timedelta(hours=7 * i), dates)
        sheet.write_number(row, 2, round(10 + (i * 37 % 1000) / 7, 2))
        sheet.write_string(row, 3, ["北京", "上海", "N/A"][i % 3])
    book.close()

    rows = 1 + 1 + 1_000 + 50
    head = workbook.head_copy(path, "订单", rows)
    import io
    import zipfile

    part = "xl/worksheets/sheet2.xml"
    assert head is not None
    cut, full = zipfile.ZipFile(io.BytesIO(head)).read(part), zipfile.ZipFile(path).read(part)
    assert cut.count(b"</row>") == rows and full.count(b"</row>") == n + 2 and len(cut) < len(full) / 2
    assert workbook.head_copy(path, 1, rows) == head  # by position: the second sheet
    # each part keeps the file's own time, not the clock's: the same copy on every call (two calls a second apart differed)
    assert [i.date_time for i in zipfile.ZipFile(io.BytesIO(head)).infolist()] == [i.date_time for i in zipfile.ZipFile(path).infolist()]
    for sheet_ in ("说明", "缺少", 5):
        assert workbook.head_copy(path, sheet_, rows) is None  # shorter than the copy; no such sheet
    assert workbook.head_copy(path, "订单", n + 100) is None  # the whole sheet is no longer than the copy
    first = workbook.read_sheet(head, "订单", 1, 1_000, ["卡号"])
    whole = workbook.read_sheet(path, "订单", 1, 1_000, ["卡号"])
    pd.testing.assert_frame_equal(first, whole, check_exact=True)
    assert len(first) == 1_000 and first["下单时间"].dtype == "datetime64[ns]" and first["城市"].isna().sum() == 331 + 5  # "N/A" in orders 0-994, and the 5 empty rows
    assert first["卡号"].iloc[10:15].isna().all() and first["卡号"].iloc[15] == "C0010"  # the empty rows are rows

    # read_source(head_only) goes through the copy, and says the same as from the whole file
    source = TransactionSource.model_validate({"name": "orders", "path": "orders.xlsx", "sheet": "订单", "header_row": 1,
                                    "columns": {"卡号": "customer_id", "下单时间": "order_date", "金额": "amount"}})
    copies = []
    monkeypatch.setattr(workbook, "head_copy", lambda *a, original=workbook.head_copy: copies.append(original(*a)) or copies[-1])
    from_copy = read_source(source, path, head_only=True)
    assert copies and copies[0] is not None
    monkeypatch.setattr(workbook, "head_copy", lambda *a: None)
    from_file = read_source(source, path, head_only=True)
    pd.testing.assert_frame_equal(from_copy.frame, from_file.frame, check_exact=True)
    assert len(from_copy.frame) == ingest.CHECK_ROWS


def test_nfkc_once_per_distinct_value_is_pandas_normalize():
    """contract.nfkc normalises each distinct value once (Arrow's dictionary encoding): the same values, missing ones
    kept missing, the index and name kept; full-width digits and katakana, ligatures, compatibility characters and a
    combining accent are what NFKC changes, the yen sign and plain text what it leaves."""
    from tierbook.contract import nfkc

    values = ["¥1,234.50", None, "１２３", "ｱｲｳ", "e\u0301", "ﬁ", "", "abc", "¥1,234.50", "Ⅻ", "㍿", "－５"]
    text = pd.Series(values, dtype="string[pyarrow]", index=np.arange(10, 22), name="amount")
    out = nfkc(text)
    pd.testing.assert_series_equal(out, text.str.normalize("NFKC"))
    assert out.tolist()[2:6] == ["123", "アイウ", "é", "fi"] and out.tolist()[9:] == ["XII", "株式会社", "-5"]
    assert out.iloc[0] == "¥1,234.50" and pd.isna(out.iloc[1]) and list(out.index) == list(range(10, 22))
    rng = np.random.default_rng(0)
    many = pd.Series(rng.choice([v for v in values if v is not None] + [None], 5_000), dtype="string[pyarrow]")
    pd.testing.assert_series_equal(nfkc(many), many.str.normalize("NFKC"))


def test_parse_numbers_decides_the_decimal_mark_by_values_not_by_distinct_texts():
    """parse_numbers parses each distinct text once, but the column's decimal mark is still the one more of its
    values show: three texts say comma once each, one text says point ten times, so the column writes points."""
    values = pd.Series(["1,5", "2,25", "3,75"] + ["1,234.50"] * 10 + [None, "¥2,000.25"], dtype="string[pyarrow]")
    parsed = parse_numbers(values)
    assert parsed.iloc[3:13].tolist() == [1234.5] * 10 and parsed.iloc[14] == 2000.25
    assert parsed.iloc[:3].isna().all() and pd.isna(parsed.iloc[13])  # '1,5' does not fit a column of points
    flipped = pd.Series(["1,5", "2,25", "3,75"] * 4 + ["1,234.50"], dtype=object)
    assert parse_numbers(flipped).iloc[:3].tolist() == [1.5, 2.25, 3.75] and pd.isna(parse_numbers(flipped).iloc[12])


def test_the_details_of_what_did_not_parse_are_joined_per_row():
    """``_join_details`` joins a row's details in column order with "; " and leaves the rows without one missing,
    whichever columns have none (it joins only the rows that have one)."""
    from tierbook.ingest import _join_details

    index = pd.RangeIndex(5)
    date = pd.Series([pd.NA, "交易时间 '2025-13-45'", pd.NA, "交易时间 empty", pd.NA], index=index, dtype="string")
    price = pd.Series([pd.NA, "单价 'abc'", "单价 empty", pd.NA, pd.NA], index=index, dtype="string")
    none = pd.Series(pd.NA, index=index, dtype="string")
    joined = _join_details([none, date, none, price], index)
    assert joined.tolist() == [pd.NA, "交易时间 '2025-13-45'; 单价 'abc'", "单价 empty", "交易时间 empty", pd.NA]
    assert isinstance(joined.dtype, pd.StringDtype) and joined.index.equals(index)
    assert _join_details([none, none], index).isna().all() and _join_details([], index).isna().all()


def test_repeated_text_becomes_the_categories_astype_gives():
    """A column of one text on every row (a source's name set from params) is made a categorical without hashing each
    row; it equals ``astype("category")``, as do the other columns (missing values, several texts, Arrow strings)."""
    from tierbook.ingest import _as_category

    n = 1000
    one = pd.Series(np.full(n, "pos", dtype=object), name="source")
    several = pd.Series(np.array(["b", "a", None, "b"] * (n // 4), dtype=object), name="store")
    arrow = pd.Series(["门店A", "门店B", pd.NA, "门店A"] * (n // 4), dtype="string[pyarrow]", name="category")
    almost = pd.Series(np.array(["web"] * (n - 1) + ["app"], dtype=object), name="channel")
    for values in (one, several, arrow, almost):
        made, expected = _as_category(values), values.astype("category")
        assert made.equals(expected) and made.dtype == expected.dtype and made.name == values.name
        assert made.cat.codes.dtype == expected.cat.codes.dtype
    assert _as_category(one).cat.categories.tolist() == ["pos"]
