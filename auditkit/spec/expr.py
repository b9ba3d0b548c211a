"""Slice expressions (``data.slices``): a small language that never runs Python.

A spec often arrives in a pull request, so its strings must stay data. ``DataFrame.query`` and
``eval`` evaluate Python (a ``col.__class__.__init__.__globals__`` chain reaches ``os.system``), so
auditkit parses each expression with :mod:`ast`, checks every node against a whitelist, and walks
the tree itself over pandas Series. No string is ever handed to ``eval``, ``exec`` or ``query``.

Allowed (a subset of pandas' query syntax, so existing slices keep their meaning):

- column names, and ```backticked names``` for columns with spaces (always a column, never code);
- literals: numbers, strings, ``True``/``False``/``None``;
- comparisons ``== != < <= > >=``, chained (``18 <= age < 65``);
- ``and``/``or``/``not`` (also ``&``/``|``/``~``, with boolean precedence as in pandas);
- ``in`` / ``not in`` (and ``==``/``!=``) against a literal list or tuple;
- ``col.isna()``, ``col.notna()`` (``isnull``/``notnull``), or ``isna(col)``/``notna(col)``;
- arithmetic ``+ - * / // % **`` on numbers and numeric columns, unary ``-``/``+``; the exponent of
  ``**`` must be a number literal of magnitude at most 64 (``2**2**2**99`` is refused).

Everything else (attributes, calls, subscripts, lambdas, comprehensions, f-strings, ``@`` locals,
``:=``, ``if``-expressions, ...) is an :class:`ExpressionError`. This module imports pandas only when
an expression is evaluated, so validating a spec stays light.
"""

from __future__ import annotations

import ast
import difflib
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MAX_LENGTH = 2000  # characters: a slice is a short condition, not a program
MAX_DEPTH = 40  # nesting levels of the syntax tree
MAX_EXPONENT = 64
_PLACEHOLDER = "__ak_bt{}__"  # stands for a backticked column while the text is parsed
_NA_METHODS = {"isna": True, "isnull": True, "notna": False, "notnull": False}  # name -> "is missing"

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
    ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
}  # fmt: skip
_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}  # fmt: skip

# What a refused node is, in the user's words.
_REFUSED: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Call: "function calls",
    ast.Lambda: "lambdas", ast.JoinedStr: "f-strings", ast.FormattedValue: "f-strings",
    ast.ListComp: "comprehensions", ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions", ast.NamedExpr: "assignments (:=)", ast.IfExp: "if-expressions",
    ast.Dict: "dicts", ast.Starred: "starred expressions", ast.Await: "await", ast.Yield: "yield",
    ast.YieldFrom: "yield", ast.Slice: "slices", ast.List: "lists outside 'in [...]'",
    ast.Tuple: "tuples outside 'in (...)'", ast.Set: "sets outside 'in {...}'",
}  # fmt: skip


class ExpressionError(ValueError):
    """The expression uses something outside the slice language (message: what, and where)."""


class ColumnError(ValueError):
    """The expression names a column the data does not have (message with a did-you-mean)."""

    def __init__(self, column: str, source: str, suggestion: str | None) -> None:
        self.column, self.suggestion = column, suggestion
        self.hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        super().__init__(f"unknown column {column!r} in {_show(source)}{self.hint}")


@dataclass(frozen=True)
class Expression:
    """A parsed, whitelisted slice expression. ``columns``: the column names it reads."""

    source: str
    tree: ast.expr
    backticked: dict[str, str] = field(default_factory=dict)
    columns: tuple[str, ...] = ()

    def check_columns(self, available: Iterable[Any]) -> None:
        """Raise ColumnError for the first column the data lacks."""
        names = [str(c) for c in available]
        known = set(names)
        for col in self.columns:
            if col not in known:
                close = difflib.get_close_matches(col, names, n=1)
                raise ColumnError(col, self.source, close[0] if close else None)

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """The rows of ``frame`` where the expression holds, as a boolean array (missing = False)."""
        import numpy as np
        import pandas as pd

        self.check_columns(frame.columns)
        with np.errstate(all="ignore"):
            value = _Evaluator(frame, self.backticked).visit(self.tree)
        out = _as_condition(value, len(frame), self.source)
        return np.asarray(pd.Series(out).fillna(False).astype(bool).to_numpy(), dtype=bool)


