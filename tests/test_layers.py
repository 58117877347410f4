"""The floors hold: imports point down, and no two packages import each other.

Floors (docs/DEV_NOTES.md, "Floors"): ground -> store -> faq, handlers -> bot -> scheduler.
Every import counts, also one made inside a function: an import there still ties
the two modules, it only fails later. So does a string that names a module of ours
("scheduler.cli:main", "bot.tasks.send_outbox"): importlib, rq and a "module:attr" path
import it all the same, so a lower floor may not name a higher one that way either.
Each failure names the file, the line and what it imports. Nothing is run: the modules
are read with `ast`.
Also issue 15's size rule: no function over 80 lines or nesting over 4 blocks.
"""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ground", "store", "faq", "handlers", "bot", "scheduler")

# What each top-level package may import of ours (besides itself).
MAY_IMPORT: dict[str, set[str]] = {
    "ground": set(),
    "store": {"ground"},
    "faq": {"ground", "store", "handlers"},
    "handlers": {"ground", "store", "faq"},
    "bot": {"ground", "store", "faq", "handlers"},
    "scheduler": {"ground", "store", "faq", "handlers", "bot"},
}


@dataclass(frozen=True)
class Import:
    source: str  # dotted module that imports
    path: Path  # its file
    line: int
    target: str  # dotted module of ours that it names

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} imports {self.target}"


def _modules() -> dict[str, tuple[Path, bool]]:
    """dotted name -> (file, is a package's __init__)."""
    out = {}
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


MODULES = _modules()


