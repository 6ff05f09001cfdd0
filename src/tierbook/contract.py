"""The data contract: the tables every client's sources are mapped onto.

Each source in params maps its own column names onto these names (``客户ID: customer_id``).
A column is ``required``, ``optional`` or ``pii`` (read for matching only, dropped before any
clean table is written, never shown in a report). ``kind`` drives parsing in ``tierbook.ingest``.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # id | text | datetime | date | number | integer | flag
    role: str  # required | optional | pii
    doc: str


def _cols(*columns: Column) -> dict[str, Column]:
    return {c.name: c for c in columns}


TRANSACTIONS = _cols(
    Column("customer_id", "id", "required", "customer / member id; read as text (zero-padded ids stay intact)"),
    Column("order_date", "datetime", "required", "date and time of the order or receipt"),
    Column("amount", "number", "optional", "line or order amount; required unless quantity and unit_price are given"),
    Column("quantity", "number", "optional", "units; amount = quantity x unit_price when no amount is mapped"),
    Column("unit_price", "number", "optional", "price per unit"),
    Column("order_id", "id", "optional", "order / receipt / invoice id; lines sharing it form one order (else each row is an order)"),
    Column("original_order_id", "id", "optional", "for returns: the order being returned (matched first when present)"),
    Column("order_status", "text", "optional", "status or document type (e.g. 销售 / 退货, paid / refunded), used by return rules"),
    Column("product_id", "id", "optional", "SKU / stock code; returns are matched to an order with the same product when present"),
    Column("channel", "text", "optional", "channel / platform / store type; else the source's `channel` param"),
    Column("store", "text", "optional", "store or shop name"),
    Column("currency", "text", "optional", "currency code per row; else the source's or the client's `currency`"),
    Column("category", "text", "optional", "product category of the line (favourite category, category mix by tier)"),
    Column("discount", "number", "optional", "discount or coupon value on the line (> 0 = bought on discount)"),
    Column("cost", "number", "optional", "cost of goods of the line (profit = amount - cost)"),
    Column("margin", "number", "optional", "gross margin of the line in money (cost = amount - margin); map cost or margin"),
    Column("region", "text", "optional", "customer's region / country as recorded on the transaction (used when the customers table has none)"),
)

CUSTOMERS = _cols(
    Column("customer_id", "id", "required", "customer / member id, the key the transactions use"),
    Column("signup_date", "date", "optional", "membership signup date"),
    Column("region", "text", "optional", "region / province"),
    Column("city", "text", "optional", "city"),
    Column("gender", "text", "optional", "gender"),
    Column("birth_date", "date", "optional", "birth date (age bands are derived, the date is not shown)"),
    Column("signup_channel", "text", "optional", "channel the member signed up through"),
    Column("member_tier", "text", "optional", "the client's own current tier / membership level"),
    Column("age", "number", "optional", "age in years (banded by profile.bands.age)"),
    Column("industry", "text", "optional", "industry (B2B clients)"),
    Column("company_size", "number", "optional", "employees (B2B clients; banded by profile.bands.company_size)"),
    Column("name", "text", "pii", "personal name: dropped at ingest"),
    Column("phone", "text", "pii", "phone number: dropped at ingest"),
    Column("email", "text", "pii", "e-mail address: dropped at ingest"),
    Column("address", "text", "pii", "postal address: dropped at ingest"),
    Column("id_number", "text", "pii", "national id number: dropped at ingest"),
)

SURVEY = _cols(
    Column("customer_id", "id", "optional", "respondent's customer id (anonymous answers still count overall)"),
    Column("response_date", "date", "required", "date of the answer"),
    Column("nps", "integer", "optional", "likelihood to recommend, 0-10"),
    Column("csat", "integer", "optional", "satisfaction, 1-5"),
    Column("comment", "text", "optional", "free-text comment"),
    Column("channel", "text", "optional", "channel of the survey or of the purchase"),
    # item scores (any one scale for all, e.g. 1-5): the satisfaction section regresses the 0-10 score on those mapped
    Column("item_product", "number", "optional", "item score: product / quality"),
    Column("item_service", "number", "optional", "item score: service"),
    Column("item_delivery", "number", "optional", "item score: delivery / logistics"),
    Column("item_price", "number", "optional", "item score: price / value for money"),
    Column("item_staff", "number", "optional", "item score: staff"),
    Column("item_experience", "number", "optional", "item score: store or app experience"),
)

EXPERIMENT = _cols(
    Column("customer_id", "id", "required", "customer id"),
    Column("variant", "text", "required", "arm: the control and one or more treatments"),
    Column("assigned_date", "date", "optional", "date of assignment"),
    Column("stratum", "text", "optional", "stratum / tier at assignment"),
    Column("cost", "number", "optional", "cost per treated customer"),
    Column("pre_value", "number", "optional", "pre-period spend (or another measure taken before assignment): the CUPED covariate"),
)

TABLES = {
    "transactions": TRANSACTIONS,
    "customers": CUSTOMERS,
    "survey": SURVEY,
    "experiment": EXPERIMENT,
}
