"""A node's store, one page at a time, as pure functions.

The key table pages through `GET /kv?prefix=&cursor=&limit=` (a cursor like Redis SCAN), so the
page never loads a whole store. A node without that endpoint (it answers 4xx) is shown from the
`store` of its /status instead, paged here by offset, and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from panel.api import ApiError, Json, Result
from panel.render import format_clock, format_value


@dataclass
class Pager:
    """Where one node's key table is: the cursors of the pages seen so far (for "back")."""

    prefix: str = ""
    cursors: list[str | None] = field(default_factory=lambda: [None])

    @property
    def cursor(self) -> str | None:
        return self.cursors[-1]

    @property
    def page_number(self) -> int:
        return len(self.cursors)

    def reset(self, prefix: str) -> None:
        self.prefix, self.cursors = prefix, [None]

    def forward(self, next_cursor: str | None) -> None:
        if next_cursor not in (None, "", "0"):
            self.cursors.append(str(next_cursor))

    def back(self) -> None:
        if len(self.cursors) > 1:
            self.cursors.pop()


@dataclass(frozen=True)
class StorePage:
    rows: list[dict[str, Any]]
    next_cursor: str | None  # None: this is the last page
    note: str | None = None  # why the page comes from /status, or what went wrong


def item_row(item: Json) -> dict[str, Any]:
    siblings = item.get("siblings")
    return {"key": str(item.get("key")), "value": format_value(item.get("value")),
            "version": format_clock(item.get("version")),
            "siblings": len(siblings) if isinstance(siblings, list) else 1}


def status_page(status: Result, prefix: str, cursor: str | None, limit: int) -> StorePage:
    """The page from /status's `store` (a node without GET /kv): sorted keys, offset cursor."""
    store = {} if isinstance(status, ApiError) else (status.get("store") or {})
    keys = sorted(k for k in store if k.startswith(prefix))
    offset = int(cursor) if cursor and str(cursor).isdigit() else 0
    rows = [{"key": k, "value": format_value(store[k]), "version": "—", "siblings": 1}
            for k in keys[offset:offset + limit]]
    more = offset + limit < len(keys)
    return StorePage(rows, str(offset + limit) if more else None)


def store_page(listing: Result, status: Result, prefix: str, cursor: str | None,
               limit: int) -> StorePage:
    """What the key table shows: the GET /kv page, or the /status fallback with a note."""
    if not isinstance(listing, ApiError):
        items = listing.get("items")
        if isinstance(items, list):
            nxt = listing.get("cursor")
            rows = [item_row(i) for i in items if isinstance(i, dict)]
            return StorePage(rows, None if nxt in (None, "", "0", 0) else str(nxt))
        listing = ApiError("node", "GET /kv answered without an items list")
    if listing.down:
        return StorePage([], None, f"key listing unavailable: {listing.reason}")
    page = status_page(status, prefix, cursor, limit)
    has_store = not isinstance(status, ApiError) and "store" in status
    note = (f"this node has no key listing (GET /kv: {listing.reason}); showing the store from "
            f"/status" if has_store else
            f"this node has no key listing (GET /kv: {listing.reason}) and /status has no store")
    return StorePage(page.rows, page.next_cursor, note)
