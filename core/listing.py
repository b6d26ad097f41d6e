"""One page of a staff list (leads, invoices, students, users): a sort from a fixed set of columns,
numbered pages with previous and next, and the number of matching rows.

Why numbered pages (LIMIT/OFFSET) rather than the API's keyset cursor: the pages sort by any of
several columns, both ways, and show "page 3 of 12" and a total; a keyset cursor would need a key
per sort order and could not say how many rows match. OFFSET reads and drops the rows before the
page, so its cost grows with the depth: it is bounded here to MAX_PAGE pages (10,000 rows at 50
a page), past which the list asks for a narrower filter. The count is one exact COUNT(*) of the
matching rows, a pass over an index that these tables keep small (a few hundred leads and a few
dozen students a month); bench/staff_lists.py measures both at up to 100,000 rows. The audit log,
which does grow without end, is never listed this way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.db.models import Case, Count, F, QuerySet, Value, When, Window

PAGE_SIZE = 50
MAX_PAGE = 200

_TOTAL = "listing_total"


class ListParameterError(ValueError):
    """A page or sort the list cannot serve; `field` names the query parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Sort:
    """A column staff can sort by: its label, what it orders on (field names or expressions)
    and how each direction reads in the sort menu ("A to Z", "newest first")."""

    label: str
    fields: tuple[Any, ...]
    ascending: str = "A to Z"
    descending: str = "Z to A"