def _show(source: str, limit: int = 80) -> str:
    """The expression quoted on one line (repr escapes newlines and invisible characters)."""
    return repr(source if len(source) <= limit else source[:limit] + "…")


def _refuse(what: str, source: str) -> ExpressionError:
    return ExpressionError(
        f"{what} in {_show(source)} (allowed: columns, literals, comparisons, and/or/not, "
        "in [...], isna()/notna(), arithmetic)"
    )


def _scan(source: str) -> tuple[str, dict[str, str]]:
    """Replace ```name``` by placeholders and ``&``/``|`` by ``and``/``or`` outside strings.

    ``&`` and ``|`` get boolean precedence, as pandas gives them (``a > 1 & b < 2`` means
    ``(a > 1) and (b < 2)``). ``@`` (pandas' local variables) is refused here.
    """
    out: list[str] = []
    plain: list[str] = []  # the text outside strings and backticks
    names: dict[str, str] = {}
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch in "'\"":
            j = i + 1
            while j < n and source[j] != ch:
                j += 2 if source[j] == "\\" else 1
            if j >= n:
                raise _refuse("an unterminated string", source)
            out.append(source[i : j + 1])
            i = j + 1
        elif ch == "`":
            j = source.find("`", i + 1)
            if j < 0 or j == i + 1:
                raise _refuse("an unterminated or empty `backticked` name", source)
            key = _PLACEHOLDER.format(len(names))
            names[key] = source[i + 1 : j]
            out.append(f" {key} ")
            i = j + 1
        elif ch == "@":
            raise _refuse("'@' local variables", source)
        else:
            out.append({"&": " and ", "|": " or "}.get(ch, ch))
            plain.append(ch)
            i += 1
    if "__ak_bt" in "".join(plain):  # only a backtick may produce a placeholder
        raise _refuse("a reserved name", source)
    return "".join(out), names


