"""Privacy (GDPR, China's PIPL): what of a client's customers may leave the consultant's hands.

Stakeholders forward the HTML pages, so a page never shows who a customer is:

* **Customer ids on a page are pseudonyms**: ``C-`` and the first 12 hex digits of
  HMAC-SHA256(client key, id). The key is 32 random bytes per client, made on first use into
  ``params/<client>.key`` (git-ignored, mode 0600). The same id gives the same pseudonym in every
  run of the client, so a stakeholder can ask about ``C-3f9a1c0b7e2d`` and the consultant finds the
  customer with ``python -m tierbook reveal`` (``reveal`` here); without the key nobody can, and a
  pseudonym says nothing about the id (a masked ``C0****45`` gave away most of it). The CRM export
  (``customer_scores.csv``, ``customer_tags.csv``) keeps the real ids: it goes back to the client.
* **Personal data is not read**: the data contract's ``pii`` columns (name, phone, email, address,
  id_number) and the source columns listed in ``privacy.pii_columns`` are dropped at ingest, so no
  clean table, result table, page or executed notebook can hold them. ``privacy.export_pii`` opts
  contract PII columns into the CRM export only (read again from the customers source when the
  export is written, never into a Parquet table).
* **Free text is masked where it is read**: phone numbers, e-mail addresses and id numbers inside
  survey comments and free attributes (``138****5678``, ``w***@qq.com``, ``••••``), before any table
  is written or a term counted.

Why ``params/<client>.key``: it sits with the client's params (moved and backed up with them, never
in a run folder a stakeholder may receive, and it survives deleting old runs, which would
otherwise change every pseudonym); ``data/<client>/`` holds the client's inputs, which are never
written.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from .contract import TABLES
from .errors import TierbookError

PREFIX = "C-"
DIGITS = 12  # 48 bits: among 1M customers two share a pseudonym with probability ~0.2% (n^2 / 2^49)
PSEUDONYM = re.compile(rf"^{re.escape(PREFIX)}[0-9a-f]{{{DIGITS}}}$")
KEY_BYTES = 32
MIN_REF_DIGITS = 4  # `reveal C-3f9a` is enough to find a customer; fewer digits would list hundreds
PII_ROLES = frozenset(c.name for table in TABLES.values() for c in table.values() if c.role == "pii")

# personal data inside free text (shared with make init's profile page, tierbook.onboard_roles.mask)
# ASCII local part: Chinese text right before an address (邮箱wang@qq.com) stays readable
EMAIL_IN_TEXT = re.compile(r"([A-Za-z0-9._%+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})")
PHONE_IN_TEXT = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d[\s-]?\d{4}[\s-]?\d{4})(?!\d)")  # mainland mobiles, +86 or not
ID_IN_TEXT = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")  # an 18-digit resident identity card number
# full-width letters, digits and the signs of an address (１３８…, ｗａｎｇ＠…: a Chinese input method's) as ASCII
# before matching; full-width punctuation (，。！) stays as written
_ASCII = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+-@._"
FULL_WIDTH = str.maketrans({chr(ord(c) + 0xFEE0): c for c in _ASCII})
OTHER_PHONE_IN_TEXT = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s-]?\d(?:[\s-]?\d){6,13}|0\d{2,3}-\d{7,8})(?!\d)")  # +44 20 7946 0958, 021-63211234


# --------------------------------------------------------------------------- the key and the pseudonyms


def key_path(root: Path, client: str) -> Path:
    """Where a client's key lives: ``params/<client>.key`` of the project (git-ignored)."""
    from .params import CLIENT_NAME

    if not CLIENT_NAME.match(client or ""):
        raise TierbookError(f"client name {client!r} is not valid: use lower-case letters, digits, '_' and '-' (e.g. acme)")
    return Path(root) / "params" / f"{client}.key"


def client_key(root: Path, client: str, create: bool = True) -> bytes:
    """The client's pseudonym key, made on first use (32 random bytes, hex in a mode-0600 file).

    Two sections may ask at the same moment: the key is written to a private temporary file and
    linked into place, so exactly one key wins and both use it."""
    path = key_path(root, client)
    if not path.exists():
        if not create:
            raise TierbookError(f"{path} does not exist: no report of client {client!r} has shown a pseudonym with this project's key")
        _create_key(path)
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise TierbookError(f"{path}: not a Tierbook key ({KEY_BYTES * 2} hex digits expected); restore it from a backup, "
                            f"or delete it to make a new one (earlier reports' pseudonyms will then no longer match)")
    return key


