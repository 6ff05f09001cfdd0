"""make init: reading a new client's raw exports, guessing tables and column roles, the draft params
and the data-profile page."""

import datetime as dt
import hashlib
import re
import shutil

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO


def _sha(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _project(tmp_path):
    root = tmp_path / "project"
    (root / "params").mkdir(parents=True)
    shutil.copy(REPO / "params" / "default.yaml", root / "params" / "default.yaml")
    (root / "notebooks").symlink_to(REPO / "notebooks")
    return root


def _roles(profile):
    return {c.column: c.role for c in profile.columns}


@pytest.fixture
def hand_made(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    # GBK, Chinese headers; one of 20 order times is garbage (95.0 % parse); refunds marked 退款
    times = [f"2025/03/{d:02d} 10:{d:02d}" for d in range(1, 20)] + ["昨天下午"]
    status = ["已支付"] * 17 + ["退款"] * 3
    gbk = pd.DataFrame({"订单号": [f"D{i:04d}" for i in range(20)], "会员卡号": [f"00{i % 7}" for i in range(20)], "下单时间": times,
                        "实付金额": [f"{10 + i}.50" for i in range(20)], "状态": status})
    gbk.to_csv(folder / "订单导出.csv", index=False, encoding="gbk")
    # UTF-8 with BOM survey in Chinese
    survey = pd.DataFrame({"客户ID": ["001", "002", "003", "004"], "填写时间": ["2025-04-01", "2025-04-02", "2025-04-03", "2025-04-04"],
                           "推荐意愿": [10, 3, 8, 9], "满意度": [5, 2, 4, 5], "留言": ["很好", "太慢", "", "不错"]})
    survey.to_csv(folder / "问卷.csv", index=False, encoding="utf-8-sig")
    # Latin-1 with ';' and day-first dates
    (folder / "shop_eu.csv").write_bytes("customer_id;date;amount;city\nA1;03.02.2025;12.50;Zürich\nA2;04.02.2025;7.00;Köln\n"
                                         "A1;05.02.2025;3.25;Zürich\n".encode("latin-1"))
    # a workbook: a notes sheet and a members sheet with a title row above the header
    with pd.ExcelWriter(folder / "members.xlsx", engine="openpyxl") as writer:
        pd.DataFrame({"说明": ["会员导出", "2025-05-01"]}).to_excel(writer, sheet_name="说明", index=False)
        rows = [["会员导出 2025-05-01", None, None, None], ["会员卡号", "姓名", "手机号", "注册日期"],
                ["001", "王伟", "13812345678", dt.datetime(2024, 1, 5)], ["002", "李娜", "13987654321", dt.datetime(2024, 2, 6)],
                ["003", "张敏", "15011112222", dt.datetime(2024, 3, 7)]]
        pd.DataFrame(rows).to_excel(writer, sheet_name="会员", index=False, header=False)
    # Parquet with real timestamps
    pd.DataFrame({"customer_id": ["001", "002"], "order_date": pd.to_datetime(["2025-01-02", "2025-01-03"]),
                  "amount": [20.0, 30.0]}).to_parquet(folder / "app_orders.parquet")
    # a file that is none of the tables
    (folder / "skus.csv").write_text("sku,description,weight_kg\nS1,teapot,0.8\nS2,cup,0.2\n", encoding="utf-8")
    return folder


def test_each_file_and_column_is_recognised(hand_made):
    from tierbook.onboard import profile_folder

    profiles = {p.label: p for p in profile_folder(hand_made)}
    gbk = profiles["订单导出.csv"]
    assert gbk.encoding == "gb18030" and gbk.table == "transactions" and gbk.rows == 20
    assert _roles(gbk) == {"订单号": "order_id", "会员卡号": "customer_id", "下单时间": "order_date", "实付金额": "amount", "状态": "order_status"}
    date = next(c for c in gbk.columns if c.column == "下单时间")
    assert date.date_format == "%Y/%m/%d %H:%M" and "95.0% parse as %Y/%m/%d %H:%M" in date.evidence
    assert [(r["column"], r["equals"]) for r in gbk.returns] == [("order_status", ["退款"])]

    survey = profiles["问卷.csv"]
    assert survey.encoding == "utf-8-sig" and survey.table == "survey"
    assert _roles(survey) == {"客户ID": "customer_id", "填写时间": "response_date", "推荐意愿": "nps", "满意度": "csat", "留言": "comment"}

    eu = profiles["shop_eu.csv"]
    assert eu.delimiter == ";" and eu.table == "transactions" and "Zürich" in eu.sample["city"].tolist()
    assert _roles(eu) == {"customer_id": "customer_id", "date": "order_date", "amount": "amount", "city": None}
    assert next(c for c in eu.columns if c.column == "date").date_format == "%d.%m.%Y"

    members = profiles["members.xlsx [会员]"]
    assert members.header_row == 1 and members.table == "customers" and members.rows == 3
    assert _roles(members) == {"会员卡号": "customer_id", "姓名": "name", "手机号": "phone", "注册日期": "signup_date"}
    assert profiles["members.xlsx [说明]"].table == "unknown"

    parquet = profiles["app_orders.parquet"]
    assert parquet.table == "transactions" and parquet.counted_by == "DuckDB (full scan)" and parquet.channel == "online"
    assert profiles["skus.csv"].table == "unknown" and all(c.role is None for c in profiles["skus.csv"].columns)


def test_draft_is_valid_commented_and_never_guesses_silently(hand_made, tmp_path):
    from tierbook.errors import TierbookError
    from tierbook.onboard import run_init
    from tierbook.params import load_params

    root = _project(tmp_path)
    before = _sha(hand_made)
    target, page, _ = run_init("acme", hand_made, root)
    assert _sha(hand_made) == before  # inputs byte for byte unchanged
    assert sorted(p.name for p in hand_made.iterdir()) == sorted(before)  # and nothing written next to them
    text = target.read_text(encoding="utf-8")
    assert '"下单时间": order_date   # high: name; 95.0% parse as %Y/%m/%d %H:%M' in text
    assert "(PII: dropped at ingest, never shown)" in text
    assert "# TODO: skus.csv is not mapped" in text and "# TODO: members.xlsx [说明] is not mapped" in text
    assert "# city: unknown" in text
    params = load_params("acme", root / "params")
    assert [s.path for s in params.sources.transactions] == ["app_orders.parquet", "shop_eu.csv", "订单导出.csv"]
    assert params.sources.customers.sheet == "会员" and params.sources.customers.header_row == 1
    assert params.sources.survey.columns["推荐意愿"] == "nps"
    with pytest.raises(TierbookError, match="exists; init never overwrites"):
        run_init("acme", hand_made, root)
    run_init("acme", hand_made, root, force=True)
    with pytest.raises(TierbookError, match="no such folder"):
        run_init("other", tmp_path / "missing", root)


def test_profile_page_masks_personal_data(hand_made, tmp_path):
    from tierbook.onboard import run_init

    root = _project(tmp_path)
    _, page, _ = run_init("acme", hand_made, root)
    html = page.read_text(encoding="utf-8")
    for value in ("13812345678", "13987654321", "王伟", "李娜"):
        assert value not in html
    assert "138****5678" in html and "王*" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "of rows have no customer id" in html and "are in the membership table" in html


@pytest.fixture(scope="module")
def demo_exports(tmp_path_factory):
    """The demo's five raw exports (its truth files are for tests and not part of a client's folder)."""
    from tierbook.demo import generate

    full = tmp_path_factory.mktemp("demo_full")
    generate(full, size=400, seed=20240101)
    folder = tmp_path_factory.mktemp("demo_exports")
    for name in ("pos_transactions.csv", "ecommerce_orders.csv", "members.xlsx", "survey.csv", "experiment.csv"):
        (folder / name).symlink_to(full / name)
    return folder


def test_demo_reproduces_the_hand_written_params(demo_exports, tmp_path):
    from tierbook.onboard import run_init

    root = _project(tmp_path)
    target, page, profiles = run_init("demo2", demo_exports, root)
    ecom = next(p for p in profiles if p.path.name == "ecommerce_orders.csv")
    order_id = next(c for c in ecom.columns if c.role == "order_id")
    assert ecom.counted_by == "DuckDB (full scan)" and order_id.distinct == ecom.rows  # exact counts: every order id is unique
    draft = yaml.safe_load(target.read_text(encoding="utf-8"))["sources"]
    truth = yaml.safe_load((REPO / "params" / "demo.yaml").read_text(encoding="utf-8"))["sources"]
    drafted = {s["path"]: s for s in draft["transactions"] + [draft[k] for k in ("customers", "survey", "experiment")]}
    written = {s["path"]: s for s in truth["transactions"] + [truth[k] for k in ("customers", "survey", "experiment")]}
    assert set(drafted) == set(written)
    for path, source in written.items():
        got = drafted[path]
        assert got["columns"] == source["columns"], path
        for key in ("sheet", "date_format", "channel", "returns", "outcomes"):
            if key in source:
                assert got[key] == source[key], (path, key)
    members = pd.read_excel(demo_exports / "members.xlsx", dtype=str)
    html = page.read_text(encoding="utf-8")
    assert not any(v in html for v in members["手机号"].tolist() + members["邮箱"].tolist())


def _linked(tmp_path, *files):
    folder = tmp_path / "exports"
    folder.mkdir(parents=True)
    for f in files:
        (folder / f.name).symlink_to(f)
    return folder


@pytest.mark.realdata
def test_real_datasets_id_date_and_amount(shared_data, tmp_path):
    from tierbook.onboard import profile_folder

    retail = profile_folder(_linked(tmp_path / "or", shared_data / "online_retail" / "online_retail.csv.gz"))[0]
    assert retail.table == "transactions" and retail.rows == 541_909
    assert {k: v for k, v in _roles(retail).items() if v} == {
        "InvoiceNo": "order_id", "StockCode": "product_id", "Quantity": "quantity", "InvoiceDate": "order_date",
        "UnitPrice": "unit_price", "CustomerID": "customer_id", "Country": "region"}
    assert [(r["column"], r.get("startswith")) for r in retail.returns] == [("order_id", "C")]

    cdnow = profile_folder(_linked(tmp_path / "cd", shared_data / "cdnow" / "CDNOW_master.txt"))[0]
    assert cdnow.delimiter == r"\s+" and cdnow.table == "transactions" and cdnow.rows == 69_659
    assert [c.role for c in cdnow.columns] == ["customer_id", "order_date", "quantity", "amount"]
    assert cdnow.columns[1].date_format == "%Y%m%d" and cdnow.sample["customer_id"].iloc[0] == "00001"  # zero padding kept

    hill = profile_folder(_linked(tmp_path / "hs", shared_data / "hillstrom" / "hillstrom.csv"))[0]
    assert hill.table == "experiment" and hill.role_of("variant") == "segment" and hill.role_of("customer_id") is None
    assert {c.column for c in hill.columns if c.role == "outcome"} == {"visit", "conversion", "spend"}

    telco = profile_folder(_linked(tmp_path / "tc", shared_data / "telco_churn" / "WA_Fn-UseC_-Telco-Customer-Churn.csv"))[0]
    assert telco.table == "customers" and telco.role_of("customer_id") == "customerID" and telco.role_of("gender") == "gender"


def test_a_file_without_header_is_mapped_by_position_as_a_proposal(tmp_path):
    from tierbook.onboard import draft_params, profile_folder

    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "master.txt").write_text(" 00001 19970101  1   11.77\n 00002 19970112  2   89.00\n 00001 19970302  5   57.77\n", encoding="ascii")
    (p,) = profile_folder(folder)
    assert not p.has_header and p.table == "transactions" and [c.role for c in p.columns] == ["customer_id", "order_date", "quantity", "amount"]
    text = draft_params([p], "x", folder)
    assert "# TODO: master.txt has no header row; add one (customer_id, order_date, quantity, amount) and uncomment:" in text
    assert yaml.safe_load(text)["sources"]["transactions"] is None  # the proposal is commented out: make check says what is missing


@pytest.mark.realdata
def test_cdnow_and_hillstrom_drafts(shared_data, tmp_path):
    from tierbook.onboard import draft_params, profile_folder
    from tierbook.params import Sources

    folder = _linked(tmp_path / "both", shared_data / "cdnow" / "CDNOW_master.txt", shared_data / "hillstrom" / "hillstrom.csv")
    text = draft_params(profile_folder(folder), "x", folder)
    sources = yaml.safe_load(text)["sources"]
    assert sources["transactions"][0]["delimiter"] == r"\s+" and sources["transactions"][0]["date_format"] == "%Y%m%d"
    assert "# TODO: no column was recognised as customer_id (required)" in text  # Hillstrom has no customer id
    assert sources["experiment"]["columns"] == {"segment": "variant", "history": "pre_value"}
    Sources.model_validate({"transactions": sources["transactions"]})  # the CDNOW source is valid as drafted


@pytest.mark.realdata
@pytest.mark.slow
def test_online_retail_report_runs_on_the_draft_with_no_edits(shared_data, tmp_path):
    from tierbook.onboard import run_init
    from tierbook.report import Project, run_report

    root = _project(tmp_path)
    run_init("retail", _linked(tmp_path / "or", shared_data / "online_retail" / "online_retail.csv.gz"), root)
    result = run_report(Project(root), "retail", [])
    assert result.status == "succeeded", result
    scores = pd.read_csv(result.run_dir / "customer_scores.csv", dtype={"customer_id": str})
    assert 4_300 < len(scores) < 4_400  # the 4,339 customers with a purchase, less those whose orders were all returned


def test_an_order_export_with_the_buyers_personal_data(tmp_path):
    """A marketplace export (names only partly known, buyer name / phone / address on every order, a
    是否退货 flag) is still transactions; the personal columns are listed, never mapped or shown."""
    from tierbook.onboard import draft_params, profile_folder
    from tierbook.onboard_page import write_profile_page

    folder = tmp_path / "tb"
    folder.mkdir()
    pd.DataFrame({"订单编号": [f"T{i}" for i in range(30)], "买家会员名": [f"u{i % 9}" for i in range(30)],
                  "收货人姓名": ["王伟", "李娜", "张敏"] * 10, "联系手机": ["13812345678", "139-8765-4321", "15011112222"] * 10,
                  "收货地址": ["上海市浦东新区世纪大道100号"] * 30, "订单付款时间": [f"2025-03-{d % 28 + 1:02d} 10:00:00" for d in range(30)],
                  "买家实际支付金额": [f"{i}.5" for i in range(30)], "是否退货": ["否"] * 27 + ["是"] * 3,
                  "备注": ["请联系 wang.wei@qq.com", "电话 135 0000 1111"] + ["周末送货", "", "放门口"] * 9 + [""]}).to_csv(folder / "tmall_orders.csv", index=False)
    (p,) = profile_folder(folder)
    assert p.table == "transactions" and p.channel == "online"
    assert {c.column: c.role for c in p.columns if c.role} == {"订单编号": "order_id", "买家会员名": "customer_id", "订单付款时间": "order_date",
                                                               "买家实际支付金额": "amount", "是否退货": "order_status"}
    assert {c.column: c.pii for c in p.columns if c.pii} == {"收货人姓名": "name", "联系手机": "phone", "收货地址": "address"}
    assert next(c for c in p.columns if c.column == "买家会员名").evidence == "name contains '会员名'; 9 distinct of 30"
    assert [(r["column"], r["equals"]) for r in p.returns] == [("order_status", ["是"])]
    text = draft_params([p], "tb", folder)
    assert '# 联系手机: personal data (phone; name contains \'手机\'; 100.0% look like phone numbers): not mapped' in text
    assert '- {column: "order_status", equals: ["是"]}   # 是否退货 is 是 on 10.0% of rows' in text
    html = write_profile_page([p], "tb", folder, tmp_path / "page.html").read_text(encoding="utf-8")
    for value in ("王伟", "13812345678", "8765-4321", "世纪大道", "wang.wei@qq.com", "0000 1111"):
        assert value not in html, value
    assert "138****5678" in html and "phone, not read" in html and "请联系 w***@qq.com" in html and "电话 135****1111" in html


def test_counts_ranges_and_date_span_come_from_the_whole_file(tmp_path, monkeypatch):
    """Roles are guessed on the first SAMPLE_ROWS rows; rows, ranges and the date span cover the whole
    file, by DuckDB (UTF-8 CSV, Parquet), pandas in chunks (GBK) or the whole sheet (Excel)."""
    from tierbook import onboard

    monkeypatch.setattr(onboard, "SAMPLE_ROWS", 10)
    folder = tmp_path / "big"
    folder.mkdir()
    frame = pd.DataFrame({"customer_id": [f"C{i % 7}" for i in range(30)],
                          "order_date": [f"2025-01-{d + 1:02d}" for d in range(29)] + ["2026-06-30"],
                          "amount": [f"{i}.5" for i in range(1, 30)] + ["999.5"]})
    frame.to_csv(folder / "web_orders.csv", index=False)
    frame.rename(columns={"customer_id": "会员卡号", "order_date": "交易日期", "amount": "金额"}).to_csv(folder / "门店流水.csv", index=False,
                                                                                                   encoding="gbk")
    frame.to_excel(folder / "app_orders.xlsx", index=False)
    frame.assign(order_date=pd.to_datetime(frame["order_date"]), amount=frame["amount"].astype(float)).to_parquet(folder / "mini_orders.parquet")
    (folder / "spaced_orders.csv").write_text(frame.to_csv(index=False).replace(",", ", "), encoding="utf-8")
    frame.assign(note="x", note2="y").rename(columns={"note2": "note"}).to_csv(folder / "twice_orders.csv", index=False)  # note, note
    profiles = {p.path.name: p for p in onboard.profile_folder(folder)}
    counted = {name: p.counted_by for name, p in profiles.items()}
    assert counted == {"web_orders.csv": "DuckDB (full scan)", "门店流水.csv": "pandas (full scan in chunks)",
                       "app_orders.xlsx": "pandas (whole table)", "mini_orders.parquet": "DuckDB (full scan)",
                       "spaced_orders.csv": "DuckDB (full scan)", "twice_orders.csv": "pandas (full scan in chunks); DuckDB could not parse it"}
    for name, p in profiles.items():
        assert p.table == "transactions" and p.rows == 30, name
        assert p.date_span == ("2025-01-01", "2026-06-30"), name
        assert [c.value_range for c in p.columns][:3] == ["", "2025-01-01 to 2026-06-30", "1.5 to 999.5"], name
        assert p.notes == ["roles guessed on the first 10 of 30 rows"], name
    assert profiles["web_orders.csv"].columns[0].distinct == 7  # distinct over the file, not the sample of 10


def test_a_file_that_cannot_be_read_is_reported_not_fatal(tmp_path):
    from tierbook.errors import TierbookError
    from tierbook.onboard import draft_params, profile_folder

    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "broken.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(TierbookError, match=r"broken.xlsx: cannot be read \(.*\); export it as CSV \(UTF-8\) or .xlsx"):
        profile_folder(folder)  # the only file: init stops with one line naming it
    (folder / "orders.csv").write_text("customer_id,order_date,amount\nA,2025-01-02,3.5\nA,2025-01-05,4\n", encoding="utf-8")
    profiles = profile_folder(folder)
    broken = next(p for p in profiles if p.path.name == "broken.xlsx")
    assert broken.table == "unknown" and broken.table_evidence.startswith("cannot be read (")
    text = draft_params(profiles, "x", folder)
    assert "# TODO: broken.xlsx is not mapped: cannot be read (" in text and '- name: "orders"' in text


ROLE_CASES = [  # (column name, values, the role guessed, a fragment of the evidence)
    ("客户编号", ["C001", "C002", "C001"], "customer_id", "name; 2 distinct of 3"),
    ("Invoice", ["536365", "536366", "C536367"], "order_id", "name; 3 distinct of 3"),
    ("订单日期", ["2025年03月01日", "2025年03月02日", "2025年3月4日"], "order_date", "name; 100.0% parse as %Y年%m月%d日"),
    ("付款日期", ["2025/03/01", "2025/03/02", "2025/03/04"], "date", "name contains '日期'; 100.0% parse as %Y/%m/%d"),  # the table decides
    ("Sales", ["¥1,234.50", "¥20.00", "-¥3.10"], "amount", "100.0% numeric (¥ amounts)"),
    ("Qty", ["1", "2", "-1"], "quantity", "100.0% numeric"),
    ("售价", ["9.9", "19.9", "29"], "unit_price", "100.0% numeric"),
    ("币种", ["CNY", "CNY", "USD"], "currency", "2 distinct values"),
    ("is_return", ["N", "N", "Y"], "return_flag", "a yes/no column, 'y' on 33.3% of rows"),
    ("销售渠道", ["天猫", "京东", "门店"], "channel", "3 distinct values"),
    ("店铺", ["旗舰店", "旗舰店", "专卖店"], "store", "2 distinct values"),
    ("商品类别", ["美妆", "服饰", "美妆"], "category", "2 distinct values"),
    ("成本价", ["5.1", "7.2", "8"], "cost", "100.0% numeric"),
    ("优惠金额", ["0", "5", "10"], "discount", "100.0% numeric"),
    ("推荐意愿", ["0", "7", "10"], "nps", "integers 0..10"),
    ("满意度", ["1", "3", "5"], "csat", "integers 1..5"),
    ("test_group", ["control", "treatment", "control"], "variant", "2 distinct values"),
    ("会员姓名", ["王伟", "李娜", "张敏"], "name", "3 distinct values"),
    ("联系电话", ["138 1234 5678", "+8613987654321", "150-1111-2222"], "phone", "100.0% look like phone numbers"),
    ("E-mail", ["a@qq.com", "b@163.com", "c@x.cn"], "email", "100.0% look like e-mail addresses"),
    ("收货地址", ["上海市徐汇区", "北京市朝阳区", "广州市天河区"], "address", "3 distinct values"),
    # no name to go on: the values alone
    ("col7", ["13812345678", "13987654321", "15011112222"], "phone", "100% look like phone numbers"),
    ("col8", ["a@qq.com", "b@163.com", "c@x.cn"], "email", "100% look like e-mail addresses"),
    ("col9", ["2025-03-01 10:00", "2025-03-02 11:30", "2025-03-04 09:15"], "date", "100.0% parse as %Y-%m-%d %H:%M"),
    # a known name the values contradict: not mapped
    ("NPS", ["12", "85", "100"], None, "the name says nps but integers 12..100; numeric 12..100"),
    ("order_date", ["soon", "later", "never"], None, "the name says order_date but 0.0% parse as a date; text, 3 distinct values"),
    ("支付日期", ["2025/03/01", "2025/03/02", "2025/13/04"], None, "the name suggests date but 66.7% parse as %Y/%m/%d"),
    ("phone", ["yes", "no", "yes"], None, "the name says phone but 0.0% look like phone numbers; text, 2 distinct values"),
]


@pytest.mark.parametrize("column, values, role, evidence", ROLE_CASES, ids=[c[0] for c in ROLE_CASES])
def test_each_role_from_names_and_values(column, values, role, evidence):
    from tierbook.onboard import guess_column

    _, guess = guess_column(column, pd.Series(values, dtype=object))
    assert guess.role == role and evidence in guess.evidence, (guess.role, guess.evidence)
    assert (guess.pii is not None) == (role in {"name", "phone", "email", "address"})


def test_cli_and_make_target(hand_made, tmp_path, capsys):
    import os
    import subprocess
    import sys

    from tierbook.cli import main

    root = _project(tmp_path)
    assert main(["--root", str(root), "init", "--client", "acme", "--data", str(hand_made)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  订单导出.csv +transactions +20 rows  5/5 columns mapped$", out, re.M)
    # currency, 2 unlabelled channels, 2 files without return markers, 2 unknown tables (skus.csv, the 说明 sheet)
    assert f"wrote {root / 'params' / 'acme.yaml'} (7 TODOs)" in out
    assert main(["--root", str(root), "init", "--client", "acme", "--data", str(hand_made)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("exists; init never overwrites a client's params: move it away, or add FORCE=1 (make init ... FORCE=1)")
    assert main(["--root", str(root), "init", "--client", "beta", "--data", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'nope'}: no such folder")

    (root / "pyproject.toml").symlink_to(REPO / "pyproject.toml")
    stamp = tmp_path / "stamp"  # the environment counts as built (newer than pyproject.toml): make runs the recipe with this interpreter
    stamp.touch()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    make = ["make", "-s", "-f", str(REPO / "Makefile"), "init", f"STAMP={stamp}", f"PY={sys.executable}"]  # run in the temporary project
    usage = subprocess.run(make + ["CLIENT=acme"], cwd=root, capture_output=True, text=True, env=env)
    assert usage.returncode == 2 and usage.stdout.strip() == "usage: make init CLIENT=acme DATA=~/Downloads/acme_exports"
    run = subprocess.run(make + ["CLIENT=acme", f"DATA={hand_made}", "FORCE=1"], cwd=root, capture_output=True, text=True, env=env)
    assert run.returncode == 0 and f"wrote {root / 'params' / 'acme.yaml'} (7 TODOs)" in run.stdout, run.stderr
