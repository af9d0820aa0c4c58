"""Reads that scale: the paged key listing and a /status whose size does not grow with the store."""

from __future__ import annotations

import json

import pytest
import requests

from common.procs import wait_until


def _page(kv3, **params) -> dict:
    resp = requests.get(f"{kv3.urls[1]}/kv", params=params, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_paged_listing_returns_every_key_once(kv3) -> None:
    keys = [f"a/{i:04d}" for i in range(1100)] + ["b/1", "b/2", "b/ключ", "c"]
    kv3.put(0, keys[0], 0)
    kv3.wait_converged()
    small_status = len(json.dumps(kv3.status(0)))
    with requests.Session() as http:
        for i, key in enumerate(keys[1:], start=1):
            assert http.put(f"{kv3.urls[0]}/kv/{key}", json={"value": i}).status_code == 200
    wait_until(lambda: kv3.status(1)["keys"] == len(keys), timeout=30, message="replicated")
    assert kv3.items(1) == {k: i for i, k in enumerate(keys)}
    seen, cursor = [], None
    while True:
        body = _page(kv3, limit=7, **({"cursor": cursor} if cursor else {}))
        assert len(body["items"]) <= 7
        seen += [item["key"] for item in body["items"]]
        cursor = body["cursor"]
        if cursor is None:
            break
    assert seen == sorted(keys, key=str.encode)  # byte order, each key exactly once
    prefixed = _page(kv3, prefix="b/", limit=2)
    assert [i["key"] for i in prefixed["items"]] == ["b/1", "b/2"]
    rest = _page(kv3, prefix="b/", limit=2, cursor=prefixed["cursor"])
    assert [i["key"] for i in rest["items"]] == ["b/ключ"] and rest["cursor"] is None
    item = _page(kv3, prefix="c")["items"][0]
    assert item == {"key": "c", "value": len(keys) - 1, "version": [len(keys), 0, 0],
                    "siblings": 1}
    assert _page(kv3, prefix="zzz") == {**_page(kv3, prefix="zzz"), "items": [], "cursor": None}
    # /status stays the same size: counts, not contents.
    status = kv3.status(1)
    assert status["keys"] == len(keys) and "store" not in status
    assert len(json.dumps(kv3.status(0))) < small_status + 50


def test_listing_sees_writes_made_between_pages_after_the_cursor(kv3) -> None:
    for k in ("k1", "k3"):
        kv3.put(0, k, k)
    first = requests.get(f"{kv3.urls[0]}/kv", params={"limit": 1}).json()
    assert [i["key"] for i in first["items"]] == ["k1"]
    kv3.put(0, "k0", "before the cursor")  # not seen: already paged past
    kv3.put(0, "k2", "after the cursor")
    rest = requests.get(f"{kv3.urls[0]}/kv", params={"cursor": first["cursor"]}).json()
    assert [i["key"] for i in rest["items"]] == ["k2", "k3"] and rest["cursor"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "prefix=" + "p" * 257,
                                   "cursor=" + "c" * 257])
def test_bad_listing_parameters_are_json_400(kv3_shared, query) -> None:
    resp = requests.get(f"{kv3_shared.urls[0]}/kv?{query}")
    assert resp.status_code == 400 and resp.json()["error"]
