"""The bad-input corpus for reading and cleaning (issue 10): files a client really sends.

Each case is either handled — the rows and amounts are accounted for with a reason
(``rejected.csv``, the reconciliation, the data section's sentences) and the counts are asserted
as computed by hand — or it stops with ONE line (``TierbookError``) naming the file, the line,
row or column, the problem and the fix, asserted in full. Stops that show in the first rows of a
file are also raised by ``ingest.check_sources`` (``make check`` and the check before a run), with
the same line. Every input file is checked byte for byte (sha256) after each case.

Small files a human would open are in ``tests/bad_inputs/`` (see its README); bytes that cannot be
committed sensibly (GBK, UTF-16, truncated, binary) are made here.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierbook import ingest
from tierbook.data import narrative, run_data_stage
from tierbook.errors import TierbookError

from .conftest import REPO, params_and_run_dir

CORPUS = Path(__file__).with_name("bad_inputs")
TODAY = dt.date(2026, 1, 1)

SHOP = """
sources:
  transactions:
    - name: shop
      path: {path}
      columns: {{客户ID: customer_id, 日期: order_date, 金额: amount}}
{extra}"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Case:
    """A project with params/acme.yaml and the given input files in data/acme/."""

    def __init__(self, root: Path, params_text: str, files: dict[str, bytes | str]):
        self.root = root
        self.data = root / "data" / "acme"
        self.data.mkdir(parents=True)
        for name, content in files.items():  # bytes, or the name of a file of the corpus
            target = self.data / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                shutil.copyfile(CORPUS / content, target)
        self.digests = {p: sha256(p) for p in self.data.iterdir()}
        self.params, self.run = params_and_run_dir(root, "acme", params_text)

    def path(self, name: str) -> Path:
        return self.data / name

    def stage(self):
        return run_data_stage(self.params, self.root, self.run, today=TODAY)

    def stage_stops(self) -> str:
        with pytest.raises(TierbookError) as err:
            self.stage()
        message = str(err.value)
        assert "\n" not in message and "Traceback" not in message
        return message

    def stops(self) -> str:
        """The one line of a stop, which the check before a run gives too."""
        message = self.stage_stops()
        with pytest.raises(TierbookError) as err:
            ingest.check_sources(self.params, self.root)
        assert str(err.value) == message
        return message

    def ledger(self) -> pd.DataFrame:
        return pd.read_parquet(self.run / "data" / "ledger.parquet")

    def rejected(self) -> pd.DataFrame:
        return pd.read_csv(self.run / "rejected.csv", dtype={"row": int}, keep_default_na=False, encoding="utf-8-sig")

    def assert_inputs_unchanged(self):
        assert {p: sha256(p) for p in self.data.iterdir()} == self.digests, "an input file changed"


@pytest.fixture
def case(tmp_path):
    """``case(params_text, **files)``; after the test, every input is checked byte for byte."""
    made: list[Case] = []

    def make(params_text: str, **files) -> Case:
        made.append(Case(tmp_path / f"p{len(made)}", params_text, files))
        return made[-1]

    yield make
    for c in made:
        c.assert_inputs_unchanged()


def shop(path: str = "shop.csv", extra: str = "") -> str:
    return SHOP.format(path=path, extra=extra)


def reasons(ledger: pd.DataFrame, table: str = "transactions") -> dict[str, int]:
    return ledger[ledger["table"] == table].groupby("reason").size().to_dict()


# --------------------------------------------------------------------------- columns and types


def test_renamed_columns_name_each_missing_column_and_the_closest(case):
    c = case(SHOP.format(path="shop.csv", extra="").replace("客户ID: customer_id, 日期: order_date, 金额: amount",
                                                            "会员卡号: customer_id, 交易时间: order_date, 金额: amount"),
             **{"shop.csv": "renamed_columns.csv"})
    assert c.stops() == (
        f"{c.path('shop.csv')}: 3 mapped columns are not in the file: '会员卡号' (mapped to customer_id; closest '会员编号'), "
        "'交易时间' (mapped to order_date; closest '交易日期'), '金额' (mapped to amount; closest '实付金额'); "
        "fix `columns` (or `header_row`) of source 'shop'")
    one = case(SHOP.replace("客户ID: customer_id, 日期: order_date, 金额: amount", "会员编号: customer_id, 交易时间: order_date, 实付金额: amount")
               .format(path="shop.csv", extra=""), **{"shop.csv": "renamed_columns.csv"})
    assert one.stops() == (f"{one.path('shop.csv')}: column '交易时间' (mapped to order_date) is not in the file; did you mean '交易日期'? "
                           "fix `columns` (or `header_row`) of source 'shop'")
    none_close = case(SHOP.replace("客户ID", "member").format(path="shop.csv", extra=""), **{"shop.csv": "renamed_columns.csv"})
    assert none_close.stops() == (
        f"{none_close.path('shop.csv')}: 3 mapped columns are not in the file: 'member' (mapped to customer_id), '日期' (mapped to "
        "order_date; closest '交易日期'), '金额' (mapped to amount; closest '实付金额'); fix `columns` (or `header_row`) of source 'shop'")
    strangers = case(SHOP.replace("客户ID: customer_id, 日期: order_date, 金额: amount", "id: customer_id, day: order_date, 实付金额: amount")
                     .format(path="shop.csv", extra=""), **{"shop.csv": "renamed_columns.csv"})
    assert strangers.stops() == (
        f"{strangers.path('shop.csv')}: 2 mapped columns are not in the file: 'id' (mapped to customer_id), 'day' (mapped to "
        "order_date); the file's columns are ['会员编号', '交易日期', '实付金额']; fix `columns` (or `header_row`) of source 'shop'")


