"""Privacy (tierbook.privacy): pseudonymised customer ids on pages, personal data never in a run
folder, phones and e-mails in free text masked. The end-to-end test reads every file of a demo run
for the demo's planted names, phones and e-mails (taken from the generated members.xlsx)."""

from __future__ import annotations

import hashlib
import json
import re
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from tierbook import crm, privacy, tables
from tierbook.errors import TierbookError
from tierbook.ingest import file_sha256, read_all
from tierbook.params import load_params, params_to_dict

from .conftest import REPO, demo_files, write_params

KEY = bytes(range(32))


# --------------------------------------------------------------------------- the keyed hash


def test_pseudonym_is_hmac_sha256_of_the_id():
    # RFC 4231, test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?") = 5bdcc146bf60754e6a04…
    assert privacy.pseudonym("what do ya want for nothing?", b"Jefe") == "C-5bdcc146bf60"
    # a customer id under a fixed key, checked by hand against RFC 2104's construction H(K^opad || H(K^ipad || m))
    block = KEY.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block) + "C000123".encode()).digest()
    by_hand = hashlib.sha256(bytes(b ^ 0x5C for b in block) + inner).hexdigest()
    assert by_hand.startswith("796e6e5f0801")
    assert privacy.pseudonym("C000123", KEY) == "C-796e6e5f0801" == "C-" + by_hand[:12]
    assert privacy.pseudonym("会员0001", KEY) == "C-eb7aa7e8e827"  # ids are hashed as UTF-8 text


def test_same_id_same_key_same_pseudonym_and_another_key_another():
    ids = pd.Series(["C000123", "C000124", None, "C000123", 42])
    once, again = privacy.pseudonymise(ids, KEY), privacy.pseudonymise(ids, KEY)
    assert once.tolist() == again.tolist()
    assert once[0] == once[3] != once[1] and pd.isna(once[2])
    assert once[4] == privacy.pseudonym("42", KEY)  # an id read as a number is the same customer as its text
    other = privacy.pseudonymise(ids, bytes(32))
    assert not set(once.dropna()) & set(other.dropna())
    assert privacy.is_pseudonym(once).all() and not privacy.is_pseudonym(ids.dropna()).any()


def test_the_key_is_made_once_private_and_per_client(tmp_path):
    path = privacy.key_path(tmp_path, "acme")
    assert not path.exists()
    with ThreadPoolExecutor(8) as pool:  # sections running in parallel ask for it at the same moment
        keys = set(pool.map(lambda _: privacy.client_key(tmp_path, "acme"), range(16)))
    assert len(keys) == 1 and len(next(iter(keys))) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}\n", path.read_text())
    before = (path.stat().st_ino, path.stat().st_mtime_ns)
    assert privacy.client_key(tmp_path, "acme") in keys and (path.stat().st_ino, path.stat().st_mtime_ns) == before
    assert [p.name for p in path.parent.iterdir()] == ["acme.key"]  # no temporary file left behind
    other = privacy.client_key(tmp_path, "globex")
    assert other not in keys
    assert privacy.pseudonym("C000123", other) != privacy.pseudonym("C000123", next(iter(keys)))


def test_a_missing_or_damaged_key_is_one_line(tmp_path):
    with pytest.raises(TierbookError, match="does not exist"):
        privacy.client_key(tmp_path, "acme", create=False)
    privacy.key_path(tmp_path, "acme").parent.mkdir()
    privacy.key_path(tmp_path, "acme").write_text("not a key\n")
    with pytest.raises(TierbookError, match=r"acme.key: not a Tierbook key .* delete it to make a new one") as err:
        privacy.client_key(tmp_path, "acme")
    assert "\n" not in str(err.value)
    with pytest.raises(TierbookError, match="client name"):
        privacy.key_path(tmp_path, "../acme")


def test_key_files_are_ignored_by_git():
    for name in ("params/acme.key", "params/.acme.1.ab.key"):  # the key, and the temporary file it is written to first
        assert subprocess.run(["git", "-C", str(REPO), "check-ignore", "--no-index", "-q", name]).returncode == 0, name
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "params"], capture_output=True, text=True, check=True).stdout
    assert ".key" not in tracked


def test_reveal_maps_pseudonyms_back():
    ids = pd.Series([f"C{i:06d}" for i in range(1, 2001)])
    wanted = privacy.pseudonym("C000777", KEY)
    found = privacy.reveal([wanted, wanted[:8] + "…", "C-000000000000"], ids, KEY)
    assert found["customer_id"].tolist()[:2] == ["C000777", "C000777"]
    assert found["pseudonym"].tolist()[:2] == [wanted, wanted]
    assert found.iloc[2].isna()[["pseudonym", "customer_id"]].all()  # matches nobody: one row saying so
    with pytest.raises(TierbookError, match="not a pseudonym"):
        privacy.reveal(["C-3f9"], ids, KEY)  # three digits would list many customers