@dataclass
class Page:
    rows: list[Any]
    number: int
    size: int
    total: int
    sort: str

    @property
    def last_number(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < min(self.last_number, MAX_PAGE)

    @property
    def previous_number(self) -> int:
        return min(self.number - 1, self.last_number)

    @property
    def next_number(self) -> int:
        return self.number + 1

    @property
    def first_index(self) -> int:
        return (self.number - 1) * self.size + 1 if self.rows else 0

    @property
    def last_index(self) -> int:
        return (self.number - 1) * self.size + len(self.rows)

    @property
    def reachable(self) -> int:
        return MAX_PAGE * self.size

    @property
    def truncated(self) -> bool:
        """More rows match than the pages reach: say so, and ask for a narrower filter."""
        return self.total > self.reachable

    def __iter__(self) -> Any:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __bool__(self) -> bool:
        # A page past the end has no rows but is still a page ({% if page %} in templates).
        return True


class Listing:
    """Reads `sort` and `page` from the query string and serves one page of a queryset.

    `sorts` maps a key ("name", "created") to its `Sort`; `?sort=name` is ascending, `?sort=-name`
    descending. The primary key breaks ties in the same direction, so rows never swap places
    between two pages. Empty dates sort last whichever way.
    """

    def __init__(
        self,
        params: Mapping[str, str],
        *,
        sorts: Mapping[str, Sort],
        default_sort: str,
        page_size: int | None = None,
    ) -> None:
        self.sorts = sorts
        self.page_size = page_size or PAGE_SIZE
        self.sort = self._sort(params.get("sort", ""), default_sort)
        self.number = self._page(params.get("page", ""))

    def _sort(self, raw: str, default: str) -> str:
        if raw == "":
            return default
        if raw.removeprefix("-") not in self.sorts:
            names = ", ".join(self.sorts)
            raise ListParameterError("sort", f"Sort by one of: {names}.")
        return raw

    def _page(self, raw: str) -> int:
        if raw == "":
            return 1
        if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_PAGE:
            raise ListParameterError(
                "page",
                f"Pages are numbered 1 to {MAX_PAGE}; narrow the filters to reach older rows.",
            )
        return int(raw)

    def ordering(self) -> list[Any]:
        descending = self.sort.startswith("-")
        fields = self.sorts[self.sort.removeprefix("-")].fields
        order = []
        for field in fields:
            expression = F(field) if isinstance(field, str) else field
            order.append(
                expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
            )
        return [*order, "-pk" if descending else "pk"]

    def paginate(self, queryset: QuerySet) -> Page:
        """The page's rows and the number of matching rows: two queries, the count first.

        Not COUNT(*) OVER () in the page's own query: the window makes the database build and
        sort every matching row in full before LIMIT applies, where the page alone stops at 50
        (five times slower at 100,000 leads, bench/staff_lists.py). A page past the end costs
        the count alone.
        """
        start = (self.number - 1) * self.page_size
        total = queryset.order_by().count()
        rows = []
        if start < total:
            rows = list(queryset.order_by(*self.ordering())[start : start + self.page_size])
        return Page(rows=rows, number=self.number, size=self.page_size, total=total, sort=self.sort)

    def columns(self) -> list[dict[str, Any]]:
        """Header links: each column's key, label, the sort a click asks for and aria-sort."""
        current, descending = self.sort.removeprefix("-"), self.sort.startswith("-")
        out = []
        for key, sort in self.sorts.items():
            active = key == current
            out.append(
                {
                    "key": key,
                    "label": sort.label,
                    "active": active,
                    "aria_sort": ("descending" if descending else "ascending") if active else "",
                    # A click on the sorted column turns it round; another starts ascending.
                    "next_sort": (key if descending else f"-{key}") if active else key,
                }
            )
        return out

    def sort_choices(self) -> Sequence[tuple[str, str]]:
        """For the sort <select> of the filter form (the column headers are hidden on phones)."""
        choices = []
        for key, sort in self.sorts.items():
            choices.append((key, f"{sort.label}, {sort.ascending}"))
            choices.append((f"-{key}", f"{sort.label}, {sort.descending}"))
        return choices


def in_choice_order(field: str, values: Sequence[str]) -> Case:
    """Order by the position of `field`'s value in `values` (a status sorted as its pipeline
    runs, NEW before CONTACTED, rather than alphabetically)."""
    return Case(
        *[When(**{field: value}, then=Value(i)) for i, value in enumerate(values)],
        default=Value(len(values)),
    )


def head(queryset: QuerySet, limit: int) -> tuple[list[Any], int]:
    """The first `limit` rows of `queryset` (already ordered) and how many rows it has, in one
    query: for the sections of the home page, each of which shows a few and counts all."""
    rows = list(queryset.annotate(**{_TOTAL: Window(Count("pk"))})[:limit])
    return rows, (getattr(rows[0], _TOTAL) if rows else 0)


def list_page(
    params: Mapping[str, str],
    *,
    filters: Any,
    sorts: Mapping[str, Sort],
    default_sort: str,
    rows: Callable[[dict[str, Any]], QuerySet],
) -> tuple[dict[str, Any], int]:
    """The context and status of a list page: `filters` is the bound filter form, `rows` turns
    its cleaned data into the queryset to page through.

    A filter, sort or page the list cannot serve (an edited or stale bookmark) answers 400 with
    the reason beside the filters, and no rows: never a different list than the one asked for.
    """
    context: dict[str, Any] = {
        "filters": filters,
        "page": None,
        "list_error": "",
        # Whether any filter is set: the page offers to clear them and says "nothing matches".
        "filtered": any(params.get(name) for name in filters.base_fields),
    }
    try:
        listing = Listing(params, sorts=sorts, default_sort=default_sort)
    except ListParameterError as exc:
        context.update(list_error=exc.message, **_sort_context(sorts, default_sort))
        return context, 400
    context.update(_sort_context(sorts, listing.sort))
    if not filters.is_valid():
        context["list_error"] = "Some filters are not valid; see beside them."
        return context, 400
    context["page"] = listing.paginate(rows(filters.cleaned_data))
    return context, 200


def _sort_context(sorts: Mapping[str, Sort], sort: str) -> dict[str, Any]:
    listing = Listing({}, sorts=sorts, default_sort=sort)
    return {
        "sort": sort,
        "columns": {column["key"]: column for column in listing.columns()},
        "sort_choices": listing.sort_choices(),
    }


class SearchField(forms.CharField):
    """The free-text box of a list's filters: stripped, up to 100 characters, no NUL (which
    PostgreSQL refuses in a query and no name or number contains)."""

    def __init__(self, *, placeholder: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("label", "Search")
        widget = forms.TextInput(attrs={"type": "search", "placeholder": placeholder})
        super().__init__(required=False, max_length=100, widget=widget, **kwargs)

    def clean(self, value: Any) -> str:
        value = super().clean(value)
        if "\x00" in value:
            raise forms.ValidationError("Search for plain text.")
        return value