def _ours(name: str) -> str | None:
    """The module of ours that `name` is or lies in (a.b.c -> a.b when c is a name in a.b)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports_of(module: str) -> list[Import]:
    path, is_pkg = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if is_pkg else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):  # every import, at the top or inside a function
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..y import z
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            target = _ours(name)
            if target and target != module:
                found.append(Import(module, path, node.lineno, target))
    return list(dict.fromkeys(found))  # `from x import a, b` is one import of x


IMPORTS = [imp for module in MODULES for imp in _imports_of(module)]


def _top(module: str) -> str:
    return module.split(".")[0]


def test_the_tree_is_read():
    assert len(MODULES) > 100 and len(IMPORTS) > 500  # a broken walk must not pass as "no violations"


def test_floors_point_down():
    """handlers/, faq/ and store/ never import bot/ or scheduler/; ground/ imports nothing of ours."""
    wrong = [f"{imp}  ({_top(imp.source)}/ may import only: {', '.join(sorted(MAY_IMPORT[_top(imp.source)])) or 'nothing of ours'})"
             for imp in IMPORTS
             if _top(imp.target) != _top(imp.source) and _top(imp.target) not in MAY_IMPORT[_top(imp.source)]]
    assert not wrong, "imports that point up a floor:\n  " + "\n  ".join(wrong)


# A string literal that is a dotted path into one of our packages, optionally "module:attr".
MODULE_PATH = re.compile(rf"^({'|'.join(PACKAGES)})(\.[A-Za-z_]\w*)+(:[A-Za-z_][\w.]*)?$")


@dataclass(frozen=True)
class Named:
    path: Path
    line: int
    text: str  # the string, as written

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} names {self.text!r}"


def _names_in(source: str, path: Path) -> list[Named]:
    """Every string literal of `source` that is a module path of ours (docstrings and
    prose never match: the whole string must be the path)."""
    return [Named(path, node.lineno, node.value) for node in ast.walk(ast.parse(source, str(path)))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_PATH.match(node.value)]


def _upward_names(top: str, names: list[Named]) -> list[str]:
    return [f"{n}  ({top}/ may name only: {', '.join(sorted(MAY_IMPORT[top])) or 'nothing of ours'})"
            for n in names if _top(n.text) != top and _top(n.text) not in MAY_IMPORT[top]]


def test_floors_point_down_in_strings_too():
    """No module of a lower floor names a higher floor's module in a string literal
    ("scheduler.x", "bot.x:attr"): that is an import by another name. The floor above
    registers itself instead (pyproject's `guanjia.commands`, bot/web.py::CAPABILITY_PAGES)."""
    wrong = []
    for module, (path, _) in MODULES.items():
        wrong += _upward_names(_top(module), _names_in(path.read_text(encoding="utf-8"), path))
    assert not wrong, "strings that name a module a floor up:\n  " + "\n  ".join(wrong)


def test_the_string_check_has_teeth():
    """A planted reference is caught, naming file and line; prose mentioning a module is not."""
    path = ROOT / "handlers" / "planted.py"
    source = ('"""Docs may say scheduler.cli:main in prose."""\n'
              'TASK = "bot.tasks.send_outbox"\n'
              'CLI = ("scheduler.cli:schedule_cli",)\n'
              'OK = "store.models:Owner"\n')
    assert _upward_names("handlers", _names_in(source, path)) == [
        "handlers/planted.py:2 names 'bot.tasks.send_outbox'  (handlers/ may name only: faq, ground, store)",
        "handlers/planted.py:3 names 'scheduler.cli:schedule_cli'  (handlers/ may name only: faq, ground, store)"]
    assert _upward_names("bot", _names_in('X = "scheduler.x"\n', ROOT / "bot" / "x.py"))


def _package_edges() -> dict[tuple[str, str], list[Import]]:
    """Edges between sibling packages, at every level: an import from inside package A to
    inside package B, where A and B sit side by side in the same parent (or at the top).
    A module's own package importing a subpackage (or the other way) is not between siblings."""
    edges: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for imp in IMPORTS:
        a = imp.source.split(".") + (["__init__"] if MODULES[imp.source][1] else [])
        b = imp.target.split(".") + (["__init__"] if MODULES[imp.target][1] else [])
        i = 0
        while i < min(len(a), len(b)) and a[i] == b[i]:
            i += 1
        left, right = ".".join(a[: i + 1]), ".".join(b[: i + 1])
        # Two modules of one package are a circle of files, not of packages: not counted here.
        if i == 0 or (MODULES.get(left, (None, False))[1] and MODULES.get(right, (None, False))[1]):
            edges[(left, right)].append(imp)
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected parts with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(set(graph) | {w for ws in graph.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_packages():
    """bot/, handlers/, faq/, store/, scheduler/, ground/ and their subpackages (bot/console,
    bot/api, handlers/tickets...): no two siblings import each other, however indirectly."""
    edges = _package_edges()
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    report = []
    for part in _cycles(graph):
        report.append("cycle between " + ", ".join(p.replace(".", "/") + "/" for p in part) + ":")
        for a in part:
            for b in sorted(graph[a] & set(part)):
                report += [f"    {imp}" for imp in edges[(a, b)]]
    assert not report, "\n".join(report)


# --- function size -----------------------------------------------------------------------------
# Issue 15: no function over about 80 lines or nesting over 4, outside declarative tables
# (module-level data, not functions) and migrations. A level is an if / for / while / with /
# try / match block, and an `elif` is one more (the tree nests it in the `else`): a chain
# that long is a table waiting to be written.

MAX_FUNCTION_LINES = 80
MAX_NESTING = 4
_BLOCKS = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.Match,
           *((ast.TryStar,) if hasattr(ast, "TryStar") else ()))
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _nesting(node: ast.AST, depth: int = 0) -> int:
    """The deepest block level inside `node`, not counting functions or classes defined in it."""
    deepest = depth
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, _SCOPES):
            deepest = max(deepest, _nesting(child, depth + isinstance(child, _BLOCKS)))
    return deepest


def _function_sizes() -> list[tuple[str, int, int]]:
    """(file:function, lines, nesting) of every function of our packages, migrations aside."""
    out = []
    for module, (path, _) in MODULES.items():
        if ".migrations" in module:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((f"{path.relative_to(ROOT)}:{node.name}", node.end_lineno - node.lineno + 1,
                            _nesting(node)))
    return out


def test_functions_are_short_and_shallow():
    """Every function of bot/, handlers/, faq/, store/, scheduler/, ground/ is at most 80 lines
    (its `def` to its last line) and nests at most 4 blocks deep."""
    sizes = _function_sizes()
    assert len(sizes) > 1000  # a broken walk must not pass as "all short"
    wrong = [f"{where}: {lines} lines (at most {MAX_FUNCTION_LINES})" for where, lines, _ in sizes
             if lines > MAX_FUNCTION_LINES]
    wrong += [f"{where}: nests {depth} deep (at most {MAX_NESTING})" for where, _, depth in sizes
              if depth > MAX_NESTING]
    assert not wrong, "functions to split into named helpers:\n  " + "\n  ".join(wrong)


def test_the_size_check_has_teeth():
    """A function of 81 lines, or one nesting five blocks (an elif counts), is caught."""
    long = ast.parse("def f():\n" + "    x = 1\n" * 80).body[0]
    assert long.end_lineno - long.lineno + 1 == 81
    deep = ast.parse("def f(a):\n"
                     "    for x in a:\n"
                     "        if x:\n"
                     "            pass\n"
                     "        elif x > 1:\n"
                     "            with open(x) as f:\n"
                     "                try:\n"
                     "                    pass\n"
                     "                except OSError:\n"
                     "                    pass\n"
                     "    def inner():\n"  # a function of its own: measured apart
                     "        if a:\n"
                     "            pass\n").body[0]
    assert _nesting(deep) == 5


# --- registrations ------------------------------------------------------------------------------
# No capability registers the same command, intent, event, page or job twice (issue 15,
# "one capability = one package + one line"; handlers/capability.py).


def test_no_registration_is_duplicated(env):
    """The whole install, as the hosts do it, with every capability of the list:
    a name registered twice anywhere (chat, card prefix, job, CLI command, API
    route, URL) would raise here. The tiny capability of tests/test_capabilities.py
    shows each kind raising, naming both registrants."""
    import handlers
    from bot import cli
    from bot.web import create_app
    from handlers.capability import unique
    from handlers.schedule.config import load_schedule

    caps = handlers.load_capabilities()
    assert len({c.name for c in caps}) == len(caps)
    for kind, names in (("text command", lambda c: [(n, c) for n in c.commands]),
                        ("card prefix", lambda c: [(n, c) for n in c.cards]),
                        ("conversation handler", lambda c: [(n, c) for n in c.conversations])):
        unique(caps, kind, names)
    load_schedule()  # jobs: schedule.yaml's and the capabilities', one name each
    cli._register_extra()  # CLI commands
    create_app()  # pages, API routes, URL + method


def test_a_duplicate_registration_fails():
    """The check above has teeth: a second handler for an intent raises, naming both."""
    import pytest

    from handlers import load_capabilities
    from handlers.capability import Capability
    from handlers.registry import DuplicateRegistration

    load_capabilities()
    with pytest.raises(DuplicateRegistration, match="intent handler 'complaint' registered twice: by .*tickets.* "
                                                    "and by .*capability layers_probe"):
        Capability("layers_probe").intent("complaint")(lambda ctx, msg, route: None)