def test_text_in_an_amount_column_is_rejected_row_by_row_with_the_text(case):
    c = case(shop(), **{"shop.csv": "text_in_amount.csv"})
    stage = c.stage()
    ledger = c.ledger()
    assert reasons(ledger) == {"kept": 4, "unparseable_amount": 4}
    assert c.rejected()[["row", "reason", "detail"]].values.tolist() == [
        [2, "unparseable_amount", "金额 '待定'"], [4, "unparseable_amount", "金额 'N/A'"],
        [5, "unparseable_amount", "金额 empty"], [7, "unparseable_amount", "金额 'abc'"]]
    recon = stage.reconciliation.iloc[0]
    assert recon[["rows_read", "rows_kept", "rows_merged", "rows_rejected"]].tolist() == [8, 4, 0, 4]
    assert recon["amount_kept"] == pytest.approx(120 + 88.5 + 35 + 1200) and bool(recon["balanced"])
    assert stage.orders["net_amount"].sum() == pytest.approx(1443.5)


def test_an_amount_column_that_is_mostly_text_stops(case):
    c = case(shop(), **{"shop.csv": "mostly_text_amount.csv"})
    assert c.stops() == (f"{c.path('shop.csv')}: column '金额' (mapped to amount) parses for only 25% of 4 values "
                         "(e.g. '待定', 'N/A', 'abc'); map the right column or clean its format")


def test_numbers_in_a_date_column_stop_and_say_they_are_excel_day_numbers(case):
    c = case(shop(), **{"shop.csv": "excel_serial_dates.csv"})
    assert c.stops() == (f"{c.path('shop.csv')}: column '日期' (mapped to order_date) parses for only 0% of 3 values "
                         "(e.g. '45296', '45297', '45300'); they look like Excel day numbers (45296 is 2024-01-05): format the column "
                         "as dates in Excel and export it again, or map the right column")


def test_a_line_with_an_unquoted_delimiter_stops_with_its_line(case):
    c = case(shop(), **{"shop.csv": "ragged_row.csv"})
    assert c.stops() == (f"{c.path('shop.csv')}: line 3 has 4 fields where the header has 3 (a value holding the delimiter ',' "
                         "without quotes?); quote such values in the export or set `delimiter` of source 'shop'")


# --------------------------------------------------------------------------- dates


def test_mixed_date_formats_in_one_column_are_each_read(case):
    c = case(shop(), **{"shop.csv": "mixed_dates.csv"})
    tables, _ = ingest.read_all(c.params, c.root)
    # 13/01/2024 can only be day-first, so 05/01/2024 in the same column is 5 January
    assert tables["transactions"]["order_date"].tolist() == [
        pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-13"),
        pd.Timestamp("2024-01-06 14:30"), pd.Timestamp("2024-01-07"), pd.NaT, pd.NaT, pd.NaT]
    stage = c.stage()
    assert reasons(c.ledger()) == {"kept": 6, "unparseable_date": 3}
    assert c.rejected()[["row", "detail"]].values.tolist() == [[7, "日期 'not a date'"], [8, "日期 '2024-02-30'"], [9, "日期 empty"]]
    assert len(stage.orders) == 6