def test_tables_refuse_real_customer_ids():
    frame = pd.DataFrame({"customer_id": ["C000123"], "clv": [1.0]})
    with pytest.raises(ValueError, match="real customer ids"):
        tables.styled(frame)
    shown = tables.styled(frame.assign(customer_id=privacy.pseudonymise(frame["customer_id"], KEY))).to_html()
    assert "C-796e6e5f0801" in shown and "C000123" not in shown


# --------------------------------------------------------------------------- personal data in free text


@pytest.mark.parametrize("text, masked", [
    ("请联系 13812345678 谢谢", "请联系 138****5678 谢谢"),
    ("电话 138 1234 5678", "电话 138****5678"),
    ("+86 139-8765-4321 找我", "139****4321 找我"),
    ("１３８１２３４５６７８", "138****5678"),  # full-width digits
    ("结果请发邮箱 2928050937@qq.com", "结果请发邮箱 2***@qq.com"),
    ("邮箱wang.wei@163.com。", "邮箱w***@163.com。"),
    ("身份证 11010519491231002X", "身份证 ••••"),
    ("London +44 20 7946 0958", "London ••••"),
    ("座机 021-63211234", "座机 ••••"),
    ("2025-01-02 买的，订单E000001234，价格 1999", "2025-01-02 买的，订单E000001234，价格 1999"),
    ("质量不错，推荐", "质量不错，推荐"),
])
def test_free_text_masks_phones_emails_and_id_numbers(text, masked):
    assert privacy.mask_text(text) == masked


def test_mask_free_text_keeps_missing_values():
    out = privacy.mask_free_text(pd.Series(["打我 13812345678", None, ""], dtype="string"))
    assert out.tolist()[0] == "打我 138****5678" and pd.isna(out[1]) and out[2] == ""


# --------------------------------------------------------------------------- params: privacy.pii_columns and export_pii

ACME = """
sources:
  transactions:
    - name: pos
      path: pos.csv
      columns: {会员号: customer_id, 日期: order_date, 金额: amount}
  customers:
    name: members
    path: members.csv
    columns: {会员号: customer_id, 手机: phone}
    attributes: {微信号: wechat, 备注: note, 城市等级: city_tier}
privacy:
  pii_columns: [微信号]
"""


def _acme(project, text=ACME):
    write_params(project, "acme", text)
    folder = project / "data" / "acme"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pos.csv").write_text("会员号,日期,金额\n001,2024-01-05,10\n002,2024-01-06,20\n", encoding="utf-8")
    (folder / "members.csv").write_text("会员号,手机,微信号,备注,城市等级\n001,13812345678,wxid_wang01,VIP 电话13987654321,一线\n"
                                        "002,13900001111,wxid_li02,,二线\n", encoding="utf-8")
    return load_params("acme", project / "params")


def test_listed_pii_columns_are_never_read_and_attributes_are_masked(project):
    tables_, _ = read_all(_acme(project), project)
    members = tables_["customers"]
    assert "wechat" not in members and "phone" not in members  # listed column dropped even as an attribute; contract PII dropped
    assert members["note"].tolist()[0] == "VIP 电话139****4321" and members["city_tier"].tolist() == ["一线", "二线"]
    assert not any("wxid" in str(v) or "13812345678" in str(v) for v in members.to_numpy().ravel())


@pytest.mark.parametrize("change, message", [
    (("pii_columns: [微信号]", "pii_columns: [微信]"), r"privacy.pii_columns lists '微信', which no source file has; did you mean '微信号'\?"),
    (("pii_columns: [微信号]", "pii_columns: [会员号]"), r"privacy.pii_columns lists '会员号', which source 'pos' maps to customer_id; "
                                                        r"personal data is never read"),
    (("pii_columns: [微信号]", "export_pii: [email]"), r"privacy.export_pii lists 'email', but sources.customers maps no column to email"),
])
def test_privacy_params_are_checked_against_the_sources_in_one_line(project, change, message):
    params = _acme(project, ACME.replace(*change))
    with pytest.raises(TierbookError, match=message) as err:
        read_all(params, project)
    assert "\n" not in str(err.value) and str(err.value).startswith("params/acme.yaml: ")


