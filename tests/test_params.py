import pytest

from tierbook.errors import TierbookError
from tierbook.params import deep_merge, load_params, parse_overrides

from .conftest import REPO, write_params

MINIMAL = """
sources:
  transactions:
    - name: shop
      path: shop.csv
      columns: {客户ID: customer_id, 订单日期: order_date, 金额: amount}
"""


def test_demo_params_validate_and_inherit_defaults():
    params = load_params("demo", REPO / "params")
    assert params.client == "demo"
    assert [s.name for s in params.sources.transactions] == ["ecommerce", "pos"]
    assert params.sources.transactions[1].columns["会员卡号"] == "customer_id"
    assert params.clean.outliers.threshold == 7.0  # from default.yaml
    assert params.sources.customers.sheet == "会员"


def test_client_overrides_default_and_set_overrides_client(project):
    write_params(project, "acme", MINIMAL + "clean:\n  outliers: {threshold: 5}\n")
    params = load_params("acme", project / "params", ["clean.outliers.method=max_amount", "demo.size=500"])
    assert params.clean.outliers.threshold == 5
    assert params.clean.outliers.method == "max_amount"
    assert params.clean.exact_duplicates == "merge"  # untouched default
    assert params.demo.size == 500


def test_the_demo_purchase_rate_is_a_positive_weekly_rate(project):
    write_params(project, "acme", MINIMAL)
    assert load_params("acme", project / "params").demo.purchase_rate == 0.125
    assert load_params("acme", project / "params", ["demo.purchase_rate=0.25"]).demo.purchase_rate == 0.25
    with pytest.raises(TierbookError, match=r"demo.purchase_rate = 0 is invalid: Input should be greater than 0"):
        load_params("acme", project / "params", ["demo.purchase_rate=0"])


def test_deep_merge_merges_mappings_and_replaces_lists():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    merged = deep_merge(base, {"a": {"y": [3]}, "c": 2})
    assert merged == {"a": {"x": 1, "y": [3]}, "b": 1, "c": 2}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}


def test_parse_overrides_nests_and_parses_yaml_values():
    assert parse_overrides(["a.b=3", "a.c=true", "d=x"]) == {"a": {"b": 3, "c": True}, "d": "x"}
    with pytest.raises(TierbookError, match="expected key=value"):
        parse_overrides(["nonsense"])


def test_unknown_key_names_the_key_and_the_closest_valid_key(project):
    write_params(project, "acme", MINIMAL + "clean:\n  outlier: {threshold: 5}\n")
    with pytest.raises(TierbookError) as err:
        load_params("acme", project / "params")
    assert str(err.value) == f"{project / 'params' / 'acme.yaml'}: unknown key 'clean.outlier'; did you mean 'clean.outliers'?"


def test_unknown_key_inside_a_source_suggests_the_source_key(project):
    write_params(project, "acme", MINIMAL.replace("path: shop.csv", "path: shop.csv\n      encodng: gbk"))
    with pytest.raises(TierbookError, match=r"unknown key 'sources.transactions\[0\].encodng'; did you mean 'sources.transactions\[0\].encoding'"):
        load_params("acme", project / "params")


def test_wrong_type_names_key_value_and_expectation(project):
    write_params(project, "acme", MINIMAL + "run:\n  parallel: many\n")
    with pytest.raises(TierbookError, match=r"acme.yaml: run.parallel = 'many' is invalid: Input should be a valid integer"):
        load_params("acme", project / "params")


def test_mapping_onto_an_unknown_contract_column_suggests_the_closest(project):
    write_params(project, "acme", MINIMAL.replace("金额: amount", "金额: amout"))
    with pytest.raises(TierbookError, match=r"mapped to 'amout', which is not in the transactions contract; did you mean 'amount'\?"):
        load_params("acme", project / "params")


def test_required_contract_column_must_be_mapped(project):
    write_params(project, "acme", MINIMAL.replace("订单日期: order_date, ", ""))
    with pytest.raises(TierbookError, match="no column is mapped to the required 'order_date'"):
        load_params("acme", project / "params")


def test_amount_or_quantity_times_price_is_required(project):
    write_params(project, "acme", MINIMAL.replace("金额: amount", "数量: quantity"))
    with pytest.raises(TierbookError, match="map either an `amount` column or both `quantity` and `unit_price`"):
        load_params("acme", project / "params")


def test_return_rule_must_use_a_mapped_column(project):
    write_params(project, "acme", MINIMAL + "      returns: [{column: order_status, equals: [退货]}]\n")
    with pytest.raises(TierbookError, match="return rule on 'order_status', but no source column is mapped to it"):
        load_params("acme", project / "params")


def test_unknown_client_lists_existing_clients(project):
    write_params(project, "acme", MINIMAL)
    write_params(project, "beta", MINIMAL)
    with pytest.raises(TierbookError, match="unknown client 'gamma'.*clients: acme, beta"):
        load_params("gamma", project / "params")


@pytest.mark.parametrize("name", ["Acme", "ac me", "../etc", ""])
def test_client_name_must_be_lowercase_slug(project, name):
    with pytest.raises(TierbookError, match="is not valid"):
        load_params(name, project / "params")


def test_yaml_syntax_error_names_the_file_and_line(project):
    write_params(project, "acme", "sources:\n  transactions: [\n")
    with pytest.raises(TierbookError, match=r"acme.yaml line \d+: not valid YAML"):
        load_params("acme", project / "params")
