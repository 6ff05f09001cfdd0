"""The data section's sentences in both languages (the stage itself is tested in test_clean and test_pipeline)."""

import datetime as dt

import pytest

from tests.conftest import demo_files


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    from tierbook.data import run_data_stage

    root = tmp_path_factory.mktemp("data")
    params, run, _ = demo_files(root, 400)
    return run_data_stage(params, root, run, today=dt.date(2026, 1, 5)), params


def test_narrative_in_english_and_chinese(demo_data, tmp_path):
    from tierbook import i18n
    from tierbook.data import narrative, table_label

    stage, params = demo_data
    english = narrative(stage, params.currency)
    assert "transaction rows were read from 2 sources:" in english and "The customers table has 400 clean rows." in english
    assert table_label("customers") == "customers"
    log = tmp_path / "missing.txt"
    try:
        i18n.set_lang("zh", {}, log)
        chinese = narrative(stage, params.currency)
        assert table_label("customers") == "客户表" and table_label("orders_2") == "orders_2"
    finally:
        i18n.set_lang("en")
    assert not log.exists(), log.read_text(encoding="utf-8")
    assert "共从 2 个数据源读取" in chinese and "客户表有 400 行清洗后的数据。" in chinese and "数据行未按原样保留的最常见原因：" in chinese
    reason = chinese.split("最常见原因：")[1]
    assert any(c >= "\u4e00" for c in reason.split("（")[0])  # the reason itself in Chinese (clean.REASONS translated)


def test_every_rejection_reason_has_a_chinese_explanation():
    from tierbook import i18n
    from tierbook.clean import REASONS

    assert [text for text in REASONS.values() if text not in i18n.catalog("zh")] == []