@pytest.mark.parametrize("value, message", [
    ("{export_pii: [wechat]}", r"privacy.export_pii\[0\] = 'wechat' is invalid"),
    ("{pii_columns: [微信号, 微信号]}", r"privacy: pii_columns lists '微信号' twice"),
    ("{pii_column: [微信号]}", r"unknown key 'privacy.pii_column'; did you mean 'privacy.pii_columns'\?"),
])
def test_privacy_block_is_validated(project, value, message):
    write_params(project, "acme", ACME.split("privacy:")[0] + f"privacy: {value}\n")
    with pytest.raises(TierbookError, match=message):
        load_params("acme", project / "params")


def test_export_pii_adds_columns_to_the_crm_export_only(tmp_path):
    params, run_dir, _ = demo_files(tmp_path, 400)
    members_path = params.source_path(tmp_path, params.sources.customers)
    members = pd.read_excel(members_path, sheet_name="会员", dtype=str).drop_duplicates("会员卡号")
    opted = params.model_copy(update={"privacy": params.privacy.model_copy(update={"export_pii": ["phone", "email"]})})
    manifest = {"params": params_to_dict(opted),
                "inputs": [{"source": "members", "table": "customers", "path": str(members_path), "sha256": file_sha256(members_path)}]}
    (run_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    scores = pd.DataFrame({"customer_id": ["C000002", "C000001", "C999999"], "tier": ["VIP", "Regular", "Regular"]})
    csv_path, xlsx_path = crm.write_customer_scores(scores, run_dir)
    export = pd.read_csv(csv_path, encoding="utf-8-sig", dtype=str)
    expected = members.set_index("会员卡号").loc[["C000002", "C000001"], ["手机号", "邮箱"]]
    assert export.columns.tolist() == ["customer_id", "tier", "phone", "email"]
    assert export[["phone", "email"]].head(2).to_numpy().tolist() == expected.to_numpy().tolist()
    assert export[["phone", "email"]].iloc[2].isna().all()  # a customer the members table does not have
    assert pd.read_parquet(run_dir / "data" / "customer_scores.parquet").columns.tolist() == ["customer_id", "tier"]
    documented = pd.read_excel(xlsx_path, sheet_name="columns").set_index("column")["meaning"]
    assert "never in a report" in documented["phone"]
    # without the opt-in the export has no personal data
    manifest["params"] = params_to_dict(params)
    (run_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    crm.write_customer_scores(scores, run_dir)
    assert pd.read_csv(csv_path, encoding="utf-8-sig").columns.tolist() == ["customer_id", "tier"]
    # during a run the manifest has no checksums yet (the runner writes them at the end): the data section's record of
    # the file it read has them (inputs.json)
    manifest = {"params": params_to_dict(opted), "inputs": [{**manifest["inputs"][0], "sha256": None}]}
    (run_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    record = {"source": "members", "table": "customers", "path": str(members_path), "sha256": file_sha256(members_path), "rows": 400}
    (run_dir / "inputs.json").write_text(json.dumps([record], ensure_ascii=False), encoding="utf-8")
    crm.write_customer_scores(scores, run_dir)
    assert pd.read_csv(csv_path, encoding="utf-8-sig").columns.tolist() == ["customer_id", "tier", "phone", "email"]
    (run_dir / "inputs.json").write_text(json.dumps([{**record, "sha256": "0" * 64}], ensure_ascii=False), encoding="utf-8")
    with pytest.raises(TierbookError, match="changed since the run read it"):
        crm.write_customer_scores(scores, run_dir)


# --------------------------------------------------------------------------- a whole demo run

TEXT_FILES = {".html", ".ipynb", ".csv", ".json", ".yaml", ".txt", ".md", ".log"}  # .log: a kernel's messages (notebooks/<section>.kernel.log)


def _file_texts(run_dir):
    """Every file of a run as text: text files as they are, Parquet and Excel cells (and headers)
    decoded with pandas. A file of any other kind fails the test: it would not be searched."""
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        if path.suffix in TEXT_FILES:
            yield path, path.read_text(encoding="utf-8", errors="replace")
        elif path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            yield path, "\n".join(map(str, frame.columns)) + "\n" + frame.astype(str).to_csv(index=False)
        elif path.suffix == ".xlsx":
            sheets = pd.read_excel(path, sheet_name=None, dtype=str)
            yield path, "\n".join(name + "\n" + sheet.to_csv(index=False) for name, sheet in sheets.items())
        else:
            pytest.fail(f"{path.name}: a file this test cannot read; teach _file_texts its format")


@pytest.mark.slow
def test_no_personal_data_in_any_file_of_a_demo_run(demo_project):
    project, run = demo_project
    assert run.status == "succeeded"
    data = project.root / "data" / "demo"
    members = pd.read_excel(data / "members.xlsx", sheet_name="会员", dtype=str)
    planted = {"name": set(members["姓名"]), "phone": set(members["手机号"]), "email": set(members["邮箱"])}
    truth = json.loads((data / "TRUTH.json").read_text(encoding="utf-8"))["privacy"]
    comments = pd.read_csv(data / "survey.csv", encoding="utf-8-sig", dtype=str)["comment"].dropna()
    in_comments = {kind: {v for v in planted[kind] if comments.str.contains(v, regex=False).any()} for kind in ("phone", "email")}
    assert len(in_comments["phone"]) == truth["comments_with_phone"] > 0 and len(in_comments["email"]) == truth["comments_with_email"] > 0

    leaks, searched = [], 0
    for path, text in _file_texts(run.run_dir):
        searched += 1
        leaks += [f"{path.relative_to(run.run_dir)}: {kind} {value}" for kind, values in planted.items() for value in values if value in text]
    assert searched > 80 and not leaks, leaks[:10]

    survey = pd.read_parquet(run.run_dir / "data" / "survey.parquet")["comment"].dropna()
    for phone in in_comments["phone"]:  # read, and masked where they were read
        assert survey.str.contains(f"{phone[:3]}****{phone[-4:]}", regex=False).any()
    for email in in_comments["email"]:
        assert survey.str.contains(f"{email[0]}***@{email.split('@')[1]}", regex=False).any()


@pytest.mark.slow
def test_pages_show_pseudonyms_that_map_back_and_no_real_id(demo_project):
    project, run = demo_project
    key_file = privacy.key_path(project.root, "demo")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = privacy.client_key(project.root, "demo", create=False)
    scores = pd.read_csv(run.run_dir / "customer_scores.csv", encoding="utf-8-sig", dtype={"customer_id": str})
    ids = set(pd.read_parquet(run.run_dir / "data" / "ledger.parquet")["customer_id"].dropna().astype(str))
    assert set(scores["customer_id"]) <= ids and scores["customer_id"].str.fullmatch(r"C\d{6}").all()  # the CRM export: real ids
    pages = sorted(run.run_dir.glob("*.html")) + sorted((run.run_dir / "notebooks").glob("*.ipynb"))
    shown = {}
    for page in pages:
        # figures are base64 PNGs: a run of 200+ base64 characters is an image, not text a reader sees
        # (in 7 MB of them an id-shaped 'C' + 6 digits turns up by chance about once)
        text = re.sub(r"[A-Za-z0-9+/=]{200,}", "", page.read_text(encoding="utf-8"))
        real = sorted(i for i in ids if i in text)
        assert not real, f"{page.name} shows real customer ids {real[:3]}"
        shown[page.name] = set(re.findall(r"C-[0-9a-f]{12}", text))
    top = privacy.pseudonymise(scores.nlargest(3, "clv")["customer_id"], key)
    assert set(top) <= shown["clv.html"] and set(top) <= shown["03_clv.ipynb"]
    every = set().union(*shown.values())
    back = privacy.reveal(sorted(every), scores["customer_id"], key)
    assert len(back) == len(every) and back["customer_id"].notna().all()  # each pseudonym is exactly one customer of the run
    at_risk = run.run_dir / "tables" / "churn_at_risk.csv"
    if at_risk.exists():  # the at-risk list's pseudonyms are its real ids' (the small demo may have none)
        listed = pd.read_csv(at_risk, encoding="utf-8-sig", dtype={"customer_id": str})["customer_id"]
        assert set(privacy.pseudonymise(listed.head(30), key)) <= shown["churn.html"]


@pytest.mark.slow
def test_reveal_on_the_command_line(demo_project, capsys):
    from tierbook.cli import main

    project, run = demo_project
    key = privacy.client_key(project.root, "demo", create=False)
    customer = pd.read_parquet(run.run_dir / "data" / "customer_scores.parquet")["customer_id"].astype(str).iloc[5]
    ref = privacy.pseudonym(customer, key)
    assert main(["--root", str(project.root), "reveal", "--client", "demo", ref[:9] + "…"]) == 0
    assert capsys.readouterr().out.split() == [ref, customer]
    assert main(["--root", str(project.root), "reveal", "--client", "demo", "--run", run.run_dir.name, "C-000000000000"]) == 1
    assert "no customer of run" in capsys.readouterr().out
