"""The predicate model: what a compiled criterion means, as a tree of frozen pydantic models.

A predicate states the *condition the text describes* ("creatinine >= 2.0 mg/dL"); whether
that condition includes or excludes is the criterion's ``kind``, applied when screening.
This module knows nothing of grammars or patients: it is the contract between the
compiler, hand-edited rule files and the evaluator.

>>> p = Comparison(variable="creatinine", op="ge", value=2.0, unit="mg/dL")
>>> PredicateAdapter.validate_json(PredicateAdapter.dump_json(p)) == p
True
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Operator = Literal["lt", "le", "gt", "ge", "eq"]
TimeUnit = Literal["day", "week", "month", "year"]

OPERATOR_SYMBOLS: dict[str, str] = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "="}


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Period(_Node):
    """A calendar span, kept in the unit written so "2 years" means two calendar years."""

    amount: float = Field(ge=0)
    unit: TimeUnit

    def __str__(self) -> str:
        amount = f"{self.amount:g}"
        return f"{amount} {self.unit}{'' if self.amount == 1 else 's'}"


class Comparison(_Node):
    """A measured variable against one bound: ``variable op value unit``.

    ``unit`` is the variable's canonical unit (thresholds are converted when compiled),
    ``"x ULN"`` for multiples of the upper limit of normal, or a time unit for ``age``.
    ``within`` is a recency window: an older measurement does not count.
    """

    type: Literal["comparison"] = "comparison"
    variable: str
    op: Operator
    value: float
    unit: str
    within: Period | None = None


class Range(_Node):
    """A measured variable between two bounds, inclusive unless said otherwise."""

    type: Literal["range"] = "range"
    variable: str
    low: float
    high: float
    unit: str
    low_inclusive: bool = True
    high_inclusive: bool = True
    within: Period | None = None


class Category(_Node):
    """A categorical variable (El Escorial category, ...) taking one of ``values``."""

    type: Literal["category"] = "category"
    variable: str
    values: tuple[str, ...]
    within: Period | None = None


class Sex(_Node):
    type: Literal["sex"] = "sex"
    sex: Literal["female", "male"]


class Presence(_Node):
    """A condition, medication or procedure on record.

    ``current``: active on the screening date (ongoing medication, unresolved condition);
    ``within``: started or happened within that period before the screening date;
    neither: at any time before the screening date.
    """

    type: Literal["presence"] = "presence"
    variable: str
    current: bool = False
    within: Period | None = None


class Duration(_Node):
    """Time elapsed since an event of a variable (``since``) compared with a period.

    "duration of disease no more than 2 years from the first diagnosis date" is
    ``Duration(variable="als", since="diagnosed", op="le", period=2 years)``;
    for a medication, ``since="start"`` measures an ongoing course.
    """

    type: Literal["duration"] = "duration"
    variable: str
    since: Literal["onset", "diagnosed", "start"]
    op: Operator
    period: Period


class Manual(_Node):
    """A part of a criterion left for a person to decide: always unknown, never guessed."""

    type: Literal["manual"] = "manual"
    text: str


class All(_Node):
    type: Literal["all"] = "all"
    items: tuple[Predicate, ...] = Field(min_length=1)


class AnyOf(_Node):
    type: Literal["any"] = "any"
    items: tuple[Predicate, ...] = Field(min_length=1)


class Not(_Node):
    type: Literal["not"] = "not"
    item: Predicate


class Implies(_Node):
    """A conditional criterion: "for subjects under riluzole, stable dose > 28 days".

    Holds when ``condition`` does not, or when ``then`` does (Kleene implication).
    """

    type: Literal["implies"] = "implies"
    condition: Predicate
    then: Predicate


Predicate = Annotated[
    Union[Comparison, Range, Category, Sex, Presence, Duration, Manual, All, AnyOf, Not, Implies],
    Field(discriminator="type"),
]
"""Any predicate node; ``PredicateAdapter`` validates and serialises it."""

PredicateNode = Union[Comparison, Range, Category, Sex, Presence, Duration, Manual, All, AnyOf, Not, Implies]

for _model in (All, AnyOf, Not, Implies):
    _model.model_rebuild()

PredicateAdapter: TypeAdapter[PredicateNode] = TypeAdapter(Predicate)


def predicate_schema() -> dict[str, object]:
    """JSON Schema of the predicate language, for editors of rule files."""
    return PredicateAdapter.json_schema()


def variables_of(predicate: PredicateNode) -> list[str]:
    """Every variable a predicate reads, in order of first use (what would decide it)."""
    seen: dict[str, None] = {}

    def visit(node: PredicateNode) -> None:
        if isinstance(node, (All, AnyOf)):
            for item in node.items:
                visit(item)
        elif isinstance(node, Not):
            visit(node.item)
        elif isinstance(node, Implies):
            visit(node.condition)
            visit(node.then)
        elif isinstance(node, Sex):
            seen.setdefault("sex")
        elif not isinstance(node, Manual):
            seen.setdefault(node.variable)

    visit(predicate)
    return list(seen)
