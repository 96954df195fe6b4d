"""Every literal block of pyredcache's own documents, and of the docstrings
Sphinx renders from them, classified, and the Python ones run.

The documents: README.rst and docs/quickstart.rst, index.rst, format.rst,
development.rst, migrating.rst, api.rst, regions.rst and containers.rst
(:data:`DOCS`: every page of docs/).  regions.rst and containers.rst are
doctest pages: their doctest blocks are run, as whole pages, by
tests/test_region.py::test_docs_regions_page_runs and
tests/test_containers.py::test_docs_run_pottery_readme_examples
(:data:`RUN_ELSEWHERE`); their other blocks are classified here.

Extraction (:func:`rst_blocks`): a literal block is what follows a
paragraph ending in ``::`` (``text::``, ``text ::`` or ``::`` alone),
indented more than that paragraph, up to the first line indented no more;
the content of a ``.. code-block::``/``.. code::``/``.. sourcecode::``
directive is one too, and a paragraph of ``>>>`` lines (a doctest block)
is also taken.  Other directives (``.. toctree::``) are not blocks.  A
block is named ``<doc>:<section>:<n>``: the slug of the nearest section
title above it and its rank in that section; its first line in the
document is kept for messages.  A ``::`` with no block after it is an
error (:func:`test_documents_and_docstrings_are_read`).

Docstrings (:class:`AutodocWalk`): the autodoc directives of the pages
(api.rst's and containers.rst's ``automodule``/``autoclass``/
``autofunction``/``autodata``) are walked as Sphinx's autodoc walks them:
the object each names is imported, and its members chosen by Sphinx's
rules: docs/conf.py's ``autodoc_default_options`` applied as Sphinx
applies them (``{"members": True}`` *replaces* a directive's ``:members:
a, b`` list: every documented member is shown), ``:no-members:``,
``__all__``, a module's imported names left out when it has no
``__all__``, private, special and undocumented members left out, own
members only unless ``:inherited-members:``, a docstring inherited from a
base when a member has none, and ``#:`` comments (module and class
attributes, ``self.<name>`` in ``__init__``).  Each docstring is read with
:func:`inspect.getdoc` (a comment, cleaned the same way) and kept once, by
the object it is written on (:class:`Docstring`: file, owner's qualified
name, ``<module>`` for a module's docstring, and line): its blocks are
named ``<file>:<owner>:<n>`` (``pyredcache/cache.py:BaseCache.batch_mode:1``)
and placed at their line in that file.  A name the
core gives (``pyredcache.Promise``) is walked on each core, so the pure
twin's docstring is read as well as the C core's.  (When this was
written, the walk was checked against what Sphinx 9.0.4 itself passes to
``autodoc-process-docstring`` for these pages, on both cores: the same
271 names, with the same texts.)

Classification (:func:`classify`): ``shell`` when every line is a command
line (``pip``, ``sudo``, ``make``, ``apt-get``, ``python -m``, ...,
optionally after ``VAR=value`` assignments), ``doctest`` for ``>>>``
blocks, ``python`` when it compiles, ``text`` otherwise; a
``code-block`` language wins.

The inventory (:func:`test_every_block_is_run_or_listed`): every block
found is in one group of :data:`GROUPS` (and is run), or in
:data:`NOT_RUN` with the reason it is not run, or a doctest block of a
page of :data:`RUN_ELSEWHERE`, whose test must exist, run that page with
``doctest.testfile``, assert that nothing failed, and not be marked skip
or xfail (read from the test file's text).  A block added later, or one
moved to another section or docstring, fails it until it is classified
here; the number of blocks per document, and per docstring owner
(:data:`DOCSTRING_BLOCKS`), is pinned too.
:func:`test_no_code_line_is_outside_a_block` catches code written as
prose (a paragraph, or a docstring's, that lost its ``::``).

Running (:func:`test_docs_example`, one case per group, on both cores via
the ``impl`` fixture): the blocks of a group run in one namespace, in
document order, because later examples use what earlier ones made (the
``cache`` of the first example of a page, ``load``, the key ``'key'``).
A docstring is a group of its own.  The servers are flushed when a group
starts, and pyredcache.region's default registry (which ``CacheRegion``'s
class methods configure) is a fresh one during it.  Names a document uses
without defining them (``load_from_database``, ``render_front_page``,
``SECRET_KEY``, ...) stand for the reader's application: they come from
the group's ``reader`` code, run just before the block that first needs
them, and marked as such; for a docstring, that includes importing from
pyredcache the name it documents (``Promise``, ``CacheCluster``), as a
reader of its page does.  A group's ``checks`` are this test's own
assertions, run after a block that shows a result without asserting it
(``rv = load(...)``, ``posts = [p.value ...]``), or that defines a
function without calling it (the pytest example, ``@cache_region``).

Addresses (:class:`Rewrite`): only addresses change.  ``Cache()``,
``Cache('redis-host', ...)`` and ``Client(...)`` get the host and port of
the test suite's private ``redis_server`` (a unix socket path its
socket); ``RegionCache(host=..., port=...)`` (region_cache's set-up) too,
when it names them; every ``redis://`` or ``unix://`` URL literal gets the
address of the private server standing for its host
(``localhost``/``redis-host``: ``redis_server``; ``m1`` .. ``m5``: the
five ``masters``), keeping its user, password, db and query options; each
host of a ``CacheCluster({...})`` becomes one of the four ``shards``.
:func:`check_addresses` then checks the rewritten code on its own (no
``localhost``, no port the documents name, every call that connects
addressed to a private server: a ``Lock``, ``Redlock``, container or
``RegionCache`` that names no server, and so would use the default
localhost:6379, is refused, not given an address), and after every block
:func:`foreign_connections` checks that this process holds no TCP
connection to a port the documents name (6379, 6380; Linux ``/proc``).
``$REDIS_URL`` is the private server's URL while the examples run.

Not run: shell commands (installing pyredcache, ``apt-get``, ``make
demo``/``make test``/``make bench``: they install system packages, build,
or run the whole suite), text (a table of Redis keys) and a value's shape
(a lone expression that calls nothing: what ``health()`` returns); each
is listed in :data:`NOT_RUN` with its reason.  No shell block of these
documents is a ``python -m pyredcache`` or ``python examples/...`` command
(those are quoted inline in prose), so none is run through a subprocess.
docs/index.rst, docs/format.rst, docs/development.rst and
docs/migrating.rst have no literal block today (the inventory pins that).

A docstring example that is wrong fails its group here until
pyredcache/ is fixed: there is no xfail or skip.
"""

from __future__ import annotations

import ast
import dataclasses
import doctest
import functools
import importlib
import inspect
import re
import sys
import textwrap
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from examplesupport import (CONTAINERS, Server, apply_rewrite, argument, call_name,
                            check_cluster_addressed, check_the_guard, checked_tree,
                            cluster_hosts, compile_example, connections_to, constant_in,
                            dict_index, find_keyword, set_items, set_unix_socket)
from pyredcache import _compat

ROOT = Path(__file__).resolve().parent.parent

#: The documents read, relative to the repository root.
DOCS = (
    "README.rst",
    "docs/quickstart.rst",
    "docs/index.rst",
    "docs/format.rst",
    "docs/development.rst",
    "docs/migrating.rst",
    "docs/api.rst",
    "docs/regions.rst",
    "docs/flask.rst",
    "docs/containers.rst",
)

#: Pages whose doctest blocks another test runs, as a whole page
#: (``doctest.testfile``): page -> that test.  Their other blocks are
#: classified here like any other.
RUN_ELSEWHERE = {
    "docs/regions.rst": "tests/test_region.py::test_docs_regions_page_runs",
    "docs/flask.rst": "tests/test_flask.py::test_docs_flask_page_runs",
    "docs/containers.rst": "tests/test_containers.py::test_docs_run_pottery_readme_examples",
}

#: Ports the documents name (6379, ``Cache()``'s default and the masters'
#: URLs; 6380, a CacheCluster host): nothing may connect to them.
FOREIGN_PORTS = frozenset({6379, 6380})


# -- extraction ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Block:
    """One literal block: its document, section slug, rank in the section
    (1-based), first and last line in the document (1-based), kind and
    text (dedented)."""

    doc: str
    section: str
    rank: int
    line: int
    end: int
    kind: str
    text: str

    @property
    def id(self) -> str:
        return "%s:%s:%d" % (self.doc, self.section, self.rank)

    @property
    def where(self) -> str:
        return "%s:%d (%s)" % (self.doc, self.line, self.id)


_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+<>:._])\1+\s*$")
_CODE_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+(code-block|code|sourcecode)::\s*(\S*)\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _is_title(lines: list[str], i: int) -> bool:
    """lines[i] is a section title (underlined, not indented)."""
    return (i + 1 < len(lines) and lines[i].strip() != "" and not lines[i][0].isspace()
            and not lines[i].startswith(".. ")
            and _UNDERLINE.match(lines[i + 1]) is not None
            and len(lines[i + 1].rstrip()) >= len(lines[i].rstrip()))


def _block_after(lines: list[str], i: int, indent: int) -> tuple[int, int]:
    """[start, end) of the lines indented more than ``indent`` that follow
    line i, after blank lines."""
    start = i + 1
    while start < len(lines) and not lines[start].strip():
        start += 1
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return start, end


def rst_blocks(text: str, doc: str, owner: str | None = None,
               first_line: int = 1) -> list[Block]:
    """The literal blocks (and doctest blocks) of a reStructuredText
    document, classified.  For a docstring, ``owner`` (its owner's name) is
    the section of all its blocks, and ``first_line`` the line of the
    docstring's first line in its source file."""
    lines = text.split("\n")
    found: list[tuple[str, int, int, str]] = []  # section, start, end, language
    section = owner or _slug(doc)
    i = 0
    previous_blank = True
    paragraph_start = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            previous_blank = True
            i += 1
            continue
        if previous_blank:
            paragraph_start = i
        previous_blank = False
        if _is_title(lines, i):
            section = owner or _slug(line)
            i += 2
            previous_blank = True
            continue
        directive = _CODE_DIRECTIVE.match(line)
        if directive:
            indent = _indent(line)
            j = i + 1
            while j < len(lines) and re.match(r"^\s+:[\w-]+:", lines[j]):
                j += 1  # the directive's options
            start, end = _block_after(lines, j - 1, indent)
            found.append((section, start, end, directive.group(3) or "text"))
            i = end
            previous_blank = True
            continue
        if line.lstrip().startswith(">>> ") and i == paragraph_start:
            end = i
            while end < len(lines) and lines[end].strip():
                end += 1
            found.append((section, i, end, "pycon"))
            i = end
            continue
        if line.rstrip().endswith("::") and not lines[paragraph_start].lstrip().startswith(".. "):
            if i + 1 < len(lines) and lines[i + 1].strip():
                i += 1  # the paragraph goes on
                continue
            start, end = _block_after(lines, i, _indent(lines[paragraph_start]))
            if start >= end:
                raise ValueError("%s:%d: '::' with no literal block after it" % (doc, i + 1))
            found.append((section, start, end, ""))
            i = end
            previous_blank = True
            continue
        i += 1
    blocks = []
    ranks: dict[str, int] = {}
    for section, start, end, language in found:
        ranks[section] = ranks.get(section, 0) + 1
        body = textwrap.dedent("\n".join(lines[start:end])) + "\n"
        blocks.append(Block(doc, section, ranks[section], start + first_line,
                            end + first_line - 1, classify(body, language), body))
    return blocks


