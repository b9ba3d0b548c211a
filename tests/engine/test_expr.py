"""The slice language (auditkit/spec/expr.py): what it accepts gives pandas' rows; the rest is refused.

Valid expressions are compared with an independent computation on real data (scikit-learn's
breast-cancer table, whose column names have spaces, plus a text column with missing values):
``DataFrame.query`` (run here on trusted test literals only) and hand-written pandas masks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from auditkit.spec.expr import MAX_DEPTH, ColumnError, ExpressionError, parse, slice_mask


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    df = data.frame.copy()
    rng = np.random.default_rng(0)
    df["site"] = pd.Series(rng.choice(["north", "south", "east"], len(df)), dtype=object)
    df.loc[rng.choice(len(df), 40, replace=False), "site"] = None
    df["age"] = rng.integers(18, 90, len(df)).astype(float)
    df.loc[rng.choice(len(df), 25, replace=False), "age"] = np.nan
    df["screened"] = rng.random(len(df)) < 0.5
    return df.rename(columns={"target": "benign"})


QUERY_EQUIVALENT = [
    "age > 60",
    "18 <= age < 40",
    "`mean radius` > 15",
    "`mean radius` * 2 + `mean texture` / 3 >= 40",
    "`worst area` ** 0.5 > 30",
    "-`mean radius` < -20",
    "(age % 10 == 0) or (benign == 0)",
    "age // 10 == 5",
    "site in ['north', 'east']",
    "site not in ('north',)",
    "site == ['south']",
    "site != 'south' and age > 30",
    "not screened",
    "~screened & (benign == 1)",
    "age > 30 & age < 50",  # & with boolean precedence, as in pandas
    "screened | (`mean radius` > 20)",
    "benign == True",
    "site == 'north' and not (age >= 50 or `mean area` < 500)",
]


@pytest.mark.parametrize("expr", QUERY_EQUIVALENT)
def test_valid_expressions_select_the_rows_pandas_query_selects(frame: pd.DataFrame, expr: str) -> None:
    expected = np.zeros(len(frame), dtype=bool)
    expected[frame.index.get_indexer(frame.query(expr).index)] = True
    got = slice_mask(expr, frame)
    assert got.dtype == bool and got.shape == (len(frame),)
    assert np.array_equal(got, expected)


def test_missing_value_predicates_match_pandas_masks(frame: pd.DataFrame) -> None:
    cases = {
        "age.isna()": frame["age"].isna(),
        "isna(age)": frame["age"].isna(),
        "site.notna() and age.isnull()": frame["site"].notna() & frame["age"].isna(),
        "notnull(site) or `mean radius` > 25": frame["site"].notna() | (frame["mean radius"] > 25),
        "age > 50": frame["age"] > 50,  # NaN never satisfies a comparison
        "not age > 50": ~(frame["age"] > 50),  # ... so its negation holds there (as in pandas)
    }
    for expr, expected in cases.items():
        assert np.array_equal(slice_mask(expr, frame), expected.to_numpy(dtype=bool)), expr
    assert slice_mask("age.isna()", frame).sum() == 25
    assert slice_mask("1 < 2", frame).all() and not slice_mask("False", frame).any()


def test_a_non_default_index_gives_a_positional_mask(frame: pd.DataFrame) -> None:
    shuffled = frame.sample(frac=1.0, random_state=1)  # duplicate-free but unordered index
    got = slice_mask("`mean radius` > 15", shuffled)
    assert np.array_equal(got, (shuffled["mean radius"] > 15).to_numpy())


def test_parse_lists_the_columns_it_reads() -> None:
    expr = parse("`mean radius` > 3 and age.isna() or site in ['a'] and `mean radius` < 9")
    assert expr.columns == ("mean radius", "age", "site")


def test_unknown_column_names_it_with_a_suggestion(frame: pd.DataFrame) -> None:
    with pytest.raises(ColumnError) as err:
        slice_mask("`mean radus` > 3", frame)
    assert err.value.column == "mean radus" and err.value.suggestion == "mean radius"
    assert "unknown column 'mean radus'" in str(err.value) and "did you mean 'mean radius'?" in str(err.value)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("site > 3", "cannot compare column 'site'"),
        ("`mean radius` + 1", "is not a condition"),
        ("site + 1 > 2", "arithmetic needs numbers"),
        ("age and screened", "is not a condition"),
    ],
)
def test_types_that_do_not_fit_are_value_errors(frame: pd.DataFrame, expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        slice_mask(expr, frame)


REFUSED = [
    ("a.__class__.__init__.__globals__['sys'].modules['os'].system('id')", "function calls"),
    ("a.__class__ == 1", "attribute access"),
    ("__import__('os').system('id') == 0", "function calls"),
    ("getattr(a, '__class__') == 1", "function calls"),
    ("a > (lambda: 1)", "lambdas"),
    ("f'{a}' == 'x'", "f-strings"),
    ("a > @x", "'@' local variables"),
    ("import os", "invalid syntax"),
    ("[x for x in a] == []", "comprehensions"),
    ("{k: 1 for k in a} == {}", "comprehensions"),
    ("(y := 3) > 1", "assignments (:=)"),
    ("a[0] > 1", "subscripts"),
    ("(1).real > 0", "attribute access"),
    ("''.join(a) == ''", "function calls"),
    ("a.str.contains('x')", "function calls"),
    ("a.isna(1)", "function calls"),
    ("a.isna(how='any')", "function calls"),
    ("isna(a.b)", "not a column"),
    ("(a + 1).isna()", "not a column"),
    ("__builtins__ > 0", "dunder name"),
    ("ａ.__ｃｌａｓｓ__ == 1", "attribute access"),  # full-width letters normalise to a.__class__
    ("__ｉｍｐｏｒｔ__ > 1", "dunder name"),
    ("a if b else c", "if-expressions"),
    ("b'x' == a", "a bytes literal"),
    ("a == 1j", "a complex literal"),
    ("a is None", "the comparison Is"),
    ("a in b", "'in' without a literal list"),
    ("a in [b]", "not a literal"),
    ("a < [1, 2]", "a list outside"),
    ("'x' * 10**8 == a", "arithmetic on the literal"),
    ("2**2**2**2**99 > a", "exponent"),
    ("a ** 1000 > 1", "exponent"),
    ("a ** b > 1", "exponent"),
    ("a @ b > 1", "'@' local variables"),
    ("a << 2 > 1", "the operator LShift"),
    ("`a`.__class__ == 1", "attribute access"),
    ("`a` + __ak_bt0__ > 1", "a reserved name"),
    ("`unterminated > 1", "unterminated"),
    ("'unterminated > 1", "unterminated string"),
    ("-" * (MAX_DEPTH + 5) + "a > 1", "nesting deeper than"),
    ("(" * 300 + "a" + ")" * 300 + " > 1", "invalid syntax"),
    ("a > 1 or " * 400 + "a > 1", "longer than"),
    ("isna", "without a column"),
    ("", "an empty expression"),
]


@pytest.mark.parametrize(("expr", "message"), REFUSED)
def test_everything_else_is_refused_before_any_evaluation(expr: str, message: str) -> None:
    with pytest.raises(ExpressionError) as err:
        parse(expr)
    text = str(err.value)
    assert message in text
    assert "\n" not in text


def test_a_backticked_name_is_only_ever_a_column(frame: pd.DataFrame) -> None:
    hidden = "`__import__('os').system('id')` > 0"
    expr = parse(hidden)  # the text between backticks is a name, never parsed as code
    assert expr.columns == ("__import__('os').system('id')",)
    with pytest.raises(ColumnError):
        expr.mask(frame)
    odd = frame.assign(**{"__import__('os').system('id')": np.arange(len(frame))})
    assert slice_mask(hidden, odd).sum() == len(frame) - 1  # a real column of that name is just data


def test_large_literals_stay_numbers_not_python_bigints(frame: pd.DataFrame) -> None:
    assert not slice_mask("age > 10 ** 64", frame).any()
    assert not slice_mask("age > 9 ** 64 * 9 ** 64 * 9 ** 64", frame).any()
    assert not slice_mask("age > 1e999", frame).any()
    assert slice_mask("age > -1e999", frame).sum() == frame["age"].notna().sum()


def test_refusal_messages_stay_on_one_line_with_invisible_characters_escaped() -> None:
    with pytest.raises(ExpressionError) as err:
        parse("a.\u202eb\u2066 == 1\n or c()")
    text = str(err.value)
    assert "\n" not in text and "\u202e" not in text and "\\u202e" in text
