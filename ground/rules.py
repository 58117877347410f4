"""Rule files: the one loader for every business rule kept as YAML.

A rule file is declared once, beside the code that uses it:

    TIERS = rules.RuleFile(DATA / "tiers.yaml", schema=rules.Record(...), build=parse_tiers)
    TIERS.get()            # validated and built, cached by path + mtime
    TIERS.reload()         # forget the cache (the next get() re-reads)

- One error type, `RulesError`: its message names the file, the entry and the
  field ("tiers.yaml: tiers.银卡: field 'keep_spend' should be a number >= 0");
  `.problems` lists every problem the schema found, not only the first.
- One reload scheme: `get()` looks at the file's mtime (at most every
  `check_every` seconds) and re-reads it when it changed. A broken edit of a
  file that loaded before keeps the last good rules in service and is logged
  (a typo in the console never takes the bot down); the first load raises, and so
  does reading another copy than the declared file (`get(path)`: tests, tools).
- `check_all()` validates every declared file afresh (`guanjia check`, tests).

A schema is a tree of the small specs below (Record, ListOf, MapOf, Text,
Number...); `build(data, src)` turns the validated data into the capability's
own objects and may raise `src.fail(entry, message)` for cross-field rules.
This module imports nothing of ours: every floor may use it.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

import yaml

log = logging.getLogger(__name__)
T = TypeVar("T")
# libyaml's parser is ~10x faster than the pure-Python one (matters for the KB).
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
ROOT = Path(__file__).resolve().parent.parent


class RulesError(ValueError):
    """A rule file is wrong; the message names file, entry and field."""

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[str, ...] = tuple(problems) or (message,)


def display_name(path: Path | str) -> str:
    """How an error names a file: relative to the project when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def _join(where: str, msg: str) -> str:
    return f"{where}: {msg}" if where else msg


class Source:
    """The file being read, handed to `build` so its errors name the file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.name = display_name(path)

    def fail(self, where: str, msg: str) -> RulesError:
        return RulesError(f"{self.name}: {_join(where, msg)}")


def read_yaml(path: Path | str) -> Any:
    """The parsed file; an unreadable or malformed file is a RulesError naming it."""
    src = Source(path)
    try:
        text = src.path.read_text(encoding="utf-8")
    except OSError as exc:
        raise src.fail("", f"cannot be read: {exc.strerror or exc}") from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise src.fail("", f"is not valid YAML: {exc}") from None


def read_jsonl(path: Path | str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed line) of a JSON-lines file (blank lines skipped);
    a line that is not JSON is a RulesError naming the file and line."""
    p = Path(path)
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as exc:
            raise RulesError(f"{p.name}:{n}: not JSON ({exc.msg})") from None


# --- the schema language ------------------------------------------------------

_BAD = object()


# A location is built with one separator for a Record's field and another for a
# mapping's key, so that it reads "tiers.银卡: field 'keep_spend'".
_FIELD, _KEY = "\x1f", "\x1e"


def _render(where: str) -> str:
    def clean(s: str) -> str:
        return s.replace(_FIELD, ".").replace(_KEY, ".").lstrip(".")

    f, k = where.rfind(_FIELD), where.rfind(_KEY)
    if f > k:
        head, name = clean(where[:f]), where[f + 1:]
        return f"{head}: field '{name}'" if head else f"field '{name}'"
    return clean(where)


class _Check:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def bad(self, where: str, msg: str) -> object:
        self.problems.append(_join(_render(where), msg))
        return _BAD


class Spec:
    what = "a value"

    def check(self, v: Any, where: str, ck: _Check) -> Any:
        return v

    def _wrong(self, v: Any, where: str, ck: _Check) -> object:
        return ck.bad(where, f"should be {self.what}, got {v!r}")


class AnyValue(Spec):
    pass


class Text(Spec):
    """Non-empty text (numbers are taken as text when `numbers` is set); stripped."""

    def __init__(self, empty: bool = False, numbers: bool = False, max_len: int | None = None) -> None:
        self.empty, self.numbers, self.max_len = empty, numbers, max_len
        self.what = "text" if empty else "non-empty text"

    def check(self, v, where, ck):
        if self.numbers and isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str) or (not self.empty and not v.strip()):
            return self._wrong(v, where, ck)
        if self.max_len is not None and len(v) > self.max_len:
            return ck.bad(where, f"is {len(v)} characters; at most {self.max_len}")
        return v.strip()


class Number(Spec):
    """An int or float (never a bool) within [min, max]; `above` is exclusive."""

    def __init__(self, min: float | None = None, max: float | None = None, above: float | None = None,
                 integer: bool = False) -> None:
        self.min, self.max, self.above, self.integer = min, max, above, integer
        kind = "a whole number" if integer else "a number"
        bounds = [f">= {min}"] * (min is not None) + [f"> {above}"] * (above is not None) + [f"<= {max}"] * (max is not None)
        self.what = kind + (" " + " and ".join(bounds) if bounds else "")

    def check(self, v, where, ck):
        types = (int,) if self.integer else (int, float)
        if isinstance(v, bool) or not isinstance(v, types):
            return self._wrong(v, where, ck)
        if ((self.min is not None and v < self.min) or (self.max is not None and v > self.max)
                or (self.above is not None and v <= self.above)):
            return self._wrong(v, where, ck)
        return v