#: A shell command line: ``VAR=value`` assignments, then a command.
_SHELL_LINE = re.compile(
    r"^(\$ )?([A-Z_][A-Z0-9_]*=\S*\s+)*"
    r"(pip3?|sudo|make|apt-get|apt|dnf|python3?|pytest|git|cd|export|\.venv/bin/\S+)"
    r"(\s|$)")


def classify(body: str, language: str = "") -> str:
    """``python``, ``doctest``, ``shell`` or ``text`` (see the module
    docstring)."""
    language = language.lower()
    lines = [line for line in body.split("\n") if line.strip()]
    if language in ("pycon",) or (not language and lines[0].startswith(">>> ")):
        return "doctest"
    if language in ("bash", "sh", "shell", "console", "shell-session"):
        return "shell"
    if language and language not in ("python", "py", "python3"):
        return "text"
    if not language and all(_SHELL_LINE.match(line) for line in lines):
        return "shell"
    if language:
        return "python"  # declared Python: run, so that a SyntaxError fails
    try:
        compile(body, "<block>", "exec")
    except SyntaxError:
        return "text"
    return "python"


# -- docstrings that Sphinx renders ------------------------------------------------------

#: The autodoc directives docs/ uses (``automodule`` ... ``autoproperty``).
_AUTODOC = re.compile(r"^\s*\.\.\s+auto(module|class|exception|function|decorator|method|"
                      r"data|attribute|property)::\s*(\S+)\s*$")
_DIRECTIVE_OPTION = re.compile(r"^\s+:([\w-]+):(?:\s+(\S.*?))?\s*$")
_SPECIAL = re.compile(r"^__\S+__$")
_EXTENDABLE = frozenset({"members", "private-members", "special-members", "exclude-members"})
#: The options autodoc_default_options may set (Sphinx's list).
_DEFAULTABLE = ("members", "undoc-members", "no-index", "no-index-entry", "inherited-members",
                "show-inheritance", "private-members", "special-members", "ignore-module-all",
                "exclude-members", "member-order", "imported-members", "class-doc-from",
                "no-value")