def parse(source: str) -> Expression:
    """Parse and whitelist a slice expression; ExpressionError says what is not allowed."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("an empty expression")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters ({len(source)})")
    text, backticked = _scan(source)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise _refuse(f"invalid syntax ({err.msg})", source) from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as err:
        raise _refuse(f"an expression Python cannot read ({type(err).__name__})", source) from None
    columns: list[str] = []
    _Validator(source, backticked, columns).check(tree.body, 0)
    return Expression(source, tree.body, backticked, tuple(dict.fromkeys(columns)))


class _Validator:
    """Walks the tree once, refusing every node outside the language (no evaluation)."""

    def __init__(self, source: str, backticked: dict[str, str], columns: list[str]) -> None:
        self.source, self.backticked, self.columns = source, backticked, columns

    def check(self, node: ast.AST, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _refuse(f"nesting deeper than {MAX_DEPTH} levels", self.source)
        d = depth + 1
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self.check(v, d)
        elif isinstance(node, ast.UnaryOp):
            self.check(node.operand, d)
        elif isinstance(node, ast.BinOp):
            self._binop(node, d)
        elif isinstance(node, ast.Compare):
            self._compare(node, d)
        elif isinstance(node, ast.Call):
            self._call(node)
        elif isinstance(node, ast.Name):
            self._name(node)
        elif isinstance(node, ast.Constant):
            self._literal(node)
        else:
            raise _refuse(_REFUSED.get(type(node), f"'{type(node).__name__}' nodes"), self.source)

    def _name(self, node: ast.Name) -> None:
        if node.id in self.backticked:
            self.columns.append(self.backticked[node.id])
        elif node.id.startswith("__"):
            raise _refuse(f"the dunder name {node.id!r}", self.source)
        elif node.id in _NA_METHODS:
            raise _refuse(
                f"{node.id!r} without a column (write {node.id}(col) or col.{node.id}())", self.source
            )
        else:
            self.columns.append(node.id)

    def _literal(self, node: ast.Constant) -> None:
        if not (node.value is None or isinstance(node.value, (bool, int, float, str))):
            raise _refuse(f"a {type(node.value).__name__} literal", self.source)

    def _binop(self, node: ast.BinOp, depth: int) -> None:
        if type(node.op) not in _ARITH:
            raise _refuse(f"the operator {type(node.op).__name__}", self.source)
        for side in (node.left, node.right):
            if isinstance(side, ast.Constant) and not _is_number(side.value):
                raise _refuse(f"arithmetic on the literal {side.value!r}", self.source)
        if isinstance(node.op, ast.Pow):
            exp = _number_literal(node.right)
            if exp is None or abs(exp) > MAX_EXPONENT:
                raise _refuse(f"an exponent that is not a number literal of magnitude ≤ {MAX_EXPONENT}",
                              self.source)  # fmt: skip
        self.check(node.left, depth)
        self.check(node.right, depth)

    def _compare(self, node: ast.Compare, depth: int) -> None:
        self.check(node.left, depth)
        last = len(node.ops) - 1
        for k, (op, right) in enumerate(zip(node.ops, node.comparators, strict=True)):
            if isinstance(right, (ast.List, ast.Tuple, ast.Set)):
                if not isinstance(op, (ast.In, ast.NotIn, ast.Eq, ast.NotEq)) or k != last:
                    raise _refuse("a list outside a final 'in [...]' or '== [...]'", self.source)
                for elt in right.elts:
                    if _number_literal(elt) is None and not isinstance(elt, ast.Constant):
                        raise _refuse("a list item that is not a literal", self.source)
                    if isinstance(elt, ast.Constant):
                        self._literal(elt)
            elif isinstance(op, (ast.In, ast.NotIn)):
                raise _refuse("'in' without a literal list", self.source)
            elif type(op) not in _COMPARE:
                raise _refuse(f"the comparison {type(op).__name__}", self.source)
            else:
                self.check(right, depth)

    def _call(self, node: ast.Call) -> None:
        func = node.func
        if node.keywords:
            raise _refuse("function calls", self.source)
        if isinstance(func, ast.Attribute) and func.attr in _NA_METHODS and not node.args:
            target = func.value
        elif isinstance(func, ast.Name) and func.id in _NA_METHODS and len(node.args) == 1:
            target = node.args[0]
        else:
            raise _refuse("function calls", self.source)
        if not isinstance(target, ast.Name):
            raise _refuse("isna()/notna() on something that is not a column", self.source)
        self._name(target)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))  # bool included: True + 1 is arithmetic on 1


def _number_literal(node: ast.AST) -> float | None:
    """The value of ``5``, ``-2.5`` or ``+3``; None for anything else."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _number_literal(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        try:
            return float(node.value)
        except OverflowError:  # an int literal beyond float range
            return float("inf")
    return None