def Int(min: int | None = None, max: int | None = None, above: int | None = None) -> Number:
    return Number(min, max, above, integer=True)


class Bool(Spec):
    what = "true or false"

    def check(self, v, where, ck):
        return v if isinstance(v, bool) else self._wrong(v, where, ck)


class OneOf(Spec):
    def __init__(self, *choices: Any) -> None:
        self.choices = choices
        self.what = "one of " + ", ".join(map(str, choices))

    def check(self, v, where, ck):
        return v if v in self.choices else self._wrong(v, where, ck)


class Pattern(Spec):
    """A regular expression; with `bounded`, gaps must carry a bound ({0,6}):
    an unbounded one (.*, +) could make matching super-linear on a long message."""

    _UNBOUNDED = re.compile(r"(?<!\\)[*+]|\{\d*,\}")
    what = "a regular expression"

    def __init__(self, bounded: bool = False) -> None:
        self.bounded = bounded

    def check(self, v, where, ck):
        if not isinstance(v, str) or not v.strip():
            return self._wrong(v, where, ck)
        if self.bounded and self._UNBOUNDED.search(v):
            return ck.bad(where, f"{v!r}: use a bounded gap such as .{{0,6}}, not * or +")
        try:
            re.compile(v)
        except re.error as exc:
            return ck.bad(where, f"{v!r}: {exc}")
        return v


class ListOf(Spec):
    def __init__(self, item: Spec, min: int = 0) -> None:
        self.item, self.min = item, min
        self.what = f"a list of {item.what}" + (f" (at least {min})" if min else "")

    def check(self, v, where, ck):
        if not isinstance(v, list) or len(v) < self.min:
            return self._wrong(v, where, ck)
        out = [self.item.check(x, f"{where}[{i}]", ck) for i, x in enumerate(v)]
        return _BAD if any(x is _BAD for x in out) else out


class MapOf(Spec):
    """A mapping: keys checked by `key` (e.g. OneOf), values by `value`; entries
    are named `where.key`."""

    def __init__(self, value: Spec, key: Spec | None = None, min: int = 0) -> None:
        self.value, self.key, self.min = value, key, min
        self.what = f"a mapping of {value.what}" + (f" (at least {min})" if min else "")

    def check(self, v, where, ck):
        if not isinstance(v, dict) or len(v) < self.min:
            return self._wrong(v, where, ck)
        out, ok = {}, True
        for k, x in v.items():
            at = f"{where}{_KEY}{k}"
            if self.key is not None and self.key.check(k, "", _Check()) is _BAD:
                ck.bad(at, f"unknown key ({self.key.what})")
                ok = False
                continue
            out[k] = self.value.check(x, at, ck)
            ok = ok and out[k] is not _BAD
        return out if ok else _BAD


@dataclass(frozen=True)
class Opt:
    """An optional field of a Record: missing (or null) -> `default`."""

    spec: Spec
    default: Any = None


class Record(Spec):
    """A mapping with named fields (`Opt(...)` for optional ones). Unknown
    fields are refused when `closed` (a typo in a field name is then caught)."""

    what = "a mapping"

    def __init__(self, fields: dict[str, Spec | Opt] | None = None, closed: bool = False, **kw: Spec | Opt) -> None:
        self.fields = {**(fields or {}), **kw}
        self.closed = closed

    def check(self, v, where, ck):
        if v is None and all(isinstance(f, Opt) for f in self.fields.values()):
            v = {}
        if not isinstance(v, dict):
            return self._wrong(v, where, ck)
        out, ok = dict(v), True
        for name, f in self.fields.items():
            spec, optional = (f.spec, True) if isinstance(f, Opt) else (f, False)
            if v.get(name) is None:
                if optional:
                    # A missing sub-record still gets its own fields' defaults.
                    nested = isinstance(spec, Record) and isinstance(f.default, dict)
                    out[name] = spec.check(dict(f.default), f"{where}{_FIELD}{name}", ck) if nested else f.default
                    continue
                if name not in v:
                    ck.bad(f"{where}{_FIELD}{name}", "is missing")
                    ok = False
                    continue
            out[name] = spec.check(v[name], f"{where}{_FIELD}{name}", ck)
            ok = ok and out[name] is not _BAD
        if self.closed:
            for name in sorted(set(v) - set(self.fields), key=str):
                ck.bad(f"{where}{_FIELD}{name}", "unknown field")
                ok = False
        return out if ok else _BAD


class Custom(Spec):
    """A check of one's own: `fn(value)` returns the value or raises ValueError(msg)."""

    def __init__(self, fn: Callable[[Any], Any], what: str = "a value") -> None:
        self.fn, self.what = fn, what

    def check(self, v, where, ck):
        try:
            return self.fn(v)
        except (ValueError, TypeError) as exc:
            return ck.bad(where, str(exc) or f"should be {self.what}")