class _All:
    """Sphinx's ALL: every name."""

    def __contains__(self, name: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "ALL"


ALL = _All()


def _conf() -> dict[str, Any]:
    """The autodoc settings of docs/conf.py (its literal assignments), with
    Sphinx's defaults for those it does not set."""
    settings: dict[str, Any] = {"autodoc_default_options": {}, "autoclass_content": "class",
                                "autodoc_inherit_docstrings": True}
    tree = ast.parse((ROOT / "docs" / "conf.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id in settings):
            settings[node.targets[0].id] = ast.literal_eval(node.value)
    return settings


CONF = _conf()


@dataclasses.dataclass(frozen=True)
class Directive:
    """One autodoc directive of a page: its kind (``class``, ``module``,
    ...), the dotted name it documents and its options as written
    (``None`` for a flag)."""

    page: str
    line: int
    kind: str
    name: str
    options: tuple[tuple[str, str | None], ...]


def autodoc_directives(text: str, page: str) -> list[Directive]:
    lines = text.split("\n")
    found = []
    for i, line in enumerate(lines):
        m = _AUTODOC.match(line)
        if not m:
            continue
        options = []
        j = i + 1
        while j < len(lines) and (option := _DIRECTIVE_OPTION.match(lines[j])):
            options.append((option.group(1), option.group(2)))
            j += 1
        found.append(Directive(page, i + 1, m.group(1), m.group(2), tuple(options)))
    return found


def effective_options(directive: Directive,
                      defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """A directive's options once conf.py's ``autodoc_default_options``
    are applied, as Sphinx's ``process_documenter_options`` does: a
    default that is not a str *replaces* what the directive gives (so
    ``:members: a, b`` under ``{"members": True}`` documents every
    member), a ``:no-<name>:`` flag removes the default."""
    options: dict[str, Any] = dict(directive.options)
    if directive.kind not in ("module", "class", "exception"):
        return options
    defaults = CONF["autodoc_default_options"] if defaults is None else defaults
    for name in _DEFAULTABLE:
        negated = options.pop("no-" + name, True) is None
        if name in defaults and not negated:
            default = defaults[name]
            if name in options and isinstance(default, str):
                if name in _EXTENDABLE and options[name] and options[name].startswith("+"):
                    options[name] = "%s,%s" % (default, options[name][1:])
            else:
                options[name] = default
        elif options.get(name) is not None:
            options[name] = options[name].lstrip("+")
    return options


def _names(options: dict[str, Any], name: str) -> Any:
    """An option naming members: None when absent, :data:`ALL` when given
    without names, else the frozenset of the names."""
    if name not in options:
        return None
    value = options[name]
    if value is None or value is True:
        return ALL
    return frozenset(n.strip() for n in str(value).split(",") if n.strip())


def _import(dotted: str) -> Any:
    """The object a dotted name documents: the longest importable module
    prefix, then attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def _source_file(obj: Any) -> Path | None:
    try:
        path = inspect.getsourcefile(obj)
    except TypeError:
        return None
    return Path(path).resolve() if path else None


def _file_label(path: Path | None, module: str) -> str:
    """A source file of the package as ``pyredcache/...`` (wherever the
    package is: the checkout, or an installed wheel's site-packages, as in
    CI's test-installed stage), another file relative to the repository,
    or the compiled module's name when there is no source."""
    if path is None:
        return module
    import pyredcache
    package = Path(pyredcache.__file__).resolve().parent
    try:
        return "pyredcache/" + path.relative_to(package).as_posix()
    except ValueError:
        pass
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


@functools.lru_cache(maxsize=None)
def _parsed(path: Path) -> tuple[list[str], ast.Module]:
    source = path.read_text(encoding="utf-8")
    return source.split("\n"), ast.parse(source)


@functools.lru_cache(maxsize=None)
def _docstring_lines(path: Path) -> dict[str, int]:
    """Qualified name (``<module>`` for the module) -> line of its
    docstring literal, for the classes and functions of a source file."""
    found: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in getattr(node, "body", []):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                qualname = prefix + child.name
                if ast.get_docstring(child, clean=False) is not None:
                    found[qualname] = child.body[0].lineno
                visit(child, qualname + ("." if isinstance(child, ast.ClassDef)
                                         else ".<locals>."))
            elif isinstance(child, (ast.If, ast.Try, ast.With)):
                visit(child, prefix)

    tree = _parsed(path)[1]
    if ast.get_docstring(tree, clean=False) is not None:
        found["<module>"] = tree.body[0].lineno
    visit(tree, "")
    return found


_ATTR_COMMENT = re.compile(r"^\s*#: ?(.*)$")


@functools.lru_cache(maxsize=None)
def attr_docs(module_name: str) -> dict[tuple[str, str], tuple[str, int]]:
    """What Sphinx's source analyzer calls attribute docs, for one module:
    (namespace, name) -> (text, line of its first line), where the
    namespace is ``''`` for the module, a class's qualified name for its
    body and for ``self.<name>`` assignments in its ``__init__``; the text
    is the ``#:`` comment lines just above the assignment, or a ``#:``
    comment after it on its last line, or a string literal right after it."""
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    path = _source_file(module)
    if path is None or path.suffix != ".py":
        return {}
    lines, tree = _parsed(path)
    docs: dict[tuple[str, str], tuple[str, int]] = {}

    def names(stmt: ast.Assign | ast.AnnAssign, self_name: str | None) -> list[str]:
        found = []
        for target in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]):
            for t in (target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]):
                if isinstance(t, ast.Name):
                    found.append(t.id)
                elif (self_name and isinstance(t, ast.Attribute)
                      and isinstance(t.value, ast.Name) and t.value.id == self_name):
                    found.append(t.attr)
        return found

    def comment(stmt: ast.stmt) -> tuple[str, int] | None:
        last = lines[stmt.end_lineno - 1]  # type: ignore[operator]
        after = _ATTR_COMMENT.match(last[stmt.end_col_offset:])
        if after:
            return after.group(1), stmt.end_lineno  # type: ignore[return-value]
        i = stmt.lineno - 2
        while i >= 0 and _ATTR_COMMENT.match(lines[i]):
            i -= 1
        if i == stmt.lineno - 2:
            return None
        text = "\n".join(_ATTR_COMMENT.match(lines[j]).group(1)  # type: ignore[union-attr]
                         for j in range(i + 1, stmt.lineno - 1))
        return textwrap.dedent(text), i + 2

    def visit(body: list[ast.stmt], ns: str, self_name: str | None) -> None:
        for k, stmt in enumerate(body):
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                doc = comment(stmt)
                following = body[k + 1] if k + 1 < len(body) else None
                if (isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                        and isinstance(following.value.value, str)):
                    doc = inspect.cleandoc(following.value.value), following.lineno
                if doc is not None:
                    for name in names(stmt, self_name):
                        docs[(ns, name)] = doc
            elif isinstance(stmt, ast.ClassDef) and self_name is None:
                visit(stmt.body, ns + "." + stmt.name if ns else stmt.name, None)
            elif (isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and ns
                  and self_name is None and stmt.name == "__init__" and stmt.args.args):
                visit(stmt.body, ns, stmt.args.args[0].arg)
            elif isinstance(stmt, (ast.If, ast.Try, ast.With)):
                visit(stmt.body, ns, self_name)
                visit(getattr(stmt, "orelse", []), ns, self_name)

    visit(tree.body, "", None)
    return docs


@dataclasses.dataclass
class Docstring:
    """A docstring (or ``#:`` comment) Sphinx renders: where it is written
    (``file``: relative to the repository, or the compiled module's name;
    ``qualname``: its owner's qualified name, ``<module>`` for a module's
    docstring; ``line``: the line of its first line, 0 when there is no
    source), its text (cleaned as :func:`inspect.getdoc` does) and the
    names it is shown under (``page: dotted name``)."""

    file: str
    qualname: str
    line: int
    text: str
    shown: list[str]

    @property
    def owner(self) -> str:
        return "%s:%s" % (self.file, self.qualname)


_OBJECT_DOCS = frozenset({object.__init__.__doc__, object.__new__.__doc__})


def _underlying(value: Any) -> Any:
    """The function (or class, module) a member's docstring is written on."""
    if isinstance(value, (classmethod, staticmethod)):
        value = value.__func__
    if isinstance(value, property):
        value = value.fget
    if isinstance(value, functools.cached_property):
        value = value.func
    if inspect.ismethod(value):
        value = value.__func__
    return inspect.unwrap(value) if inspect.isfunction(value) else value


def _raw_doc(value: Any, cls: Any = None, name: str | None = None) -> str | None:
    """The raw docstring Sphinx finds for a value (``sphinx.util.inspect.
    getdoc`` with inherited docstrings): its own ``__doc__``, else the
    attribute of that name on the classes of ``cls``'s MRO, else
    :func:`inspect.getdoc`'s."""
    doc = getattr(value, "__doc__", None)
    if isinstance(doc, str):
        return doc
    if CONF["autodoc_inherit_docstrings"]:
        if cls is not None and name:
            for base in cls.__mro__:
                inherited = getattr(getattr(base, name, None), "__doc__", None)
                if isinstance(inherited, str):
                    return inherited
        return inspect.getdoc(value)
    return None


def _where(doc: str, value: Any, cls: Any = None, name: str | None = None) -> tuple[str, str, int]:
    """(file, qualname, line) of the object on which ``doc`` is written:
    the value itself, the member of that name on a class of ``cls``'s MRO,
    a base class (a class without a docstring shows its base's), or a
    class of the value's type's MRO (a data value shows its class's)."""
    if inspect.isclass(value):
        candidates = list(value.__mro__)
    elif (inspect.ismodule(value) or inspect.isroutine(value) or hasattr(value, "__objclass__")
          or isinstance(value, (property, functools.cached_property))):
        candidates = [value]
    else:
        candidates = ([value] if "__doc__" in getattr(value, "__dict__", {}) else [])
        candidates += list(type(value).__mro__)
    if cls is not None and name:
        candidates += [base.__dict__[name] for base in cls.__mro__ if name in base.__dict__]
    for candidate in candidates:
        target = _underlying(candidate)
        own = (target.__dict__.get("__doc__") if inspect.isclass(target)
               else getattr(target, "__doc__", None))
        if own == doc:
            return _location(target, doc)
    raise AssertionError("where is the docstring of %r written?" % (value,))


def _location(target: Any, doc: str) -> tuple[str, str, int]:
    if inspect.ismodule(target):
        module, qualname = target.__name__, "<module>"
    elif hasattr(target, "__objclass__"):  # a C method or attribute
        owner = target.__objclass__
        module, qualname = owner.__module__, "%s.%s" % (owner.__qualname__, target.__name__)
    else:
        module = (getattr(target, "__module__", None)
                  or getattr(getattr(target, "__self__", None), "__module__", ""))
        qualname = target.__qualname__
    path = _source_file(target) if not hasattr(target, "__objclass__") else None
    line = 0
    if path is not None and path.suffix == ".py":
        line = _docstring_lines(path).get(qualname, 0)
        if line:
            raw = doc.expandtabs().split("\n")
            line += next((i for i, text in enumerate(raw) if text.strip()), 0)
    return _file_label(path, module), qualname, line


class AutodocWalk:
    """The docstrings the autodoc directives of some pages render, found
    as Sphinx's autodoc finds them (members, ``__all__``, inherited and
    special members, attribute comments, conf.py's default options), read
    with :func:`inspect.getdoc` and ``#:`` comments; keyed by owner."""

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self.docstrings: dict[str, Docstring] = {}
        self.defaults = CONF["autodoc_default_options"] if defaults is None else defaults

    def add(self, shown: str, doc: str | None, where: tuple[str, str, int]) -> None:
        if not doc or doc in _OBJECT_DOCS:
            return
        text = inspect.cleandoc(doc)
        file, qualname, line = where
        found = self.docstrings.setdefault(
            "%s:%s" % (file, qualname), Docstring(file, qualname, line, text, []))
        assert found.text == text, "two docstrings of %s" % found.owner
        if shown not in found.shown:
            found.shown.append(shown)

    def page(self, page: str) -> None:
        for directive in autodoc_directives((ROOT / page).read_text(encoding="utf-8"), page):
            self.directive(directive)

    def directive(self, d: Directive) -> None:
        options = effective_options(d, self.defaults)
        shown = "%s: %s" % (d.page, d.name)
        obj = _import(d.name)
        if d.kind == "module":
            self.module(obj, options, shown)
        elif d.kind in ("class", "exception"):
            self.cls(obj, options, shown, all_members=False)
        elif d.kind in ("data", "attribute"):
            parent_name, _, name = d.name.rpartition(".")
            parent = _import(parent_name)
            namespace = "" if inspect.ismodule(parent) else parent.__qualname__
            module = parent.__name__ if inspect.ismodule(parent) else parent.__module__
            comment = attr_docs(module).get((namespace, name))
            if comment is not None:
                self._comment(shown, module, namespace, name, comment)
            else:
                doc = _raw_doc(obj)
                if doc:
                    self.add(shown, doc, _where(doc, obj))
        else:
            parent_name, _, name = d.name.rpartition(".")
            parent = _import(parent_name)
            self.member(obj, parent if inspect.isclass(parent) else None, name, shown)

    def _comment(self, shown: str, module: str, namespace: str, name: str,
                 comment: tuple[str, int]) -> None:
        module_obj = sys.modules[module]
        label = _file_label(_source_file(module_obj), module)
        self.add(shown, comment[0], (label, namespace + "." + name if namespace else name,
                                     comment[1]))

    def member(self, value: Any, cls: Any, name: str, shown: str) -> None:
        doc = _raw_doc(value, cls, name)
        if doc:
            self.add(shown, doc, _where(doc, value, cls, name))

    def module(self, module: Any, options: dict[str, Any], shown: str) -> None:
        doc = _raw_doc(module)
        if doc:
            self.add(shown, doc, _where(doc, module))
        members = _names(options, "members")
        if members is None:
            return
        want_all = members is ALL or "inherited-members" in options
        module_all = getattr(module, "__all__", None)
        ignore_all = "ignore-module-all" in options
        if want_all:
            wanted: Any = (frozenset(module_all) if module_all is not None and not ignore_all
                           else ALL)
        else:
            wanted = self._listed(members, options)
        check_module = (want_all and (ignore_all or module_all is None)
                        and "imported-members" not in options)
        docs = attr_docs(module.__name__)
        for name in dir(module):
            if name not in wanted:
                continue
            value = getattr(module, name, None)
            comment = docs.get(("", name))
            if not self._keep(name, value, comment, None, None, want_all, options):
                continue
            is_attr = comment is not None
            if check_module and not is_attr and getattr(value, "__module__", None) not in (
                    None, module.__name__):
                continue
            member_shown = "%s.%s" % (shown, name)
            if inspect.isclass(value):
                self.cls(value, options, member_shown, all_members=True)
            elif inspect.isroutine(value):
                self.member(value, None, name, member_shown)
            elif is_attr:
                self._comment(member_shown, module.__name__, "", name,
                              comment)  # type: ignore[arg-type]

    @staticmethod
    def _listed(members: Any, options: dict[str, Any]) -> frozenset[str]:
        wanted = set(members)
        for extra in ("private-members", "special-members"):
            names = _names(options, extra)
            if names is not None and names is not ALL:
                wanted |= names
        return frozenset(wanted)

    def cls(self, cls: Any, options: dict[str, Any], shown: str, all_members: bool) -> None:
        content = options.get("class-doc-from") or CONF["autoclass_content"]
        if content in ("class", "both"):
            doc = _raw_doc(cls)
            if doc:
                self.add(shown, doc, _where(doc, cls))
        if content in ("init", "both"):
            for special in ("__init__", "__new__"):
                self.member(getattr(cls, special), cls, special, shown + "." + special)
        members = _names(options, "members")
        inherited = options.get("inherited-members", False)
        want_all = all_members or "inherited-members" in options or members is ALL
        if not want_all and members is None:
            return
        wanted: Any = ALL if want_all else self._listed(members, options)
        found: dict[str, list[Any]] = {}  # name -> [value, class, attribute comment]
        for name in dir(cls):
            if name not in wanted:
                continue
            try:
                value = getattr(cls, name)
            except AttributeError:
                continue
            found[name] = [value, cls if name in cls.__dict__ else None, None]
        for base in cls.__mro__:
            for (ns, name), comment in attr_docs(base.__module__).items():
                if ns != base.__qualname__:
                    continue
                if name not in found:
                    if name in wanted:
                        found[name] = [_INSTANCE_ATTR, base, (base, comment)]
                elif found[name][2] is None and (base is cls or CONF["autodoc_inherit_docstrings"]):
                    found[name][2] = (base, comment)
        inherited_stop = (frozenset({"object"}) if inherited in (None, True)
                          else frozenset(_names(options, "inherited-members") or ()))
        own_docs = attr_docs(cls.__module__)
        for name, (value, member_cls, comment) in found.items():
            if want_all and "inherited-members" not in options and member_cls is not cls:
                continue
            has_attr_doc = (cls.__qualname__, name) in own_docs
            if not self._keep(name, value, comment[1] if comment else None, member_cls, cls,
                              want_all, options, inherited_stop, has_attr_doc):
                continue
            member_shown = "%s.%s" % (shown, name)
            if comment is not None:
                base = comment[0]
                self._comment(member_shown, base.__module__, base.__qualname__, name, comment[1])
            elif value is _INSTANCE_ATTR:
                continue
            elif inspect.isclass(value):
                self.cls(value, options, member_shown, all_members=True)
            else:
                self.member(value, cls, name, member_shown)

    @staticmethod
    def _keep(name: str, value: Any, comment: tuple[str, int] | None, member_cls: Any,
              parent: Any, want_all: bool, options: dict[str, Any],
              inherited_stop: frozenset[str] = frozenset(),
              has_attr_doc: bool | None = None) -> bool:
        """Sphinx's ``_should_keep_member``."""
        if has_attr_doc is None:
            has_attr_doc = comment is not None
        if comment is not None:
            doc: str | None = comment[0]
        else:
            doc = _raw_doc(value, parent, name)
            kind = getattr(value, "__class__", None)
            if kind is not None and getattr(kind, "__doc__", None) == doc:
                doc = None
        text = doc or ""
        metadata = set(re.findall(r"^:meta (\w+):", text, re.M))
        has_doc = bool(re.sub(r"^:meta \w+:.*$", "", text, flags=re.M).strip()) or (
            "undoc-members" in options)
        private = ("private" in metadata
                   or ("public" not in metadata and name.startswith("_")))
        excluded = _names(options, "exclude-members")
        if excluded is not None and excluded is not ALL and name in excluded:
            return False
        if not want_all:
            return has_doc or has_attr_doc
        filtered = _is_filtered_inherited(name, member_cls, parent, inherited_stop)
        if _SPECIAL.match(name):
            if name == "__doc__" or filtered:
                return False
            special = _names(options, "special-members")
            return bool(special) and name in special and has_doc
        if private:
            if has_attr_doc or has_doc:
                private_members = _names(options, "private-members")
                if private_members is None or (has_doc and filtered):
                    return False
                return name in private_members
            return False
        if has_attr_doc:
            return True
        if filtered:
            return False
        return has_doc


_INSTANCE_ATTR = object()  # an attribute known only from its comment


def _is_filtered_inherited(name: str, member_cls: Any, parent: Any,
                           inherited_stop: frozenset[str]) -> bool:
    """Sphinx's ``_is_filtered_inherited_member``: a member that comes
    from the class where ``:inherited-members:`` stops (``object``)."""
    if not inspect.isclass(parent):
        return False
    seen = set()
    for cls in parent.__mro__:
        if name in cls.__dict__:
            seen.add(cls)
        if (cls.__name__ in inherited_stop and cls is not parent
                and any(issubclass(child, cls) for child in seen)):
            return True
        if member_cls is cls or name in cls.__dict__ or name in getattr(
                cls, "__annotations__", {}):
            return False
    return False


def docstrings(pages: tuple[str, ...]) -> dict[str, Docstring]:
    """The docstrings the pages' autodoc directives render, on each core:
    a name the core gives (``pyredcache.Promise``) is walked as each core
    gives it, the C core when it is built and the pure-Python twin."""
    walk = AutodocWalk()
    saved = _compat.core
    try:
        for core in (c for c in (_compat.c_core, _compat.py_core) if c is not None):
            _compat.core = core
            for page in pages:
                walk.page(page)
    finally:
        _compat.core = saved
    return walk.docstrings


#: The pages with autodoc directives (the inventory pins which).
AUTODOC_PAGES = tuple(doc for doc in DOCS
                      if autodoc_directives((ROOT / doc).read_text(encoding="utf-8"), doc))

#: Problems found while reading the documents and docstrings (a ``::``
#: with no block, a directive that names nothing): reported by
#: :func:`test_documents_and_docstrings_are_read`, not at collection, so
#: that the other tests still run.
READ_ERRORS: list[str] = []


def all_blocks() -> tuple[dict[str, Block], dict[str, Docstring]]:
    """Every block of :data:`DOCS` and of the docstrings their autodoc
    directives render (a docstring's blocks: ``<file>:<owner>:<n>``)."""
    blocks: dict[str, Block] = {}
    sources = [((ROOT / doc).read_text(encoding="utf-8"), doc, None, 1) for doc in DOCS]
    try:
        owners = docstrings(AUTODOC_PAGES)
    except Exception as exc:  # noqa: BLE001  (reported by a test)
        READ_ERRORS.append("walking the autodoc directives: %r" % (exc,))
        owners = {}
    sources += [(d.text, d.file, d.qualname, d.line or 1) for d in owners.values()]
    for text, doc, owner, first_line in sources:
        try:
            found = rst_blocks(text, doc, owner, first_line)
        except ValueError as exc:
            READ_ERRORS.append("%s%s" % ("%s (%s): " % (owner, doc) if owner else "", exc))
            continue
        for block in found:
            assert block.id not in blocks, "two blocks named %s" % block.id
            blocks[block.id] = block
    return blocks, owners


BLOCKS, DOCSTRINGS = all_blocks()


def is_docstring(block: Block) -> bool:
    return block.doc not in DOCS


# -- what is not run ---------------------------------------------------------------------

_SHELL = "shell, not Python: "
_TEXT = "text, not code: "
_SHAPE = "the shape of a value, not code to run: "

#: Blocks that are not run, each with its reason.  Only shell commands,
#: text and shapes (a lone expression that calls nothing, showing what a
#: value looks like): test_not_run_blocks_are_not_python checks that no
#: other Python hides here.
NOT_RUN: dict[str, str] = {
    "README.rst:install:1": _SHELL + "installs pyredcache from a clone with pip (the suite "
                                     "runs on the copy built in place)",
    "README.rst:install:2": _SHELL + "installs the C core's build dependencies with apt-get",
    "README.rst:install:3": _SHELL + "a pip install that requires the C core",
    "README.rst:install:4": _SHELL + "a pip install of the pure-Python twin only",
    "README.rst:demo-and-tests:1": _SHELL + "make demo / make test install system packages and "
                                            "a virtual environment, and run the whole suite",
    "README.rst:demo-and-tests:2": _SHELL + "make bench runs the benchmarks (minutes, the bench "
                                            "extra)",
    "docs/quickstart.rst:install:1": _SHELL + "installs pyredcache from a clone with pip",
    # docstrings
    "pyredcache/region.py:<module>:1": _TEXT + "the two Redis keys of a region, as a table",
    "pyredcache/cache.py:BaseCache.health:1": _SHAPE + "what health() returns, with type "
                                                       "names for its values",
    "pyredcache/managers.py:CacheManager:1": _TEXT + "the order of a decorated call's hooks, "
                                                     "as pseudo-code",
}


# -- groups ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Group:
    """Blocks of one document that run in one namespace, in this order.

    ``reader``: block id -> code run just before that block, standing for
    names the document leaves to the reader's application; ``checks``:
    block id -> this test's own assertions, run just after that block.
    Both are rewritten and checked like the examples."""

    name: str
    blocks: tuple[str, ...]
    reader: dict[str, str] = dataclasses.field(default_factory=dict)
    checks: dict[str, str] = dataclasses.field(default_factory=dict)


def _ids(doc: str, *names: str) -> tuple[str, ...]:
    return tuple("%s:%s" % (doc, name) for name in names)


README = "README.rst"
QUICKSTART = "docs/quickstart.rst"

#: The check after a cache that signs Pickle: a value only Pickle encodes
#: round-trips, is stored signed, and a value that is not signed with the
#: key is a miss.
SIGNED_CHECK = '''
import fractions
value = {'ratio': fractions.Fraction(3, 7)}
assert cache.set('signed', value) and cache.get('signed') == value
stored = cache.client.execute_command('GET', 'signed')
assert stored[:1] == b'\\x01' and len(stored) > 33
assert cache.client.execute_command('SET', 'signed', stored[:1] + bytes(32) + stored[33:])
assert cache.get('signed') is None
'''

GROUPS: tuple[Group, ...] = (
    # README's "Quick start": one running example.  1 makes `cache` and
    # stores 'key'; 2 decorates load(); 3 reads 'key' back and invalidates
    # load(); 4 batches load(); 5 makes `cache` a CacheCluster, on which 6
    # decorates front_page() and 7 makes a RedisDict and a Redlock; 8 makes
    # regions over a Cache() of its own; 9 makes caches from URLs (the
    # first, with a password the private server does not require, is only
    # made: nothing connects before the first command; the check uses the
    # second).
    Group(
        "README-quick-start",
        _ids(README, *("quick-start:%d" % n for n in range(1, 10))),
        reader={
            "README.rst:quick-start:2": '''
# the reader's database query
def load_from_database(name, offset):
    return {'name': name, 'offset': offset}
''',
            "README.rst:quick-start:6": '''
# the reader's page renderer
def render_front_page():
    rendered.append(1)
    return '<html>front page</html>'
rendered = []
''',
            "README.rst:quick-start:7": '''
# the reader's printer
def print_document():
    printed.append(raj['hobby'])
printed = []
''',
        },
        checks={
            "README.rst:quick-start:2": '''
assert rv == {'name': 'name', 'offset': 10}
assert load('name', 10) == rv
''',
            "README.rst:quick-start:3": '''
assert cache.get('key') is None
''',
            "README.rst:quick-start:4": '''
assert results == [{'name': 'name', 'offset': i} for i in range(100)]
''',
            "README.rst:quick-start:6": '''
assert front_page() == front_page() == '<html>front page</html>'
assert rendered == [1]
''',
            "README.rst:quick-start:7": '''
assert printed == ['music']
assert RedisDict(redis=cache, key='raj')['hobby'] == 'music' and len(raj) == 1
''',
            "README.rst:quick-start:8": '''
assert '42' not in users and '7' not in regions.region('users.admins')
''',
            "README.rst:quick-start:9": '''
assert cache.set('k', 4) and cache.get('k') == 4
''',
        },
    ),
    Group(
        "README-private-redis",
        _ids(README, "a-private-redis-for-scripts-and-tests:1"),
        checks={
            "README.rst:a-private-redis-for-scripts-and-tests:1": '''
assert cache.client.address == server.unix_socket_path and server.closed
''',
        },
    ),
    # docs/quickstart.rst, from "Get and set" to "Latency: busy-polling":
    # one running example, section after section (the `cache` and the
    # 'key' of "Get and set", the load() of "Caching function results",
    # the Cache import).
    Group(
        "quickstart",
        _ids(QUICKSTART, "get-and-set:1", "caching-function-results:1",
             "one-computation-per-miss:1", "locks-and-ids:1", "locks-and-ids:2",
             "several-keys-at-once-and-invalidation:1", "batch-fetch-with-promises:1",
             "several-servers-cachecluster:1", "timeouts-no-call-waits-for-ever:1",
             "when-redis-is-down-failing-open:1",
             "connecting-with-a-url:1", "latency-busy-polling:1"),
        reader={
            "docs/quickstart.rst:caching-function-results:1": '''
# the reader's database query
def load_from_database(name, offset):
    return {'name': name, 'offset': offset}
''',
            "docs/quickstart.rst:one-computation-per-miss:1": '''
# the reader's page renderer
def render_front_page():
    rendered.append(1)
    return '<html>front page</html>'
rendered = []
''',
            "docs/quickstart.rst:locks-and-ids:1": '''
# the reader's report
def build_report():
    reports.append(1)
reports = []
''',
            "docs/quickstart.rst:locks-and-ids:2": '''
# the reader's printer
def print_document(fencing_token):
    tokens.append(fencing_token)
tokens = []
''',
            "docs/quickstart.rst:batch-fetch-with-promises:1": '''
# the reader's posts, and the decorated function that loads one
post_ids = [3, 1, 2]
@cache.cache()
def load_post(post_id):
    return {'id': post_id}
''',
        },
        checks={
            "docs/quickstart.rst:caching-function-results:1": '''
assert rv == {'name': 'name', 'offset': 10}
''',
            "docs/quickstart.rst:one-computation-per-miss:1": '''
assert front_page() == front_page() == '<html>front page</html>'
assert rendered == [1]
''',
            "docs/quickstart.rst:locks-and-ids:1": '''
assert reports == [1]
''',
            "docs/quickstart.rst:locks-and-ids:2": '''
assert len(tokens) == 1 and isinstance(tokens[0], int)
assert next(user_ids) > 0
''',
            "docs/quickstart.rst:several-keys-at-once-and-invalidation:1": '''
assert cache.get_many('key', 'a', 'b') == [None, None, None]
''',
            "docs/quickstart.rst:batch-fetch-with-promises:1": '''
assert posts == [{'id': 3}, {'id': 1}, {'id': 2}]
''',
            "docs/quickstart.rst:several-servers-cachecluster:1": '''
assert cache.set('k', 1) and cache.get('k') == 1
''',
            "docs/quickstart.rst:timeouts-no-call-waits-for-ever:1": '''
assert cache.set('k', 2) and cache.get('k') == 2
''',
            # the page's comments describe a server that is down; here it is up
            "docs/quickstart.rst:when-redis-is-down-failing-open:1": '''
assert cache.ignore_errors is True
assert front_page() == '<html>front page</html>'
assert cache.get('key') == 1
''',
            "docs/quickstart.rst:connecting-with-a-url:1": '''
assert cache.set('k', 4) and cache.get('k') == 4
''',
            "docs/quickstart.rst:latency-busy-polling:1": '''
assert cache.set('k', 3) and cache.get('k') == 3
assert client.ping() and client.connection_kwargs['busy_poll'] == 200
''',
        },
    ),
    Group(
        "quickstart-private-redis",
        _ids(QUICKSTART, "a-private-redis-server:1"),
        checks={
            "docs/quickstart.rst:a-private-redis-server:1": '''
assert cache.client.address == server.unix_socket_path and server.closed
''',
        },
    ),
    # "Testing": a FakeRedisCache, then a test function for the pytest
    # plugin's `cache` fixture, which the check calls with a Cache on the
    # private server (the fixture's, flushed).
    Group(
        "quickstart-testing",
        _ids(QUICKSTART, "testing:1", "testing:2"),
        checks={
            "docs/quickstart.rst:testing:2": '''
from pyredcache import Cache
test_load_is_cached(Cache(namespace='plugin-test:'))
''',
        },
    ),
    # docs/api.rst: signing Pickle; SECRET_KEY is the reader's.
    Group(
        "api-signed-pickle",
        _ids("docs/api.rst", "values-from-a-redis-that-others-can-write-to:1"),
        reader={
            "docs/api.rst:values-from-a-redis-that-others-can-write-to:1": '''
# the reader's secret key
SECRET_KEY = b'a secret the readers of this cache share'
''',
        },
        checks={
            "docs/api.rst:values-from-a-redis-that-others-can-write-to:1": SIGNED_CHECK,
        },
    ),
    # docs/containers.rst: silencing InefficientAccessWarning (the
    # suite's filterwarnings = error would raise it otherwise).
    Group(
        "containers-silence-the-warning",
        _ids("docs/containers.rst", "round-trips-and-warnings:1"),
        checks={
            "docs/containers.rst:round-trips-and-warnings:1": '''
from pyredcache import Cache, RedisList
with warnings.catch_warnings(record=True) as caught:
    small = RedisList([1, 2], redis=Cache(), key='small-list')
    assert list(small) == [1, 2]
assert caught == []
''',
        },
    ),
    # -- docstrings that docs/api.rst renders, one group per docstring.  A
    # docstring's example may use the name it documents without importing
    # it (the reader is reading that name's page): the reader's code
    # imports it, as a user does, from pyredcache.
    Group(
        "docstring-BaseCache.batch_mode",
        ("pyredcache/cache.py:BaseCache.batch_mode:1",),
        reader={
            "pyredcache/cache.py:BaseCache.batch_mode:1": '''
# the reader's cache, post ids and decorated loader
from pyredcache import Cache
cache = Cache()
ids = [3, 1, 2]
@cache.cache()
def load_post(post_id):
    return {'id': post_id}
''',
        },
        checks={
            "pyredcache/cache.py:BaseCache.batch_mode:1": '''
assert posts == [{'id': 3}, {'id': 1}, {'id': 2}]
''',
        },
    ),
    Group(
        "docstring-BaseCache.cache",
        ("pyredcache/cache.py:BaseCache.cache:1",),
        reader={
            "pyredcache/cache.py:BaseCache.cache:1": '''
# the reader's cache and database query
from pyredcache import Cache
cache = Cache()
queries = []
def load_from_database(name, offset):
    queries.append((name, offset))
    return {'name': name, 'offset': offset}
''',
        },
        checks={
            "pyredcache/cache.py:BaseCache.cache:1": '''
assert load('name', 10) == load('name', offset=10) == {'name': 'name', 'offset': 10}
assert queries == [('name', 10)]
''',
        },
    ),
    Group(
        "docstring-CacheCluster",
        ("pyredcache/cache.py:CacheCluster:1",),
        reader={
            "pyredcache/cache.py:CacheCluster:1": '''
from pyredcache import CacheCluster
''',
        },
        checks={
            "pyredcache/cache.py:CacheCluster:1": '''
keys = ['k%d' % i for i in range(30)]
for i, k in enumerate(keys):
    assert cache.set(k, i)
assert cache.get_many(*keys) == list(range(30))
clients = cache.get_client().clients
assert sorted(clients) == ['cache01', 'cache02', 'cache03']
assert all(clients[name].execute_command('DBSIZE') > 0 for name in clients)
''',
        },
    ),
    Group(
        "docstring-Promise",
        ("pyredcache/_pure/promise.py:Promise:1",),
        reader={
            "pyredcache/_pure/promise.py:Promise:1": '''
from pyredcache import Promise  # the core's in use
''',
        },
        checks={
            "pyredcache/_pure/promise.py:Promise:1": '''
from pyredcache import _compat
assert type(p) is _compat.core.Promise
''',
        },
    ),
    # pyredcache.region's module docstring: region_cache's own set-up
    # (host=, port=), rewritten to the private server.
    # docs/flask.rst's one literal block (its doctests run in test_flask.py)
    Group(
        "flask-import",
        ("docs/flask.rst:flask:1",),
        checks={
            "docs/flask.rst:flask:1": '''
import pyredcache.flask
assert Cache is pyredcache.flask.Cache and callable(Cache.memoize)
''',
        },
    ),
    # pyredcache.managers' module docstring: redcache's two lines.
    Group(
        "docstring-managers-module",
        ("pyredcache/managers.py:<module>:1",),
        reader={
            "pyredcache/managers.py:<module>:1": '''
# the reader's data source
def load_the_data():
    loads.append(1)
    return {'data': 1}
loads = []
''',
        },
        checks={
            "pyredcache/managers.py:<module>:1": '''
assert load_something_from_somewhere() == load_something_from_somewhere() == {'data': 1}
assert loads == [1]
import pyredcache.managers
pyredcache.managers._default = None  # the process-wide connection, set back
''',
        },
    ),
    Group(
        "docstring-region-module",
        ("pyredcache/region.py:<module>:2",),
        reader={
            "pyredcache/region.py:<module>:2": '''
from pyredcache import RegionCache
''',
        },
        checks={
            "pyredcache/region.py:<module>:2": '''
assert '42' not in users and '7' not in regions.region('users.admins')
users['43'] = {'name': 'Edsger'}
assert regions.region('users')['43'] == {'name': 'Edsger'}
''',
        },
    ),
    Group(
        "docstring-CacheRegion",
        ("pyredcache/region.py:CacheRegion:1",),
        reader={
            "pyredcache/region.py:CacheRegion:1": '''
from pyredcache import Cache, CacheRegion, cache_region
''',
        },
        checks={
            "pyredcache/region.py:CacheRegion:1": '''
assert CacheRegion.regions['short_term']['expires'] == 3600
assert slow_function('bunny') is None and slow_function('bunny') is None
stats = CacheRegion.registry.cache.stats()['short_term']
assert list(stats.values()) == [{'hits': 1, 'misses': 1}], stats
''',
        },
    ),
    Group(
        "docstring-cache_region",
        ("pyredcache/region.py:cache_region:1",),
        reader={
            "pyredcache/region.py:cache_region:1": '''
from pyredcache import cache_region
''',
        },
        checks={
            "pyredcache/region.py:cache_region:1": '''
from pyredcache import Cache, CacheRegion
CacheRegion.configure(cache=Cache())
CacheRegion.add_region('short_term', expires=60)
assert local_search('carrot') is None and local_search('carrot') is None
stats = Cache().stats()['short_term']
assert [name for name in stats if name.endswith('local_search small_engine')], stats
''',
        },
    ),
    Group(
        "docstring-Lock",
        ("pyredcache/lock.py:Lock:1",),
        reader={
            "pyredcache/lock.py:Lock:1": '''
from pyredcache import Lock
''',
        },
        checks={
            "pyredcache/lock.py:Lock:1": '''
assert lock.client.execute_command('EXISTS', 'a_key') == 0  # released
''',
        },
    ),
    Group(
        "docstring-FakeRedisCache",
        ("pyredcache/testing.py:FakeRedisCache:1",),
        checks={
            "pyredcache/testing.py:FakeRedisCache:1": '''
assert cache.redis.exists('key') == 1
''',
        },
    ),
    Group(
        "docstring-SignedSerializer",
        ("pyredcache/serializers.py:SignedSerializer:1",),
        reader={
            "pyredcache/serializers.py:SignedSerializer:1": '''
# the reader's imports and secret key
from pyredcache import Cache, PickleSerializer, SignedSerializer
key = b'a secret the readers of this cache share'
''',
        },
        checks={
            "pyredcache/serializers.py:SignedSerializer:1": SIGNED_CHECK,
        },
    ),
    Group(
        "docstring-server-module",
        ("pyredcache/server.py:<module>:1",),
        checks={
            "pyredcache/server.py:<module>:1": '''
assert cache.client.address == server.unix_socket_path and server.closed
''',
        },
    ),
)

GROUP_OF: dict[str, Group] = {b: g for g in GROUPS for b in g.blocks}


# -- rewriting ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Servers:
    """The private servers the examples are pointed at."""

    main: Server
    shards: tuple[Server, ...]
    masters: tuple[Server, ...]

    @property
    def all(self) -> tuple[Server, ...]:
        return (self.main, *self.shards, *self.masters)

    def for_host(self, host: str | None) -> Server:
        """The private server standing for a host a document names."""
        if host in (None, "", "localhost", "127.0.0.1", "redis-host"):
            return self.main
        m = re.fullmatch(r"m([1-9])", host)
        if m and int(m.group(1)) <= len(self.masters):
            return self.masters[int(m.group(1)) - 1]
        raise NotImplementedError("a document names the host %r: say which private "
                                  "server stands for it (Servers.for_host)" % host)


_URL = re.compile(r"^(redis|rediss|unix)://")
_CLIENTS = {"Cache", "Client"}  # take host, port (positions 0, 1) and unix_socket_path
_MASTERS = {"Redlock", "NextId", "NextID", "synchronize"}


class Rewrite(ast.NodeTransformer):
    """Addresses -> private servers (see the module docstring).  ``named``
    collects the (host, port) of each address replaced."""

    def __init__(self, servers: Servers) -> None:
        self.s = servers
        self.changed = False
        self.named: list[tuple[str | None, int | None]] = []

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        if isinstance(node.value, str) and _URL.match(node.value):
            self.changed = True
            return ast.copy_location(ast.Constant(self.url(node.value)), node)
        return node

    def url(self, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "unix":
            self.named.append((parts.path, None))
            return "unix://" + self.s.main.unix + ("?" + parts.query if parts.query else "")
        self.named.append((parts.hostname, parts.port or 6379))
        server = self.s.for_host(parts.hostname)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = "%s:%d" % (server.host, server.port)
        return urllib.parse.urlunsplit(
            parts._replace(netloc=userinfo + "@" + netloc if userinfo else netloc))

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        name = call_name(node)
        if name in _CLIENTS and find_keyword(node, "redis") is None:
            self._host_port(node)
        elif name == "CacheCluster":
            self._cluster(node)
        elif name == "RegionCache":
            self._region_cache(node)
        return node

    def _set(self, node: ast.Call, position: int, name: str, value: Any, default: Any) -> Any:
        """Set argument ``name`` (or position) to value; the value it
        replaced, ``default`` when it was not given."""
        if len(node.args) > position:
            old = node.args[position]
            node.args[position] = ast.Constant(value)
        elif find_keyword(node, name) is not None:
            old = find_keyword(node, name).value  # type: ignore[union-attr]
            find_keyword(node, name).value = ast.Constant(value)  # type: ignore[union-attr]
        else:
            old = ast.Constant(default)
            node.keywords.append(ast.keyword(name, ast.Constant(value)))
        self.changed = True
        return old.value if isinstance(old, ast.Constant) else None

    def _host_port(self, node: ast.Call) -> None:
        host = self._set(node, 0, "host", self.s.main.host, "localhost")
        port = self._set(node, 1, "port", self.s.main.port, 6379)
        self.named.append((host, port))
        set_unix_socket(node, self.s.main.unix)

    def _region_cache(self, node: ast.Call) -> None:
        """region_cache's ``host``/``port`` (positions 2, 3) and its read
        replica's ``rr_host``/``rr_port`` (10, 11), when the call names
        them; a RegionCache given none is left as it is (and refused)."""
        if find_keyword(node, "cache") is not None or find_keyword(node, "redis") is not None:
            return
        for host_at, host, port_at, port in ((2, "host", 3, "port"),
                                             (10, "rr_host", 11, "rr_port")):
            if len(node.args) > host_at or find_keyword(node, host) is not None or (
                    len(node.args) > port_at or find_keyword(node, port) is not None):
                old_host = self._set(node, host_at, host, self.s.main.host, "localhost")
                old_port = self._set(node, port_at, port, self.s.main.port, 6379)
                self.named.append((old_host, old_port))

    def _cluster(self, node: ast.Call) -> None:
        for config, shard in zip(cluster_hosts(node, len(self.s.shards)), self.s.shards):
            if dict_index(config, "unix_socket_path") is not None:
                set_items(config, {"unix_socket_path": shard.unix})
            else:
                old = {k: config.values[i].value for k in ("host", "port")  # type: ignore[attr-defined]
                       if (i := dict_index(config, k)) is not None}
                self.named.append((old.get("host", "localhost"), old.get("port", 6379)))
                set_items(config, {"host": shard.host, "port": shard.port})
        self.changed = True


def rewrite(source: str, servers: Servers) -> str:
    """source with its addresses rewritten; unchanged (comments kept) when
    there is none, or when it does not parse (the error is then the
    example's own)."""
    return _rewrite(source, servers)[0]


def _rewrite(source: str, servers: Servers) -> tuple[str, list]:
    r = Rewrite(servers)
    return apply_rewrite(source, r), r.named


_FOREIGN_TEXT = re.compile(r"localhost|redis-host|/run/redis|\b(%s)\b"
                           % "|".join(str(p) for p in sorted(FOREIGN_PORTS)))


def check_addresses(source: str, servers: Servers) -> None:
    """AssertionError unless every address in the code is a private
    server's: no foreign host, port or socket path in its text, every URL
    literal private, and every call that connects addressed explicitly.
    Written apart from :class:`Rewrite`, to catch what it would miss."""
    tree = checked_tree(source, _FOREIGN_TEXT)
    if tree is None:
        return  # runs nothing
    hosts = {s.host for s in servers.all}
    ports = {s.port for s in servers.all}
    paths = {s.unix for s in servers.all}

    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _URL.match(node.value):
                parts = urllib.parse.urlsplit(node.value)
                if parts.scheme == "unix":
                    assert parts.path in paths, "foreign URL %r in:\n%s" % (node.value, source)
                else:
                    assert parts.hostname in hosts and parts.port in ports, \
                        "foreign URL %r in:\n%s" % (node.value, source)
            elif node.value.endswith(".sock"):
                assert node.value in paths, "foreign socket %r in:\n%s" % (node.value, source)
        if not isinstance(node, ast.Call):
            continue
        name = call_name(node)
        where = "%s(...) in:\n%s" % (name, source)
        if name == "from_url":
            arg = node.args[0] if node.args else None
            # a literal (checked above) or an EmbeddedRedis's .url
            assert isinstance(arg, ast.Constant) or (
                isinstance(arg, ast.Attribute) and arg.attr == "url"), "unaddressed " + where
        elif name in _CLIENTS and find_keyword(node, "redis") is None:
            host, port = argument(node, 0, "host"), argument(node, 1, "port")
            assert constant_in(host, hosts) and constant_in(port, ports), "unaddressed " + where
        elif name == "CacheCluster":
            check_cluster_addressed(node, hosts, ports, paths, where)
        elif name in _MASTERS:
            assert find_keyword(node, "masters") is not None, "unaddressed " + where
        elif name in CONTAINERS:
            assert find_keyword(node, "redis") is not None, "unaddressed " + where
        elif name == "Lock":
            assert len(node.args) > 3 or find_keyword(node, "redis") is not None, \
                "unaddressed " + where
        elif name == "RegionCache":
            if find_keyword(node, "cache") is not None or find_keyword(node, "redis") is not None:
                continue
            host, port = argument(node, 2, "host"), argument(node, 3, "port")
            assert constant_in(host, hosts) and constant_in(port, ports), "unaddressed " + where
            if len(node.args) > 10 or find_keyword(node, "rr_host") is not None:
                rr_host, rr_port = argument(node, 10, "rr_host"), argument(node, 11, "rr_port")
                assert constant_in(rr_host, hosts) and constant_in(rr_port, ports), \
                    "unaddressed " + where


def foreign_connections(foreign: frozenset[int] | set[int] = FOREIGN_PORTS) -> list[int]:
    """Remote ports in ``foreign`` of this process's TCP sockets, from
    /proc (the C core's hiredis sockets are seen too)."""
    return connections_to(foreign)


# -- running -------------------------------------------------------------------------------


def _checked(label: str, code: str, servers: Servers) -> None:
    """check_addresses, its message saying where the code is written."""
    try:
        check_addresses(code, servers)
    except AssertionError as exc:
        raise AssertionError("%s: %s" % (label, str(exc).split("\nassert ")[0])) from None


def run_python(label: str, source: str, globs: dict, servers: Servers) -> None:
    """Rewrite, check and run source in globs; then no connection to a
    foreign port may be open."""
    code = rewrite(source, servers)
    _checked(label, code, servers)
    exec(compile_example(label, code), globs)
    ports = foreign_connections()
    assert not ports, "%s connected to port(s) %s" % (label, ports)


def run_doctest(label: str, source: str, globs: dict, servers: Servers) -> None:
    examples = doctest.DocTestParser().get_examples(source, label)
    for example in examples:
        example.source = rewrite(example.source, servers)
        _checked(label, example.source, servers)
    test = doctest.DocTest(examples, globs, label, None, 0, source)
    runner = doctest.DocTestRunner(verbose=False)
    report: list[str] = []
    runner.run(test, clear_globs=False, out=report.append)
    globs.update(test.globs)
    assert runner.failures == 0, "".join(report)
    ports = foreign_connections()
    assert not ports, "%s connected to port(s) %s" % (label, ports)


def run_block(block: Block, globs: dict, servers: Servers) -> None:
    label = "%s, line %d" % (block.id, block.line)
    if block.kind == "python":
        run_python(label, block.text, globs, servers)
    elif block.kind == "doctest":
        run_doctest(label, block.text, globs, servers)
    else:
        raise AssertionError("%s is %s, not code to run" % (block.where, block.kind))


def _servers(redis_server: Any, shards: Any, masters: Any) -> Servers:
    return Servers(Server.of(redis_server), tuple(Server.of(s) for s in shards),
                   tuple(Server.of(s) for s in masters))


@pytest.mark.parametrize("group", GROUPS, ids=[g.name for g in GROUPS])
def test_docs_example(group: Group, impl: Any, redis_server: Any, shards: Any, masters: Any,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    from pyredcache.region import default_registry

    servers = _servers(redis_server, shards, masters)
    redis_server.client().flushall()  # shards and masters: flushed by their fixtures
    monkeypatch.setenv("REDIS_URL", servers.main.url())
    # CacheRegion's class methods configure the module's default registry:
    # an example starts from a fresh one, and leaves it as it was
    monkeypatch.setattr(default_registry, "regions", {})
    monkeypatch.setattr(default_registry, "_cache", None)
    monkeypatch.setattr(default_registry, "statistics", True)
    monkeypatch.setattr(default_registry, "enabled", True)
    globs: dict = {"__name__": "docs_example"}
    for block_id in group.blocks:
        if block_id in group.reader:
            run_python("reader's code before %s" % block_id, group.reader[block_id],
                       globs, servers)
        run_block(BLOCKS[block_id], globs, servers)
        if block_id in group.checks:
            run_python("check after %s" % block_id, group.checks[block_id], globs, servers)


# -- the inventory -------------------------------------------------------------------------

#: Blocks per docstring owner (``<file>:<qualname>``), for the docstrings
#: that have any.
DOCSTRING_BLOCKS = {
    "pyredcache/_pure/promise.py:Promise": 1,
    "pyredcache/cache.py:BaseCache.batch_mode": 1,
    "pyredcache/cache.py:BaseCache.cache": 1,
    "pyredcache/cache.py:BaseCache.health": 1,
    "pyredcache/cache.py:CacheCluster": 1,
    "pyredcache/lock.py:Lock": 1,
    "pyredcache/managers.py:<module>": 1,
    "pyredcache/managers.py:CacheManager": 1,
    "pyredcache/region.py:<module>": 2,
    "pyredcache/region.py:CacheRegion": 1,
    "pyredcache/region.py:cache_region": 1,
    "pyredcache/serializers.py:SignedSerializer": 1,
    "pyredcache/server.py:<module>": 1,
    "pyredcache/testing.py:FakeRedisCache": 1,
}


def run_elsewhere(block: Block) -> bool:
    """A doctest block of a page another test runs as a whole."""
    return block.doc in RUN_ELSEWHERE and block.kind == "doctest"


def _check_run_elsewhere(doc: str, node: str) -> None:
    """The test that runs a page's doctests exists, runs that page with
    doctest.testfile, asserts that nothing failed, and is not skipped or
    expected to fail: so that a page cannot silently stop being run."""
    path, _, name = node.partition("::")
    source = (ROOT / path).read_text(encoding="utf-8")
    tree = ast.parse(source)
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    assert len(functions) == 1, "%s is gone: nothing runs the doctests of %s" % (node, doc)
    function = functions[0]
    assert name.startswith("test_"), node
    body = ast.get_source_segment(source, function) or ""
    assert re.search(r"\bdoctest\.testfile\(", body), "%s does not run doctest.testfile" % node
    assert re.search(r"assert result\.failed == 0", body), "%s asserts no failure" % node
    assert any(isinstance(c, ast.Constant) and c.value == Path(doc).name
               for c in ast.walk(tree)), "%s does not name %s" % (path, Path(doc).name)
    for decorator in function.decorator_list:
        text = ast.get_source_segment(source, decorator) or ""
        assert not re.search(r"\b(skip|skipif|xfail)\b", text), "%s is marked %s" % (node, text)


def test_every_block_is_run_or_listed() -> None:
    grouped = [b for g in GROUPS for b in g.blocks]
    elsewhere = {b for b, block in BLOCKS.items() if run_elsewhere(block)}
    assert len(grouped) == len(set(grouped)), "a block is in two groups"
    assert set(grouped).isdisjoint(NOT_RUN), "a block is both run and listed as not run"
    assert elsewhere.isdisjoint(set(grouped) | set(NOT_RUN)), \
        "a block another test runs is run or listed here too"
    assert set(grouped) | set(NOT_RUN) | elsewhere == set(BLOCKS), (
        "blocks neither run nor listed in NOT_RUN (classify them): %s; "
        "listed but not found: %s"
        % (["%s %s%s" % (BLOCKS[b].where, BLOCKS[b].kind,
                         " (shown as %s)" % "; ".join(
                             DOCSTRINGS["%s:%s" % (BLOCKS[b].doc, BLOCKS[b].section)].shown)
                         if is_docstring(BLOCKS[b]) else "")
            for b in sorted(set(BLOCKS) - set(grouped) - set(NOT_RUN) - elsewhere)],
           sorted((set(grouped) | set(NOT_RUN)) - set(BLOCKS))))
    # the inventory, so that a change to the extraction shows
    count = {doc: len([b for b in BLOCKS.values() if b.doc == doc]) for doc in DOCS}
    assert count == {
        "README.rst": 16,
        "docs/quickstart.rst": 16,
        "docs/index.rst": 0,
        "docs/format.rst": 0,
        "docs/development.rst": 0,
        "docs/migrating.rst": 0,
        "docs/api.rst": 1,
        "docs/regions.rst": 12,
        "docs/flask.rst": 20,
        "docs/containers.rst": 14,
    }
    assert len(elsewhere) == 12 + 19 + 13  # regions.rst, flask.rst, containers.rst
    # the docstrings: which pages render some, and the blocks of each
    assert AUTODOC_PAGES == ("docs/api.rst", "docs/containers.rst")
    per_owner: dict[str, int] = {}
    for block in BLOCKS.values():
        if is_docstring(block):
            owner = "%s:%s" % (block.doc, block.section)
            per_owner[owner] = per_owner.get(owner, 0) + 1
    assert per_owner == DOCSTRING_BLOCKS
    # the tests that run the doctest pages
    assert {BLOCKS[b].doc for b in elsewhere} == set(RUN_ELSEWHERE), \
        "a page said to be run elsewhere has no doctest block"
    for doc, node in RUN_ELSEWHERE.items():
        _check_run_elsewhere(doc, node)
    for g in GROUPS:
        sources = {(BLOCKS[b].doc, BLOCKS[b].section if is_docstring(BLOCKS[b]) else "")
                   for b in g.blocks}
        assert len(sources) == 1, "%s: blocks of several documents or docstrings" % g.name
        lines = [BLOCKS[b].line for b in g.blocks]
        assert lines == sorted(lines), "%s: not in document order" % g.name
        assert set(g.reader) <= set(g.blocks) and set(g.checks) <= set(g.blocks), g.name


def test_documents_and_docstrings_are_read() -> None:
    """Every document and every docstring was read without an error (a
    ``::`` with no block after it, an autodoc directive naming nothing)."""
    assert READ_ERRORS == []


def _is_shape(text: str) -> bool:
    """A lone expression that calls nothing: a value's shape."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return False
    return (len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr)
            and not any(isinstance(n, (ast.Call, ast.NamedExpr, ast.Lambda))
                        for n in ast.walk(tree)))


def test_not_run_blocks_are_not_python() -> None:
    for block_id, reason in NOT_RUN.items():
        block = BLOCKS[block_id]
        if reason.startswith(_SHAPE):
            assert block.kind == "python" and _is_shape(block.text), block.where
            continue
        assert block.kind in ("shell", "text"), (block.where, block.kind)
        assert reason.startswith(_SHELL if block.kind == "shell" else _TEXT), block.where
    for block_id in GROUP_OF:
        assert BLOCKS[block_id].kind in ("python", "doctest"), BLOCKS[block_id].where
    assert _is_shape('{"a": bool, "b": {name: {...} or None}}\n')
    assert not _is_shape("cache = Cache()\n") and not _is_shape("Cache()\n")


def test_extraction_and_classification() -> None:
    """The extractor on a small document: expanded and minimal ``::``
    forms, a code-block directive, a doctest block, a directive that is
    not a block, section ranks."""
    text = textwrap.dedent('''\
        Title
        =====

        .. toctree::
           :maxdepth: 2

           quickstart

        Some code::

            x = 1
                y = 2  # not valid Python: text

        ::

            pip install .

        Other
        -----

        .. code-block:: toml

           [tool.pytest.ini_options]
           addopts = "-q"

        >>> 1 + 1
        2

        Text ::

            PYREDCACHE_NO_EXTENSIONS=1 python -m pytest
            make test
        ''')
    blocks = rst_blocks(text, "t.rst")
    assert [(b.id, b.line, b.kind) for b in blocks] == [
        ("t.rst:title:1", 11, "text"),
        ("t.rst:title:2", 16, "shell"),
        ("t.rst:other:1", 23, "text"),
        ("t.rst:other:2", 26, "doctest"),
        ("t.rst:other:3", 31, "shell"),
    ]
    assert blocks[0].text == "x = 1\n    y = 2  # not valid Python: text\n"
    assert classify("from pyredcache import Cache\ncache = Cache()\n") == "python"
    assert classify("make\n") == "shell"
    with pytest.raises(ValueError, match="no literal block"):
        rst_blocks("A paragraph::\n\nnot indented\n", "t.rst")


def test_a_doctest_block_runs_in_the_namespace(fake_servers: Servers) -> None:
    """No block run here is a doctest block today (the doctest pages run
    elsewhere); one added later runs through doctest, in its group's
    namespace, and fails on a mismatch."""
    globs = {"x": 20}
    ok = Block("t.rst", "t", 1, 1, 2, "doctest", ">>> y = x + 1\n>>> y * 2\n42\n")
    run_block(ok, globs, fake_servers)
    assert globs["y"] == 21
    wrong = Block("t.rst", "t", 2, 4, 5, "doctest", ">>> y\n22\n")
    with pytest.raises(AssertionError, match="Expected"):
        run_block(wrong, globs, fake_servers)


#: A module for :func:`test_autodoc_walk_finds_what_sphinx_renders`.
WALK_SAMPLE = '''\
"""The sample module.

::

    sample_code = 1
"""

__all__ = ["Base", "Child", "function", "CONSTANT"]

#: A constant, documented by a comment (Sphinx cleans it as a
#: docstring: a one-line paragraph would lose the block's indent)::
#:
#:     CONSTANT == 3
CONSTANT = 3

UNDOCUMENTED = 4


def function():
    """A function.

    >>> 1 + 1
    2
    """


def not_in_all():
    """Not in __all__: not shown by automodule."""


class Base:
    """The base."""

    def inherited(self):
        """Shown on Child only with :inherited-members:."""

    def overridden(self):
        """The base's docstring, which an override without one shows."""


class Child(Base):

    #: A class attribute's comment.
    LIMIT = 10

    def __init__(self):
        #: An instance attribute's comment.
        self.size = 0

    def overridden(self):
        pass

    def documented(self):
        """Documented."""

    def undocumented(self):
        pass

    def _private(self):
        """Private: not shown."""

    def __len__(self):
        """A special member: shown only when named."""
        return 0
'''


def test_autodoc_walk_finds_what_sphinx_renders(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk on a small module: ``__all__``, a ``#:`` comment on a
    constant, a class attribute and an instance attribute, an inherited
    docstring (a class without one, an override without one: written on
    the base), private, undocumented and special members, inherited
    members, ``:no-members:``; and with no default options, a directive's
    own member list."""
    (tmp_path / "docwalk_sample.py").write_text(WALK_SAMPLE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "docwalk_sample", raising=False)
    page = textwrap.dedent("""\
        .. automodule:: docwalk_sample
           :members:

        .. autoclass:: docwalk_sample.Child
           :members: documented
           :inherited-members:
           :special-members: __len__

        .. autoclass:: docwalk_sample.Base
           :no-members:
        """)
    walk = AutodocWalk({"members": True, "show-inheritance": True})
    for directive in autodoc_directives(page, "sample.rst"):
        walk.directive(directive)
    found = {d.qualname: d for d in walk.docstrings.values()}
    assert set(found) == {"<module>", "CONSTANT", "function", "Base", "Base.inherited",
                          "Base.overridden", "Child.LIMIT", "Child.size", "Child.documented",
                          "Child.__len__"}
    assert found["Base"].shown == ["sample.rst: docwalk_sample.Base",
                                   "sample.rst: docwalk_sample.Child"]
    assert found["Base.overridden"].shown == ["sample.rst: docwalk_sample.Base.overridden",
                                              "sample.rst: docwalk_sample.Child.overridden"]
    assert found["Base.inherited"].shown == ["sample.rst: docwalk_sample.Base.inherited",
                                             "sample.rst: docwalk_sample.Child.inherited"]
    assert found["Child.size"].text == "An instance attribute's comment."
    # lines in the source file, and the blocks found there
    lines = WALK_SAMPLE.split("\n")
    assert lines[found["function"].line - 1].strip() == '"""A function.'
    assert lines[found["CONSTANT"].line - 1].startswith("#: A constant, documented by")
    blocks = [b for d in found.values() for b in rst_blocks(d.text, "f", d.qualname, d.line)]
    assert [(b.id, lines[b.line - 1].strip(), b.kind) for b in blocks] == [
        ("f:<module>:1", "sample_code = 1", "python"),
        ("f:CONSTANT:1", "#:     CONSTANT == 3", "python"),
        ("f:function:1", ">>> 1 + 1", "doctest"),
    ]
    # no default options: the directive's own list is what is shown
    walk = AutodocWalk({})
    walk.directive(Directive("sample.rst", 1, "class", "docwalk_sample.Child",
                             (("members", "documented"),)))
    assert {d.qualname for d in walk.docstrings.values()} == {"Base", "Child.documented"}


def test_default_options_apply_as_sphinx_applies_them() -> None:
    """conf.py's ``autodoc_default_options`` {"members": True} replaces a
    directive's ``:members: a, b`` (Sphinx's process_documenter_options):
    every member is shown; ``:no-members:`` removes it; a str default is
    kept only when the directive gives none, or extended by ``+``."""
    listed, = autodoc_directives(".. autoclass:: x.Y\n   :members: a, b\n", "t.rst")
    assert _names(effective_options(listed, {"members": True}), "members") is ALL
    assert _names(effective_options(listed, {}), "members") == {"a", "b"}
    assert _names(effective_options(listed, {"members": "c"}), "members") == {"a", "b"}
    plus, = autodoc_directives(".. autoclass:: x.Y\n   :members: +a\n", "t.rst")
    assert _names(effective_options(plus, {"members": "c"}), "members") == {"a", "c"}
    assert _names(effective_options(plus, {}), "members") == {"a"}
    none, = autodoc_directives(".. automodule:: x\n   :no-members:\n", "t.rst")
    assert _names(effective_options(none, {"members": True}), "members") is None
    function, = autodoc_directives(".. autofunction:: x.f\n", "t.rst")
    assert effective_options(function, {"members": True}) == {}
    assert CONF["autodoc_default_options"].get("members") is True  # docs/conf.py's, today


# Lines that look like code or a command: each must be inside a block.
_CODE_LINE = re.compile(
    r"^\s*(from \w[\w.]* import |import \w|@\w|def \w|class \w+(\(.*\))?:$|assert |\$ |"
    r">>> |[A-Za-z_][\w.]*(\[.*\])? = \S|with [\w.]+\(.*\)( as \w+)?:$|(pip|make|sudo|apt-get) \w)")


def test_no_code_line_is_outside_a_block() -> None:
    texts = [(doc, "", 1, (ROOT / doc).read_text(encoding="utf-8")) for doc in DOCS]
    texts += [(d.file, d.qualname, d.line or 1, d.text) for d in DOCSTRINGS.values()]
    for doc, owner, first_line, text in texts:
        inside = {line for b in BLOCKS.values()
                  if b.doc == doc and (not owner or b.section == owner)
                  for line in range(b.line, b.end + 1)}
        missed = [(first_line + i, line) for i, line in enumerate(text.split("\n"))
                  if first_line + i not in inside and _CODE_LINE.match(line)]
        assert missed == [], (doc, owner)


# -- the guards themselves -----------------------------------------------------------------


@pytest.fixture
def fake_servers() -> Servers:
    return Servers(Server("127.0.0.1", 40000, "/tmp/t/main.sock"),
                   tuple(Server("127.0.0.1", 40001 + i, "/tmp/t/s%d.sock" % i)
                         for i in range(4)),
                   tuple(Server("127.0.0.1", 40011 + i, "/tmp/t/m%d.sock" % i)
                         for i in range(5)))


@pytest.mark.parametrize("source", [
    "cache = Cache()\n",
    "cache = Cache('redis-host', socket_timeout=0.25)\n",
    "client = pyredcache.Client('redis-host', busy_poll=200)\n",
    "cache = Cache(redis_options={'busy_poll': 0})\n",
    "cache = Cache.from_url('redis://:password@redis-host:6379/0')\n",
    "cache = Cache.from_url('unix:///run/redis/redis.sock?db=0')\n",
    "masters = ['redis://m1:6379', 'redis://m2:6379']\n",
    "cache = CacheCluster({'a': {'host': 'redis-host01'}, 'b': {'host': 'h', 'port': 6380},"
    " 'c': {'unix_socket_path': '/run/redis/redis.sock', 'db': 1}})\n",
    "regions = RegionCache(host='localhost', port=6379)\n",
    "regions = RegionCache('root', None, 'redis-host')\n",
    "regions = RegionCache(port=6379, rr_host='replica', rr_port=6380)\n",
])
def test_unrewritten_addresses_are_refused_and_rewritten_ones_pass(
        source: str, fake_servers: Servers) -> None:
    with pytest.raises(AssertionError):
        check_addresses(source, fake_servers)
    check_addresses(rewrite(source, fake_servers), fake_servers)


@pytest.mark.parametrize("source", [
    "lock = Redlock(key='printer')\n",
    "ids = NextId(key='user-ids')\n",
    "d = RedisDict(key='raj')\n",
    "lock = Lock('nightly-report', expires=60)\n",
    "regions = RegionCache()\n",
    "cache = Cache.from_url(url)\n",
])
def test_calls_with_a_default_address_are_refused(source: str, fake_servers: Servers) -> None:
    """pyredcache's defaults are localhost:6379: the rewriting does not add
    addresses to these, so an example written this way must fail."""
    with pytest.raises(AssertionError, match="unaddressed"):
        check_addresses(rewrite(source, fake_servers), fake_servers)


def test_rewrite_changes_only_addresses(fake_servers: Servers) -> None:
    assert rewrite("from pyredcache import Cache\n# kept\n", fake_servers) == \
        "from pyredcache import Cache\n# kept\n"
    assert rewrite("cache = Cache()\n", fake_servers) == \
        "cache = Cache(host='127.0.0.1', port=40000)\n"
    assert rewrite("c = Cache('redis-host', socket_timeout=0.25, socket_connect_timeout=0.5)\n",
                   fake_servers) == \
        "c = Cache('127.0.0.1', socket_timeout=0.25, socket_connect_timeout=0.5, port=40000)\n"
    assert rewrite("c = Cache.from_url('redis://:password@redis-host:6379/0')\n",
                   fake_servers) == \
        "c = Cache.from_url('redis://:password@127.0.0.1:40000/0')\n"
    assert rewrite("c = Cache.from_url('redis://redis-host/0?busy_poll=0')\n",
                   fake_servers) == \
        "c = Cache.from_url('redis://127.0.0.1:40000/0?busy_poll=0')\n"
    assert rewrite("c = Cache.from_url('unix:///run/redis/redis.sock?db=0')\n",
                   fake_servers) == \
        "c = Cache.from_url('unix:///tmp/t/main.sock?db=0')\n"
    assert rewrite("m = ['redis://m1:6379', 'redis://m5:6379']\n", fake_servers) == \
        "m = ['redis://127.0.0.1:40011', 'redis://127.0.0.1:40015']\n"
    assert rewrite("c = CacheCluster({'a': {'host': 'x'}, 'b': {'unix_socket_path': "
                   "'/run/redis/redis.sock', 'db': 1}})\n", fake_servers) == \
        ("c = CacheCluster({'a': {'host': '127.0.0.1', 'port': 40001}, "
         "'b': {'unix_socket_path': '/tmp/t/s1.sock', 'db': 1}})\n")
    assert rewrite("r = RegionCache(host='localhost', port=6379)\n", fake_servers) == \
        "r = RegionCache(host='127.0.0.1', port=40000)\n"
    assert rewrite("r = RegionCache('app', None, 'redis-host', rr_host='replica')\n",
                   fake_servers) == \
        ("r = RegionCache('app', None, '127.0.0.1', rr_host='127.0.0.1', port=40000, "
         "rr_port=40000)\n")
    assert rewrite("r = RegionCache(cache=cache)\n", fake_servers) == \
        "r = RegionCache(cache=cache)\n"
    with pytest.raises(NotImplementedError, match="names the host 'elsewhere'"):
        rewrite("c = Cache.from_url('redis://elsewhere/0')\n", fake_servers)


def test_every_run_block_is_addressed_after_rewriting(fake_servers: Servers) -> None:
    """Every block that runs, and every reader's code and check, passes
    the address check once rewritten (all that do not are reported, by
    where they are written); the ports they named are the ones
    :data:`FOREIGN_PORTS` guards."""
    named_ports = set()
    unaddressed = []
    for g in GROUPS:
        sources = [("reader's code of %s" % g.name, code) for code in g.reader.values()]
        sources += [("check of %s" % g.name, code) for code in g.checks.values()]
        for block_id in g.blocks:
            block = BLOCKS[block_id]
            if block.kind == "doctest":
                sources += [(block.where, e.source)
                            for e in doctest.DocTestParser().get_examples(block.text)]
            else:
                sources.append((block.where, block.text))
        for where, source in sources:
            code, named = _rewrite(source, fake_servers)
            try:
                check_addresses(code, fake_servers)
            except AssertionError as exc:
                first = str(exc).split("\n")[0]
                unaddressed.append("%s: %s" % (where, re.sub(r" in:$", "", first)))
            named_ports |= {port for _, port in named if port is not None}
    assert unaddressed == []
    assert named_ports == FOREIGN_PORTS


def test_foreign_connections_sees_a_connection_to_a_foreign_port() -> None:
    """The runtime guard works: a socket connected to a port of the set is
    seen, and no longer once closed.  (6379 itself must not be touched: a
    free port stands in for it.)"""
    check_the_guard(foreign_connections)
