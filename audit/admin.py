from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

from audit import timeline
from audit.models import AuditLog
from audit.selectors import UnsearchableTerm, audit_log_search
from core.admin import ReadOnlyAdmin

# Page links reach back this many pages (of list_per_page); older entries are reached by keyset
# (the "Older entries" link: ?id__lt=<the last id shown>), which costs the same at any depth.
AUDIT_ADMIN_PAGES = 20


class BoundedPaginator(Paginator):
    """Never counts the table: `count` stops at one row past the pages it links to.

    Django's changelist asks the paginator for a count on every page; Paginator's own is a
    COUNT(*) of every matching row, which grows with the table. This one reads the ids (and
    times) of at most pages * per_page + 1 matching rows, newest first, from the months that hold
    them (audit.timeline), whatever the size of the trail; the page's rows are then read by those
    ids, so the months are looked through once a request. A count past the limit means "more than
    that" (the template says so), and deeper pages are not offered.
    """

    # The `?id__lt=` of the "Older entries" link, and the months that can hold the search's rows
    # (audit.presence), for audit.timeline (AuditLogAdmin sets them).
    below: int | None = None
    where: timeline.Where | None = None

    @cached_property
    def newest(self) -> list[AuditLog]:
        """The ids and times of at most limit + 1 matching rows, newest first."""
        rows = cast(QuerySet[AuditLog], self.object_list).only("id", "created_at")
        return timeline.newest(rows, limit=self.limit + 1, below=self.below, where=self.where)

    def page_rows(self, bottom: int, top: int) -> list[AuditLog]:
        """The whole rows of newest[bottom:top], in that order."""
        wanted = self.newest[bottom:top]
        if not wanted:
            return []
        rows = cast(QuerySet[AuditLog], self.object_list)
        # created_at IN (...) names their months to the planner.
        found = (
            rows.filter(
                id__in=[row.pk for row in wanted], created_at__in={row.created_at for row in wanted}
            )
            .order_by()
            .in_bulk()
        )
        return [found[row.pk] for row in wanted if row.pk in found]

    @cached_property
    def count(self) -> int:
        return len(self.newest)

    @cached_property
    def limit(self) -> int:
        return AUDIT_ADMIN_PAGES * self.per_page

    @cached_property
    def num_pages(self) -> int:
        return min(super().num_pages, AUDIT_ADMIN_PAGES)

    @property
    def more(self) -> bool:
        return self.count > self.limit

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        # A list, so that the changelist can name the page's last id (a queryset refuses [-1]).
        return Page(self.page_rows(bottom, bottom + self.per_page), number, self)


class AuditLogChangeList(ChangeList):
    def get_ordering(self, request: HttpRequest, queryset: QuerySet[AuditLog]) -> list[Any]:
        # Newest first by id, whatever ?o= says: sorting by another column sorts the whole table
        # for one page (sortable_by only hides the column headers' links).
        return ["-id"]

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        if (self.show_all and self.can_show_all) or not self.multi_page:
            # Django lists the whole queryset then (at most a page, or "show all"'s bound): read
            # it from the months that hold it as well.
            paginator = cast(BoundedPaginator, self.paginator)
            self.result_list = paginator.page_rows(0, max(self.result_count, 1))

    @property
    def older_query(self) -> str:
        """The next entries after this page's last one, by keyset: `?id__lt=<its id>`."""
        if not self.multi_page or len(self.result_list) < self.list_per_page:
            return ""
        last = self.result_list[-1].pk
        return self.get_query_string({"id__lt": last}, remove=[PAGE_VAR])


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "severity", "action", "description", "user_email", "ip_address"]
    # Only filters an index serves (severity: the errors index for ERROR/CRITICAL; the others
    # are common). A filter on a rare value without its own index walks the whole trail.
    list_filter = ["severity"]
    search_fields = ["description"]  # shows the box; audit_log_search decides what a term means
    search_help_text = (
        "An action code (PAYMENT_RECEIVED), an entity (Invoice #7), an e-mail address, a request "
        "id (32 hex digits or a UUID are always read as one), or text of the descriptions (three "
        "letters or digits in a row at least)."
    )
    date_hierarchy = None
    show_full_result_count = False
    # Facet counts are a COUNT per filter value over every matching row.
    show_facets = admin.ShowFacets.NEVER
    sortable_by = ()  # see AuditLogChangeList.get_ordering
    list_per_page = 50
    paginator = BoundedPaginator

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AuditLog], search_term: str
    ) -> tuple[QuerySet[AuditLog], bool]:
        if not search_term.strip():
            return queryset, False
        try:
            search = audit_log_search(queryset, search_term)
        except UnsearchableTerm as exc:
            messages.warning(request, str(exc))
            return queryset.none(), False
        request.audit_where = search.where  # type: ignore[attr-defined] # for get_paginator
        return search.rows, False

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return AuditLogChangeList

    def get_paginator(
        self, request: HttpRequest, queryset: Any, per_page: int, *args: Any, **kwargs: Any
    ) -> Paginator:
        paginator = super().get_paginator(request, queryset, per_page, *args, **kwargs)
        below = request.GET.get("id__lt", "")
        if isinstance(paginator, BoundedPaginator):
            paginator.below = int(below) if below.isdigit() else None
            paginator.where = getattr(request, "audit_where", None)
        return paginator