def _create_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.key")  # git-ignored like the key
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # 0600 from the start: never readable by others
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_bytes(KEY_BYTES).hex() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic, and fails when another process made the key first
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def pseudonym(customer_id, key: bytes) -> str:
    """``C-`` + the first 12 hex digits of HMAC-SHA256(key, the id as UTF-8 text)."""
    return PREFIX + hmac.new(key, str(customer_id).encode("utf-8"), hashlib.sha256).hexdigest()[:DIGITS]


def pseudonymise(ids: pd.Series, key: bytes) -> pd.Series:
    """Customer ids for a report page: each id's pseudonym (missing ids stay missing)."""
    ids = pd.Series(ids)
    present = ids.notna()
    codes = {value: pseudonym(value, key) for value in pd.unique(ids[present].astype(str))}
    out = pd.Series(pd.NA, index=ids.index, dtype="object")
    out[present] = ids[present].astype(str).map(codes)
    return out


def is_pseudonym(values: pd.Series) -> pd.Series:
    """True where a value looks like a pseudonym (``C-`` + 12 hex digits) or is missing."""
    values = pd.Series(values)
    return values.isna() | values.astype(str).str.match(PSEUDONYM.pattern)


def reveal(refs: Iterable[str], customer_ids: pd.Series, key: bytes) -> pd.DataFrame:
    """Map pseudonyms back to customer ids: ``refs`` are pseudonyms as a stakeholder quotes them
    (``C-3f9a1c0b7e2d``, or a prefix of at least 4 digits such as ``C-3f9a…``), ``customer_ids``
    the run's ids (its ``customer_scores``). One row per match: ``ref, pseudonym, customer_id``; a
    ref matching nobody gets one row with a missing id."""
    ids = pd.Series(pd.unique(pd.Series(customer_ids).dropna().astype(str)), dtype="object")
    table = pd.DataFrame({"pseudonym": pseudonymise(ids, key), "customer_id": ids})
    rows = []
    for ref in refs:
        needle = str(ref).strip().rstrip("….").lower()
        needle = needle.removeprefix(PREFIX.lower())
        if not re.fullmatch(rf"[0-9a-f]{{{MIN_REF_DIGITS},{DIGITS}}}", needle):
            raise TierbookError(f"{ref!r} is not a pseudonym: expected {PREFIX} and {MIN_REF_DIGITS} to {DIGITS} hex digits (e.g. C-3f9a1c0b7e2d)")
        hits = table[table["pseudonym"].str.startswith(PREFIX + needle)]
        if hits.empty:
            rows.append({"ref": ref, "pseudonym": None, "customer_id": None})
        rows += [{"ref": ref, "pseudonym": h.pseudonym, "customer_id": h.customer_id} for h in hits.itertuples()]
    return pd.DataFrame(rows, columns=["ref", "pseudonym", "customer_id"])


# --------------------------------------------------------------------------- personal data in the sources


def _declared(params) -> list:
    sources = params.sources
    return list(sources.transactions) + [s for s in (sources.customers, sources.survey, sources.experiment) if s is not None]


def check_params(params) -> None:
    """The privacy block against the sources (one line per problem): a column listed in
    ``privacy.pii_columns`` cannot also be mapped to a contract column or an outcome (it would be
    read), and ``privacy.export_pii`` needs the customers source to map a column to each name."""
    listed = set(params.privacy.pii_columns)
    where = f"params/{params.client}.yaml"
    for source in _declared(params):
        used = {column: target for column, target in source.columns.items() if TABLES[source.table][target].role != "pii"}
        used.update({column: f"the outcome {name}" for column, name in getattr(source, "outcomes", {}).items()})
        column = next(iter(sorted(listed & set(used))), None)
        if column is not None:
            raise TierbookError(f"{where}: privacy.pii_columns lists {column!r}, which source {source.name!r} maps to {used[column]}; "
                                f"personal data is never read: map another column there, or take {column!r} off privacy.pii_columns")
    customers = params.sources.customers
    for role in params.privacy.export_pii:
        if customers is None or role not in customers.columns.values():
            raise TierbookError(f"{where}: privacy.export_pii lists {role!r}, but sources.customers maps no column to {role}; "
                                f"map one (e.g. `手机号: phone`) or take {role!r} off privacy.export_pii")