def test_a_column_with_day_first_and_month_first_dates_stops_until_date_format_is_set(case):
    c = case(shop(), **{"shop.csv": "day_first_and_month_first.csv"})
    assert c.stops() == (
        f"{c.path('shop.csv')}: column '日期' (mapped to order_date) mixes day-first dates such as '13/01/2024' (1 row) and "
        "month-first dates such as '01/13/2024' (1 row), so a date such as 05/01/2024 cannot be read safely; set `date_format` of "
        "source 'shop' (e.g. \"%d/%m/%Y\"): values in another format are then rejected row by row")
    fixed = case(shop(extra='      date_format: "%d/%m/%Y"\n'), **{"shop.csv": "day_first_and_month_first.csv"})
    stage = fixed.stage()
    assert reasons(fixed.ledger()) == {"kept": 2, "unparseable_date": 1}
    assert fixed.rejected()[["row", "detail"]].values.tolist() == [[2, "日期 '01/13/2024'"]]
    assert sorted(stage.orders["order_date"]) == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-13")]


def test_dates_far_in_the_past_or_future_are_rejected_with_their_reason(case):
    c = case(shop(), **{"shop.csv": "far_dates.csv"})
    stage = c.stage()
    assert reasons(c.ledger()) == {"kept": 2, "placeholder_date": 3, "future_date": 1, "unparseable_date": 2}
    assert c.rejected()[["row", "reason", "detail"]].values.tolist() == [
        [1, "placeholder_date", "on 1900-01-01"], [2, "placeholder_date", "on 1899-12-30"], [3, "placeholder_date", "on 1970-01-01"],
        [5, "future_date", "after 2026-01-01"], [6, "unparseable_date", "日期 '9999-12-31'"],  # beyond what a timestamp holds
        [8, "unparseable_date", "日期 '0001-01-01'"]]
    assert sorted(stage.orders["order_date"]) == [pd.Timestamp("1970-01-02"), pd.Timestamp("2024-03-01")]


def test_when_every_row_is_rejected_the_run_stops_after_writing_rejected_csv(case):
    c = case(shop(), **{"shop.csv": "客户ID,日期,金额\nC001,2099-12-31,10\nC002,1900-01-01,12\nC003,2099-01-01,5\n".encode()})
    assert c.stage_stops() == (
        f"no transaction row is left to analyse, every one was merged or rejected ({c.path('shop.csv')}: 2 future_date, "
        "1 placeholder_date); rejected.csv in the run folder lists each row; check `date_format` and `columns` of the transaction "
        "sources and `clean.window` / `clean.max_date`")
    assert c.rejected()["row"].tolist() == [1, 2, 3]


# --------------------------------------------------------------------------- encodings

TABLE = "客户ID,日期,金额,门店\nC001,2024-01-05,120.00,上海徐汇店\nC002,2024-01-06,88.50,北京朝阳店\n"
LATIN = "Kunde,Datum,Betrag,Filiale\nRenée Lefèvre,2024-01-05,120.00,Zürich\nJosé Müller,2024-01-06,88.50,Genève à côté\n"


@pytest.mark.parametrize("label, data, encoding", [
    ("GBK", TABLE.encode("gbk"), "gb18030"),
    ("UTF-8 with BOM", TABLE.encode("utf-8-sig"), "utf-8-sig"),
    ("UTF-16 from Excel's Unicode Text", TABLE.replace(",", "\t").replace("\n", "\r\n").encode("utf-16"), "utf-16"),
    ("Latin-1", LATIN.encode("latin-1"), "cp1252"),
])
def test_undeclared_encodings_are_detected_and_read_back_exactly(case, label, data, encoding):
    text = LATIN if label == "Latin-1" else TABLE
    header = text.splitlines()[0].split(",")
    c = case(SHOP.replace("客户ID: customer_id, 日期: order_date, 金额: amount",
                          f"{header[0]}: customer_id, {header[1]}: order_date, {header[2]}: amount, {header[3]}: store")
             .format(path="shop.csv", extra=""), **{"shop.csv": data})
    stage = c.stage()
    assert stage.inventory["encoding"].tolist() == [encoding]
    expected = [line.split(",") for line in text.splitlines()[1:]]
    assert stage.transactions[["customer_id", "store"]].values.tolist() == [[row[0], row[3]] for row in expected]
    assert stage.transactions["amount"].tolist() == [120.0, 88.5]