class _Evaluator:
    """Vectorised evaluation of a validated tree over a DataFrame's columns."""

    def __init__(self, frame: pd.DataFrame, backticked: dict[str, str]) -> None:
        self.frame, self.backticked = frame, backticked
        self.by_name = {str(c): c for c in frame.columns}

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Name):
            return self.frame[self.by_name[self.backticked.get(node.id, node.id)]]
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BoolOp):
            values = [_boolean(self.visit(v)) for v in node.values]
            combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
            result = values[0]
            for v in values[1:]:
                result = combine(result, v)
            return result
        if isinstance(node, ast.UnaryOp):
            value = self.visit(node.operand)
            if isinstance(node.op, (ast.Not, ast.Invert)):
                b = _boolean(value)
                return (not b) if isinstance(b, bool) else ~b
            return -_numeric(value) if isinstance(node.op, ast.USub) else +_numeric(value)
        if isinstance(node, ast.BinOp):
            return self._arith(node)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Call):
            target = node.args[0] if isinstance(node.func, ast.Name) else node.func.value  # type: ignore[attr-defined]
            name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr  # type: ignore[attr-defined]
            col = self.visit(target)
            return col.isna() if _NA_METHODS[name] else col.notna()
        raise ExpressionError(f"'{type(node).__name__}' nodes")  # unreachable after validation

    def _arith(self, node: ast.BinOp) -> Any:
        import numpy as np

        left, right = _numeric(self.visit(node.left)), _numeric(self.visit(node.right))
        if isinstance(node.op, ast.Pow):  # in float: an int power never grows a Python bigint
            left = left.astype("float64") if hasattr(left, "astype") else np.float64(left)
        return _ARITH[type(node.op)](left, right)

    def _compare(self, node: ast.Compare) -> Any:
        result: Any = True
        left = self.visit(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(right_node, (ast.List, ast.Tuple, ast.Set)):
                items = [ast.literal_eval(e) for e in right_node.elts]  # literals only (validated)
                member = left.isin(items) if hasattr(left, "isin") else left in items
                if isinstance(op, (ast.In, ast.Eq)):
                    part = member
                else:
                    part = (not member) if isinstance(member, bool) else ~member
                right = None
            else:
                right = self.visit(right_node)
                try:
                    part = _COMPARE[type(op)](left, right)
                except TypeError as err:
                    raise ValueError(f"cannot compare {_kind(left)} with {_kind(right)} ({err})") from None
            result = part if result is True else operator.and_(_boolean(result), _boolean(part))
            left = right
        return result


def _kind(value: Any) -> str:
    name = getattr(value, "name", None)
    return f"column {name!r} ({value.dtype})" if hasattr(value, "dtype") and name is not None else repr(value)


def _boolean(value: Any) -> Any:
    """A condition: a bool, or a boolean Series (nullable booleans keep NA until the end)."""
    import pandas as pd

    if isinstance(value, bool):
        return value
    if isinstance(value, pd.Series) and (pd.api.types.is_bool_dtype(value.dtype)):
        return value
    raise ValueError(f"{_kind(value)} is not a condition; compare it, e.g. `col > 0`")


def _numeric(value: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(value, bool):
        return np.int64(value)
    if isinstance(value, int):  # numpy scalars: a bounded width, never a Python bigint
        return np.int64(value) if -(2**63) <= value < 2**63 else np.float64(value)
    if isinstance(value, float):
        return np.float64(value)
    if isinstance(value, pd.Series) and (pd.api.types.is_numeric_dtype(value.dtype)):
        return value.astype("int64") if pd.api.types.is_bool_dtype(value.dtype) else value
    raise ValueError(f"arithmetic needs numbers; {_kind(value)} is not numeric")


def _as_condition(value: Any, n: int, source: str) -> Any:
    import pandas as pd

    if isinstance(value, bool):
        return pd.Series([value] * n, dtype=bool)
    if isinstance(value, pd.Series) and pd.api.types.is_bool_dtype(value.dtype):
        return value.reset_index(drop=True)
    raise ValueError(
        f"{_show(source)} is not a condition (it gives {_kind(value)}); compare it, e.g. `x > 0`"
    )


def slice_mask(source: str, frame: pd.DataFrame) -> np.ndarray:
    """Rows of ``frame`` where the slice expression holds (a boolean array, missing values False).

    Raises ExpressionError (not in the language), ColumnError (a column the frame lacks) or
    ValueError (types that do not fit, e.g. a text column compared with a number).
    """
    return parse(source).mask(frame)


def unsafe_row_condition(kwargs: Any) -> str | None:
    """Why a Great Expectations ``row_condition`` could run code; None when absent or whitelisted.

    GX hands a row condition to ``DataFrame.query`` (a string, a pass-through filter, or a query
    string it builds from a structured condition), which evaluates Python. A suite named by the
    spec is data like the spec, so only strings in the slice language are let through; run
    through ``query`` they stay inside pandas' own syntax.
    """
    cond = kwargs.get("row_condition") if isinstance(kwargs, dict) else None
    if cond is None:
        return None
    if not isinstance(cond, str):
        return (
            "a structured row_condition is not supported (Great Expectations turns it into a DataFrame.query)"
        )
    try:
        parse(cond)
    except ExpressionError as err:
        return f"row_condition: unsupported expression: {err}"
    return None