def check_headers(params, headers: dict[str, list[str]]) -> None:
    """Every column listed in ``privacy.pii_columns`` is in at least one source file (``headers``:
    source name -> its columns): a misspelt name would protect nothing."""
    every = [column for columns in headers.values() for column in columns]
    for column in params.privacy.pii_columns:
        if column not in every:
            close = difflib.get_close_matches(column, every, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else "check the spelling against the files' headers"
            raise TierbookError(f"params/{params.client}.yaml: privacy.pii_columns lists {column!r}, which no source file has; {hint}")


def readable(source, params):
    """The source as ingest may read it: attributes listed in ``privacy.pii_columns`` removed."""
    listed = set(params.privacy.pii_columns)
    attributes = getattr(source, "attributes", None)
    if not attributes or not listed & set(attributes):
        return source
    return source.model_copy(update={"attributes": {c: n for c, n in attributes.items() if c not in listed}})


def mask_text(text: str) -> str:
    """Phone numbers, e-mail addresses and id numbers inside a free text masked; the rest as is:
    ``请联系 13812345678`` -> ``请联系 138****5678``, ``wang.wei@qq.com`` -> ``w***@qq.com``."""
    text = text.translate(FULL_WIDTH)
    text = EMAIL_IN_TEXT.sub(lambda m: m.group(1)[:1] + "***@" + m.group(2), text)
    text = ID_IN_TEXT.sub("••••", text)
    text = PHONE_IN_TEXT.sub(lambda m: re.sub(r"\D", "", m.group(1))[:3] + "****" + re.sub(r"\D", "", m.group(1))[-4:], text)
    return OTHER_PHONE_IN_TEXT.sub("••••", text)


def mask_free_text(values: pd.Series) -> pd.Series:
    """``mask_text`` on every text of a column (missing values stay missing)."""
    present = values.notna()
    if not present.any():
        return values
    out = values.copy()
    out[present] = values[present].astype(str).map(mask_text)
    return out


def scrub(frame: pd.DataFrame, source) -> pd.DataFrame:
    """A mapped source with its free text masked: the survey's ``comment`` and any ``attributes``."""
    columns = [c for c in ("comment", *getattr(source, "attributes", {}).values()) if c in frame]
    return frame.assign(**{c: mask_free_text(frame[c]) for c in columns}) if columns else frame


# --------------------------------------------------------------------------- the CRM export's opt-in


def export_pii_columns(run_dir: Path) -> pd.DataFrame | None:
    """``customer_id`` and the contract PII columns that ``privacy.export_pii`` opts into the CRM
    export, read again from the run's customers source (the file the run read: its sha256 is
    checked); None when the run's params opt into none (or the folder is not a run)."""
    manifest_path = Path(run_dir) / "manifest.json"
    if not manifest_path.exists():
        return None
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    roles = list(manifest.get("params", {}).get("privacy", {}).get("export_pii", []))
    if not roles:
        return None
    from . import ingest
    from .params import CustomerSource

    source = CustomerSource.model_validate(manifest["params"]["sources"]["customers"])
    # the data section's record of the file it read (the manifest has the checksums once the run ends)
    record = ingest.inputs_read(run_dir).get(source.name) or next(r for r in manifest["inputs"] if r["source"] == source.name)
    path = Path(record["path"])
    if not path.exists() or ingest.file_sha256(path) != record["sha256"]:
        raise TierbookError(f"{path} changed since the run read it; privacy.export_pii cannot add its columns: run the report again")
    frame = ingest.read_source(source, path).frame
    by_role = {target: column for column, target in source.columns.items()}
    out = pd.DataFrame({"customer_id": ingest.parse_ids(frame[by_role["customer_id"]])})
    for role in roles:
        out[role] = ingest.parse_text(frame[by_role[role]])
    return out.dropna(subset=["customer_id"]).drop_duplicates("customer_id").astype({"customer_id": str})