def test_a_declared_encoding_the_file_contradicts_stops_and_names_the_right_one(case):
    gbk = case(shop(extra="      encoding: utf-8\n"), **{"shop.csv": TABLE.encode("gbk")})
    assert gbk.stops() == (f"{gbk.path('shop.csv')}: is not utf-8 as `encoding` of source 'shop' says: line 1 (byte 0: BF) is not "
                           "valid utf-8; the file looks like gb18030: set `encoding: gb18030` (or auto)")
    utf16 = case(shop(extra="      encoding: utf-8\n"), **{"shop.csv": TABLE.encode("utf-16")})
    assert utf16.stops() == (f"{utf16.path('shop.csv')}: is not utf-8 as `encoding` of source 'shop' says: line 1 (byte 0: FF) is not "
                             "valid utf-8; the file looks like utf-16: set `encoding: utf-16` (or auto)")
    utf8 = case(shop(extra="      encoding: gb18030\n"), **{"shop.csv": TABLE.encode("utf-8")})
    assert utf8.stops() == (f"{utf8.path('shop.csv')}: is not gb18030 as `encoding` of source 'shop' says: line 2 (byte 67: 97) is not "
                            "valid gb18030; the file looks like utf-8: set `encoding: utf-8` (or auto)")
    # a UTF-8 file whose only Chinese is the header decodes as GB18030 without an error, into other characters (瀹㈡埛ID)
    header_only_chinese = "客户ID,日期,金额\nC001,2024-01-05,10\nC002,2024-01-06,20\n".encode()
    quiet = case(shop(extra="      encoding: gb18030\n"), **{"shop.csv": header_only_chinese})
    assert quiet.stops() == (f"{quiet.path('shop.csv')}: the mapped columns are in the header when it is read as utf-8, not as gb18030 "
                             "(`encoding: gb18030` of source 'shop' says); set `encoding: utf-8` of source 'shop'")
    # the narrower GBK codec reads the UTF-8 bytes in pairs and fails at byte 20: A2 9D (the end of 额) is no GBK character
    gbk = case(shop(extra="      encoding: gbk\n"), **{"shop.csv": TABLE.encode("utf-8")})
    assert gbk.stops() == (f"{gbk.path('shop.csv')}: is not gbk as `encoding` of source 'shop' says: line 1 (byte 20: A2) is not "
                           "valid gbk; the file looks like utf-8: set `encoding: utf-8` (or auto)")
    unknown = case(shop(extra="      encoding: utf8x\n"), **{"shop.csv": TABLE.encode("utf-8")})
    assert unknown.stops() == ("source 'shop': `encoding: utf8x` is not an encoding Python knows; use auto, utf-8, utf-8-sig, gb18030, "
                               "utf-16 or latin-1")


def test_a_line_in_another_encoding_is_named_by_line_and_byte(case):
    good = TABLE.encode("utf-8")
    pasted = "C003,2024-01-07,10.00,".encode() + "南京店".encode("gbk") + b"\n"  # 南 is C4 CF in GBK; C4 CF is no UTF-8
    mixed = "{path}: line {line} (byte {byte:,}: C4) is not valid utf-8, the encoding of the lines before it; the file mixes encodings: " \
            "set `encoding:` of source 'shop' to the right one or export it again as UTF-8"
    c = case(shop(), **{"shop.csv": good + pasted})
    assert c.stops() == mixed.format(path=c.path("shop.csv"), line=4, byte=len(good) + 22)
    # beyond the first 2 MB the detection never saw: the data stage names it; the check before a run reads only the head
    rows = "".join(f"C{i:06d},2024-01-05,120.00,上海徐汇店\n" for i in range(60_000)).encode()
    big = case(shop(), **{"shop.csv": good + rows + pasted})
    assert big.stage_stops() == mixed.format(path=big.path("shop.csv"), line=60_004, byte=len(good) + len(rows) + 22)
    ingest.check_sources(big.params, big.root)


# --------------------------------------------------------------------------- empty, header only, truncated, not what it says


def test_an_empty_file_and_a_header_only_file_stop(case, tmp_path):
    empty = case(shop(), **{"shop.csv": b""})
    assert empty.stops() == f"{empty.path('shop.csv')}: the file is empty; export it again or remove source 'shop'"
    blank = case(shop(), **{"shop.csv": b"\r\n\r\n"})
    assert blank.stops() == f"{blank.path('shop.csv')}: the file is empty; export it again or remove source 'shop'"
    header = case(shop(), **{"shop.csv": "header_only.csv"})
    assert header.stops() == (f"{header.path('shop.csv')}: has a header but no data rows; export it again with its rows, or remove "
                              "source 'shop' from params")
    pd.DataFrame(columns=["客户ID", "日期", "金额"]).to_excel(tmp_path / "header_only.xlsx", index=False)
    sheet = case(shop("shop.xlsx"), **{"shop.xlsx": (tmp_path / "header_only.xlsx").read_bytes()})
    assert sheet.stops() == (f"{sheet.path('shop.xlsx')}: has a header but no data rows; export it again with its rows, or remove "
                             "source 'shop' from params")


