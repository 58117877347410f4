"""Owner data import from CSV or Excel (rooms, names, phones, tiers, fee status,
birthdays, warranty dates).

Two passes on purpose: every row is validated first and *all* problems are
reported (row number, column, reason), and nothing is written unless the whole
file is clean. A half-imported owner register is worse than none: the office
would not know which rows made it.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.membership.rules import load_rules, tier_names
from store.models import Building, Home, Owner


# Column headers accepted (English keys and the office's Chinese headings).
ALIASES = {
    "room": ("room", "房号", "房间", "房屋"),
    "building": ("building", "楼栋", "栋"),
    "name": ("name", "姓名", "业主", "业主姓名"),
    "phone": ("phone", "电话", "手机", "手机号", "联系电话"),
    "tier": ("tier", "等级", "会员等级", "会员"),
    "fees_paid_until": ("fees_paid_until", "缴费至", "物业费缴至", "费用缴至"),
    "birthday": ("birthday", "生日", "出生日期"),
    "warranty_until": ("warranty_until", "保修到期", "保修期至"),
    "move_in_date": ("move_in_date", "入住日期"),
    "handover_date": ("handover_date", "交付日期", "交房日期"),
    "openid": ("openid",),
}
REQUIRED = ("room", "name")
ROOM_RE = re.compile(r"^(\d{1,2})-(\d{3,4})$")
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
DATE_FIELDS = ("fees_paid_until", "birthday", "warranty_until", "move_in_date", "handover_date")


@dataclass
class RowError:
    row: int  # 1-based line in the file, the header being row 1
    field: str
    error: str

    def as_dict(self) -> dict:
        return {"row": self.row, "field": self.field, "error": self.error}


@dataclass
class ImportReport:
    rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    dry_run: bool = True
    imported: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {"ok": self.ok, "dry_run": self.dry_run, "imported": self.imported, "rows": self.rows,
                "created": self.created, "updated": self.updated,
                "errors": [e.as_dict() for e in self.errors]}


class ImportFormatError(ValueError):
    """The file itself cannot be read (not a row problem)."""


def read_table(filename: str, data: bytes) -> list[dict]:
    """Rows as dicts keyed by canonical field name; raises ImportFormatError."""
    name = (filename or "").lower()
    if name.endswith((".xlsx", ".xlsm")) or data[:2] == b"PK":
        raw_rows = _read_xlsx(data)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("gb18030")  # Excel in China saves CSV as GBK by default
            except UnicodeDecodeError:
                raise ImportFormatError("the file is neither UTF-8 nor GBK text") from None
        raw_rows = [r for r in csv.reader(io.StringIO(text))]
    if not raw_rows:
        raise ImportFormatError("the file is empty")
    header = [str(h or "").strip() for h in raw_rows[0]]
    mapping: dict[int, str] = {}
    for i, h in enumerate(header):
        for key, names in ALIASES.items():
            if h.lower() in names:
                mapping[i] = key
    missing = [k for k in REQUIRED if k not in mapping.values()]
    if missing:
        raise ImportFormatError(f"missing column(s): {', '.join(missing)}")
    out = []
    for r in raw_rows[1:]:
        out.append({key: (r[i] if i < len(r) else None) for i, key in mapping.items()})
    return out


def _read_xlsx(data: bytes) -> list[list]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise ImportFormatError(f"not a readable Excel file: {type(exc).__name__}") from None
    ws = wb.worksheets[0]
    return [list(r) for r in ws.iter_rows(values_only=True)]


def _parse_date(v) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    s = str(v).strip().replace("/", "-").replace(".", "-")
    m = re.match(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$", s)
    if m:
        s = f"{m[1]}-{m[2]}-{m[3]}"
    y, mo, d = s.split("-")
    return date(int(y), int(mo), int(d))


def _clean(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # Excel turns phone numbers into floats
    return str(v).strip()


def validate(rows: list[dict]) -> tuple[list[dict], list[RowError]]:
    """Normalized rows and every error found (all rows are checked)."""
    errors: list[RowError] = []
    good: list[dict] = []
    seen: dict[tuple, int] = {}
    for n, raw in enumerate(rows, start=2):
        if all(_clean(v) == "" for v in raw.values()):
            continue  # blank lines at the end of a spreadsheet are not errors
        row: dict = {}
        bad = False
        room = _clean(raw.get("room"))
        m = ROOM_RE.match(room)
        if not m:
            errors.append(RowError(n, "room", f"room must look like 1-1201, got {room!r}"))
            bad = True
        row["room"] = room
        building = _clean(raw.get("building")) or (f"{int(m[1])}栋" if m else "")
        row["building"] = building
        name = _clean(raw.get("name"))
        if not name or len(name) > 64:
            errors.append(RowError(n, "name", "name is required (at most 64 characters)"))
            bad = True
        row["name"] = name
        phone = re.sub(r"[\s-]", "", _clean(raw.get("phone")))
        if phone and not PHONE_RE.match(phone):
            errors.append(RowError(n, "phone", f"phone must be an 11-digit mobile number, got {phone!r}"))
            bad = True
        row["phone"] = phone or None
        tier = _clean(raw.get("tier")) or None
        if tier is not None and tier not in tier_names():
            errors.append(RowError(n, "tier", f"tier must be one of {'/'.join(tier_names())}, got {tier!r}"))
            bad = True
        row["tier"] = tier
        for f in DATE_FIELDS:
            v = raw.get(f)
            if v is None or _clean(v) == "":
                row[f] = None
                continue
            try:
                row[f] = _parse_date(v)
            except (ValueError, TypeError):
                errors.append(RowError(n, f, f"{f} must be a date such as 2026-09-15, got {_clean(v)!r}"))
                bad = True
        row["openid"] = _clean(raw.get("openid")) or None
        key = (room, name)
        if room and name and key in seen:
            errors.append(RowError(n, "room", f"same owner and room as row {seen[key]}"))
            bad = True
        seen.setdefault(key, n)
        if not bad:
            good.append(row)
    return good, errors


def run_import(session: Session, filename: str, data: bytes, dry_run: bool = True) -> ImportReport:
    """Validate, and when clean and not a dry run, upsert homes and owners."""
    report = ImportReport(dry_run=dry_run)
    try:
        rows = read_table(filename, data)
    except ImportFormatError as exc:
        report.errors.append(RowError(1, "file", str(exc)))
        return report
    good, report.errors = validate(rows)
    report.rows = len(good) + len({e.row for e in report.errors})
    for row in good:
        home = session.scalar(select(Home).where(Home.room == row["room"]))
        owner = None
        if home is not None:
            owner = session.scalar(select(Owner).where(Owner.home_id == home.id, Owner.name == row["name"]))
        if owner is None:
            report.created += 1
        else:
            report.updated += 1
    if dry_run or not report.ok:
        return report
    for row in good:
        _upsert(session, row)
    session.flush()
    report.imported = True
    return report


def _upsert(session: Session, row: dict) -> None:
    building = session.scalar(select(Building).where(Building.code == row["building"]))
    if building is None:
        building = Building(code=row["building"], name=row["building"])
        session.add(building)
        session.flush()
    home = session.scalar(select(Home).where(Home.room == row["room"]))
    if home is None:
        home = Home(room=row["room"], building_id=building.id)
        session.add(home)
        session.flush()
    for f in ("warranty_until", "handover_date"):
        if row[f] is not None:
            setattr(home, f, row[f])
    owner = session.scalar(select(Owner).where(Owner.home_id == home.id, Owner.name == row["name"]))
    if owner is None:
        owner = Owner(name=row["name"], home_id=home.id, tier=row["tier"] or load_rules().default_tier)
        session.add(owner)
    for f in ("phone", "tier", "fees_paid_until", "birthday", "move_in_date", "openid"):
        if row[f] is not None:
            setattr(owner, f, row[f])