def validate(data: Any, schema: Spec, src: Source | Path | str) -> Any:
    """`data` checked against `schema` (defaults filled in); a RulesError lists every problem."""
    src = src if isinstance(src, Source) else Source(src)
    ck = _Check()
    out = schema.check(data, "", ck)
    if ck.problems or out is _BAD:
        problems = [f"{src.name}: {p}" for p in ck.problems] or [f"{src.name}: invalid"]
        more = [f"(and {len(problems) - 5} more)"] if len(problems) > 5 else []
        raise RulesError("\n".join(problems[:5] + more), problems)
    return out


# --- declared rule files: load once, cached by path + mtime -------------------

_REGISTRY: dict[str, "RuleFile"] = {}
_extra_checks: dict[str, Callable[[], None]] = {}


def _stamp(paths: tuple[Path, ...]) -> tuple:
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


class RuleFile(Generic[T]):
    """One rule file (or a few read together, e.g. two lexicons): its schema,
    how it is built, and its cache. `get(path)` reads another copy (tests)."""

    def __init__(self, *paths: Path | str, schema: Spec | tuple[Spec | None, ...] | None = None,
                 build: Callable[..., T] | None = None, check_every: float = 0.0,
                 name: str | None = None) -> None:
        self.paths = tuple(Path(p) for p in paths)
        self.schema = schema
        self.build = build
        self.check_every = check_every
        self.name = name or ", ".join(display_name(p) for p in self.paths)
        self._cache: dict[tuple[Path, ...], tuple[tuple, T]] = {}
        self._checked: dict[tuple[Path, ...], float] = {}
        self._lock = threading.Lock()
        self.last_error: str | None = None
        _REGISTRY[self.name] = self

    def load(self, *paths: Path | str) -> T:
        """Read, validate and build afresh (no cache)."""
        use = tuple(Path(p) for p in paths) or self.paths
        schemas = self.schema if isinstance(self.schema, tuple) else (self.schema,) * len(use)
        datas, srcs = [], []
        for p, schema in zip(use, schemas):
            src = Source(p)
            data = read_yaml(p)
            if data is None and isinstance(schema, (Record, MapOf)):
                data = {}
            datas.append(validate(data, schema, src) if schema is not None else data)
            srcs.append(src)
        if self.build is None:
            return datas[0] if len(datas) == 1 else tuple(datas)  # type: ignore[return-value]
        if len(use) == 1:
            return self.build(datas[0], srcs[0])
        return self.build(*datas, srcs=tuple(srcs))

    def get(self, *paths: Path | str) -> T:
        """The built rules, re-read when a file changed since the last read."""
        key = tuple(Path(p) for p in paths) or self.paths
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and self.check_every and now - self._checked.get(key, 0.0) < self.check_every:
            return hit[1]
        stamp = _stamp(key)
        if hit is not None and hit[0] == stamp:
            self._checked[key] = now
            return hit[1]
        with self._lock:
            self._checked[key] = now
            try:
                value = self.load(*key)
            except RulesError as exc:
                if hit is None or key != self.paths:
                    raise  # first load: nothing to fall back on; another copy (a test, a tool): say so
                # Keep serving the last good rules; remember the stamp so we log once per edit.
                self.last_error = str(exc)
                self._cache[key] = (stamp, hit[1])
                log.error("rule file NOT reloaded, the last good version stays: %s", exc)
                return hit[1]
            self._cache[key] = (stamp, value)
            if hit is not None:
                self.last_error = None
                log.info("rule file reloaded: %s", display_name(key[0]))
            return value

    def reload(self) -> None:
        """Forget what was read: the next get() reads the files again."""
        self._cache.clear()
        self._checked.clear()
        self.last_error = None

    def check(self) -> list[str]:
        """Every problem of the file(s) as they are now ([] when good)."""
        try:
            self.load()
        except RulesError as exc:
            return list(exc.problems)
        return []


def register_check(name: str, fn: Callable[[], None]) -> None:
    """A rule source that is not one RuleFile (a folder of files, a corpus):
    `fn()` raises RulesError when it is wrong; check_all() runs it."""
    _extra_checks[name] = fn


def rule_files() -> list[RuleFile]:
    return list(_REGISTRY.values())


def check_all() -> list[str]:
    """Every problem of every declared rule file (import the capabilities first)."""
    problems: list[str] = []
    for rf in _REGISTRY.values():
        problems += rf.check()
    for fn in _extra_checks.values():
        try:
            fn()
        except RulesError as exc:
            problems += list(exc.problems)
    return problems


def reload(path: Path | str | None = None) -> None:
    """Forget cached rules: all of them, or those read from `path`."""
    target = Path(path).resolve() if path is not None else None
    for rf in _REGISTRY.values():
        if target is None or any(p.resolve() == target for p in rf.paths):
            rf.reload()