TRUNCATED = "truncated (cut off while exporting or copying); export or copy it again"


def test_truncated_files_stop(case):
    complete = "客户ID,日期,金额,门店\nC001,2024-01-05,120.00,上海徐汇店\nC002,2024-01-06,\"1,088.50\",北京朝阳店\n"
    mid_field = case(shop(), **{"shop.csv": complete[: complete.index("-06,") + 1].encode()})
    assert mid_field.stops() == (f"{mid_field.path('shop.csv')}: the last row (row 2) stops after 2 of 4 columns with no line end: "
                                 f"the file looks {TRUNCATED}")
    mid_quote = case(shop(), **{"shop.csv": complete[: complete.index("1,088") + 3].encode()})
    assert mid_quote.stops() == (f"{mid_quote.path('shop.csv')}: the last row is cut off inside a quoted value (no closing quote, no "
                                 f"line end): the file looks {TRUNCATED}")
    utf8 = complete.encode("utf-8")
    mid_char = case(shop(), **{"shop.csv": utf8[: utf8.index("朝".encode()) + 2]})
    assert mid_char.stops() == f"{mid_char.path('shop.csv')}: the file ends in the middle of a utf-8 character (line 3): it looks {TRUNCATED}"
    gbk = complete.encode("gbk")
    mid_gbk = case(shop(), **{"shop.csv": gbk[: gbk.index("朝".encode("gbk")) + 1]})
    assert mid_gbk.stops() == (f"{mid_gbk.path('shop.csv')}: the file ends in the middle of a gb18030 character (line 3): it looks "
                               f"{TRUNCATED}")
    packed = gzip.compress(("客户ID,日期,金额\n" + "C001,2024-01-05,120.00\n" * 2000).encode(), mtime=0)
    cut_gz = case(shop("shop.csv.gz"), **{"shop.csv.gz": packed[: len(packed) // 2]})
    assert cut_gz.stops() == (f"{cut_gz.path('shop.csv.gz')}: is a damaged or cut-off gzip file (Compressed file ended before the "
                              "end-of-stream marker was reached); copy or export it again")
    # a last line with every field and no line end is how many exports end: read, not stopped
    no_newline = case(shop(), **{"shop.csv": complete.rstrip("\n").encode()})
    assert no_newline.stage().transactions["amount"].tolist() == [120.0, 1088.5]


def test_files_that_are_not_the_format_their_name_says_stop(case):
    fake = case(shop("shop.xlsx"), **{"shop.xlsx": "not_really.xlsx"})
    assert fake.stops() == (f"{fake.path('shop.xlsx')}: is not an Excel workbook (it has neither the .xlsx nor the .xls signature; it "
                            "looks like text, e.g. a CSV with an Excel name); set `format: csv` of source 'shop' or save it from Excel as .xlsx")
    as_csv = case(shop("shop.xlsx", "      format: csv\n"), **{"shop.xlsx": "not_really.xlsx"})  # the fix the line names
    assert as_csv.stage().transactions["amount"].tolist() == [120.0, 88.5]
    web = case(shop("shop.xls"), **{"shop.xls": "web_export.xls"})
    assert web.stops() == (f"{web.path('shop.xls')}: is an HTML or XML page with an Excel name, not a workbook (some systems export web "
                           "tables so); open it in Excel and save it as .xlsx, then read it again")
    workbook = (CORPUS / "merged_header.xlsx").read_bytes()
    zipped = case(shop(), **{"shop.csv": workbook})
    assert zipped.stops() == (f"{zipped.path('shop.csv')}: is a zip archive or an .xlsx workbook, not CSV text; set `format: excel` of "
                              "source 'shop' (or unzip it and point `path` at the CSV)")
    damaged = case(shop("shop.xlsx"), **{"shop.xlsx": workbook[: len(workbook) // 2]})
    message = damaged.stops()
    assert message.startswith(f"{damaged.path('shop.xlsx')}: cannot be read as an Excel workbook (")
    assert message.endswith("); the file is damaged or cut off: open it in Excel and save it again, or export it again")
    binary = case(shop(), **{"shop.csv": bytes(range(256)) * 4})
    assert binary.stops() == (f"{binary.path('shop.csv')}: contains NUL bytes, so it is not CSV text in latin-1 (a binary file, or UTF-16 "
                              "without its mark?); export it again as CSV, or set `encoding:` of source 'shop'")


def test_a_workbook_with_merged_header_rows_names_the_header_row_then_reads(case):
    c = case(shop("sales.xlsx"), **{"sales.xlsx": "merged_header.xlsx"})
    assert c.stops() == (
        f"{c.path('sales.xlsx')}: 3 mapped columns are not in the file: '客户ID' (mapped to customer_id), '日期' (mapped to order_date), "
        "'金额' (mapped to amount); the file's columns are ['2024年1月销售明细', 'Unnamed: 1', 'Unnamed: 2', 'Unnamed: 3']; the mapped "
        "columns are all in row 3 of the file (below title or group rows): set `header_row: 2` of source 'shop'")
    fixed = case(shop("sales.xlsx", "      header_row: 2\n"), **{"sales.xlsx": "merged_header.xlsx"})
    stage = fixed.stage()
    lines = stage.transactions
    assert lines["customer_id"].tolist() == ["C001", "C002", "1003", "C001"]
    assert lines["amount"].tolist() == [120.0, 1234.5, 88.5, 45.0]
    assert lines["order_date"].tolist() == [pd.Timestamp("2024-01-05 14:22"), pd.Timestamp("2024-01-06 09:00"),
                                            pd.Timestamp("2024-01-07 18:30"), pd.Timestamp("2024-01-20 11:05")]
    assert reasons(fixed.ledger()) == {"kept": 4} and stage.orders["customer_id"].nunique() == 3


# --------------------------------------------------------------------------- customers


MEMBERS = """
sources:
  transactions:
    - name: shop
      path: shop.csv
      columns: {{客户ID: customer_id, 日期: order_date, 金额: amount}}
  customers:
    name: members
    path: {path}
    columns: {{会员卡号: customer_id, 地区: region, 城市: city}}
"""
ORDERS = "客户ID,日期,金额\nC001,2024-01-05,10\nC002,2024-01-06,20\nC003,2024-01-07,30\nC004,2024-01-08,40\n".encode()


def test_duplicate_customer_ids_are_merged_into_the_first_row_and_counted(case):
    c = case(MEMBERS.format(path="members.csv"), **{"shop.csv": ORDERS, "members.csv": "members_duplicate_ids.csv"})
    stage = c.stage()
    members = c.ledger().query("table == 'customers'")
    assert members[["row", "status", "reason"]].values.tolist() == [
        [1, "kept", "kept"], [2, "kept", "kept"], [3, "merged", "exact_duplicate"], [4, "kept", "kept"],
        [5, "merged", "duplicate_customer_id"], [6, "rejected", "missing_customer_id"], [7, "kept", "kept"],
        [8, "merged", "duplicate_customer_id"]]
    assert members["detail"].astype(object).where(members["detail"].notna(), None).tolist()[2:] == ["identical to row 1", None, "same customer id as row 2; differs in region, city",
                                                 None, None, "same customer id as row 4; differs in city"]
    assert stage.tables["customers"][["customer_id", "region", "city"]].values.tolist() == [
        ["C001", "华东", "上海"], ["C002", "华北", "北京"], ["C003", "华南", "广州"], ["C004", "西南", "成都"]]
    recon = stage.reconciliation.set_index("source").loc["members"]
    assert recon[["rows_read", "rows_kept", "rows_merged", "rows_rejected"]].tolist() == [8, 4, 3, 1]
    text = narrative(stage, "CNY")
    assert "The customers table has 4 clean rows." in text
    assert ("2 customer rows repeated the id of an earlier row with other values; each was merged into the first row of its id "
            "(`data/ledger.parquet` in the run folder names that row and the columns that differ).") in text


def test_a_customers_table_that_is_not_one_row_per_customer_stops(case):
    c = case(MEMBERS.format(path="members.csv").replace("地区: region, 城市: city}", "}\n    attributes: {门店: store_name}"),
             **{"shop.csv": ORDERS, "members.csv": "members_one_row_per_visit.csv"})
    assert c.stage_stops() == (
        f"{c.path('members.csv')}: 3 of 5 rows repeat the customer id of an earlier row with other values (e.g. rows 1 and 2), so the "
        "customers table is not one row per customer; check the column mapped to customer_id under `columns` of source 'members', "
        "or export one row per customer")


def test_a_single_customer_is_a_report(case):
    c = case(shop(), **{"shop.csv": "single_customer.csv"})
    stage = c.stage()
    assert reasons(c.ledger()) == {"kept": 3}
    assert len(stage.orders) == 3 and stage.orders["customer_id"].unique().tolist() == ["C001"]
    assert "The clean data holds **3 orders** from **1 customer** between 2024-01-05 and 2024-03-05" in narrative(stage, "CNY")


# --------------------------------------------------------------------------- amounts


RETURNS = """
sources:
  transactions:
    - name: shop
      path: shop.csv
      currency: {currency}
      columns: {{小票号: order_id, 客户ID: customer_id, 日期: order_date, 金额: amount, 单据类型: order_status, 原小票号: original_order_id}}
      returns: [{{column: order_status, equals: [退货]}}]
"""


def test_amounts_with_currency_marks_and_thousands_separators(case):
    cny = case(RETURNS.format(currency="CNY"), **{"shop.csv": "amounts_cny.csv"})
    stage = cny.stage()
    ledger = cny.ledger()
    assert ledger["amount"].tolist() == [1234.5, 1234.0, 1234.5, 88.0, -234.5, 1234.0]  # ¥1,234.50 RMB 1 234 ... (234.50) 1,234
    assert reasons(ledger) == {"kept": 5, "return_netted": 1}
    assert stage.orders.set_index("order_id")["net_amount"].to_dict() == {"S1": 1000.0, "S2": 1234.0, "S3": 1234.5, "S4": 88.0, "S5": 1234.0}
    eur = case(RETURNS.format(currency="EUR"), **{"shop.csv": "amounts_eur.csv"})
    stage = eur.stage()
    assert eur.ledger()["amount"].tolist() == [1234.5, 12.0, 3.5, 1234.5, -234.5]  # 1.234,50 € 12,00 € € 3,5 1 234,50 (234,50)
    assert stage.orders["net_amount"].sum() == pytest.approx(2250.0)


def test_an_amount_in_the_other_decimal_convention_is_rejected_not_misread(case):
    c = case(shop(), **{"shop.csv": "amounts_two_conventions.csv"})
    stage = c.stage()
    assert reasons(c.ledger()) == {"kept": 2, "unparseable_amount": 1}
    assert c.rejected()[["row", "detail"]].values.tolist() == [[3, "金额 '1.234,50 €'"]]  # never 1.2345
    assert stage.orders["net_amount"].sum() == pytest.approx(3579.5)


def test_an_extreme_amount_is_rejected_as_an_outlier(case):
    c = case(shop(), **{"shop.csv": "outliers.csv"})
    stage = c.stage()
    assert reasons(c.ledger()) == {"kept": 30, "outlier": 1}
    rejected = c.rejected()
    assert rejected[["row", "reason", "amount"]].values.tolist() == [[31, "outlier", 98765432.1]]
    assert rejected["detail"].iloc[0].startswith("robust z of log amount ") and float(rejected["detail"].iloc[0].split()[-1]) > 7
    assert stage.orders["net_amount"].sum() == pytest.approx(sum(50 + 5 * i for i in range(30)))


# --------------------------------------------------------------------------- end to end through the command line


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tierbook", "--root", str(root), *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


@pytest.mark.parametrize("params_text, name, content, expected", [
    (shop(extra="      encoding: utf-8\n"), "shop.csv", TABLE.encode("gbk"),
     "{path}: is not utf-8 as `encoding` of source 'shop' says: line 1 (byte 0: BF) is not valid utf-8; the file looks like gb18030: "
     "set `encoding: gb18030` (or auto)"),
    (shop("sales.xlsx"), "sales.xlsx", "merged_header.xlsx",
     "{path}: 3 mapped columns are not in the file: '客户ID' (mapped to customer_id), '日期' (mapped to order_date), '金额' (mapped to "
     "amount); the file's columns are ['2024年1月销售明细', 'Unnamed: 1', 'Unnamed: 2', 'Unnamed: 3']; the mapped columns are all in "
     "row 3 of the file (below title or group rows): set `header_row: 2` of source 'shop'"),
], ids=["gbk-declared-utf-8", "workbook-with-merged-header-rows"])
def test_the_command_line_stops_a_bad_file_in_one_line_before_any_run(case, capsys, params_text, name, content, expected):
    from tierbook.cli import main

    c = case(params_text, **{name: content})
    (c.root / "notebooks").symlink_to(REPO / "notebooks")
    done = _cli(c.root, "report", "--client", "acme")
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: " + expected.format(path=c.path(name))]
    assert "Traceback" not in done.stdout + done.stderr
    assert not (c.root / "reports").exists()  # no run folder, so none marked failed and none made latest
    assert main(["--root", str(c.root), "check", "--client", "acme"]) == 2  # make check says the same
    assert capsys.readouterr().err == done.stderr


# --------------------------------------------------------------------------- properties of the readers

HEADER = ["客户ID", "日期", "金额", "门店", "备注"]
CELL = st.text(alphabet=st.sampled_from(list("AbC019 .-/,;|\t\"'¥") + list("张三李四上海徐汇店美妆会员")), max_size=12)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_columns=st.integers(2, 5), rows=st.lists(st.lists(CELL, min_size=5, max_size=5), min_size=1, max_size=8),
       delimiter=st.sampled_from([",", ";", "\t", "|"]), encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16"]))
def test_any_table_written_as_csv_reads_back_identically(tmp_path_factory, n_columns, rows, delimiter, encoding):
    """Whatever the cells (quotes, delimiters and Chinese inside values, blanks), the encoding and
    the delimiter, the reader finds both and gives back each cell (stripped; blank = missing)."""
    header = HEADER[:n_columns]
    rows = [r[:n_columns] for r in rows]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows([header, *rows])
    path = tmp_path_factory.mktemp("csv") / "table.csv"
    path.write_bytes(buffer.getvalue().encode(encoding))
    source = _source(path.name)
    raw = ingest.read_source(source, path)
    assert raw.encoding == encoding
    assert list(raw.frame.columns) == header
    expected = [[cell.strip() or None for cell in row] for row in rows]
    got = [[None if pd.isna(v) else str(v).strip() or None for v in row] for row in raw.frame.itertuples(index=False)]
    assert got == expected


def _source(path: str, fmt: str = "auto"):
    from tierbook.params import TransactionSource

    return TransactionSource(name="shop", path=path, format=fmt, columns={"客户ID": "customer_id", "日期": "order_date", "金额": "amount"})


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=3000), st.binary(max_size=600).map(lambda b: "客户ID,日期,金额\n".encode() + b)),
       name=st.sampled_from(["shop.csv", "shop.xlsx", "shop.csv.gz", "shop.parquet", "shop.txt"]))
def test_garbage_bytes_give_a_table_or_one_line_never_another_exception(tmp_path_factory, data, name):
    from tierbook.params import load_params

    root = tmp_path_factory.mktemp("garbage")
    path = root / name
    path.write_bytes(data)
    params = load_params("demo", REPO / "params")
    source = _source(name)
    for attempt in (lambda: ingest.map_source(ingest.read_source(source, path), source, params),
                    lambda: ingest.map_source(ingest.read_source(source, path, head_only=True), source, params)):
        try:
            mapped = attempt()
        except TierbookError as err:
            assert "\n" not in str(err) and str(err)
        else:
            assert {"customer_id", "order_date", "amount", "row"} <= set(mapped.columns)
    assert path.read_bytes() == data


@settings(max_examples=100, deadline=None, derandomize=True)
@given(cents=st.lists(st.integers(-10**11, 10**11), min_size=1, max_size=12), style=st.sampled_from(["cny", "rmb", "eur", "space", "plain"]),
       parentheses=st.booleans())
def test_formatted_amounts_parse_to_the_cent(cents, style, parentheses):
    """One column, one way of writing: ¥1,234.50 / RMB 1 234.50 / 1.234,50 € / 1 234,50 / 1234.50,
    negatives as -x or (x); the decimal mark is found from the column."""
    def write(c: int) -> str:
        units, rest = divmod(abs(c), 100)
        body = {"cny": f"¥{units:,}.{rest:02d}", "rmb": f"RMB {units:,}.{rest:02d}".replace(",", " "),
                "eur": f"{units:,}.{rest:02d}".replace(",", "X").replace(".", ",").replace("X", ".") + " €",
                "space": f"{units:,},{rest:02d}".replace(",", " ", f"{units:,}".count(",")),
                "plain": f"{units}.{rest:02d}"}[style]
        if c < 0:
            return f"({body})" if parentheses else f"-{body}"
        return body

    parsed = ingest.parse_numbers(pd.Series([write(c) for c in cents], dtype=object))
    assert (parsed * 100).round().astype("int64").tolist() == cents


@settings(max_examples=60, deadline=None, derandomize=True)
@given(days=st.lists(st.dates(dt.date(1971, 1, 1), dt.date(2100, 12, 31)), min_size=1, max_size=15),
       formats=st.lists(st.sampled_from(["%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%Y%m%d"]), min_size=15, max_size=15))
def test_dates_written_in_several_formats_in_one_column_parse(days, formats):
    """A column mixing ISO, slashes, 年月日 and day-first dates; one day-first date that can only be
    read day-first (13/01/2024) is in the column, as in an export that mixes them."""
    written = ["13/01/2024"] + [day.strftime(fmt) for day, fmt in zip(days, formats)]
    parsed = ingest.parse_datetimes(pd.Series(written, dtype=object), None, dayfirst=False)
    assert parsed.dt.normalize().tolist() == [pd.Timestamp("2024-01-13")] + [pd.Timestamp(day) for day in days]
