"""The chaos checker on hand-written histories: it finds every planted anomaly, naming the
operations involved, and finds nothing in clean histories (including the tricky clean cases:
concurrent siblings, superseded writes, anti-entropy skipping versions, unknown outcomes,
smart charging lowering allocations)."""

from __future__ import annotations

import ast
import random
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.checker import check
from chaos.checker.kv import check_delivery_logs
from common.settings import REPO_ROOT

from .histories import History, event, final_state

A1, A2, B1 = [1, 0, 0], [0, 0, 1], [1, 1, 0]


def clean_history() -> History:
    h = History()
    h.put("kv0", 0, "a", "kv0-1", A1)
    h.get("kv1", 1, "a", [("kv0-1", A1, 0)], clock=A1)
    h.put("kv1", 1, "b", "kv1-1", B1, context=A1)
    h.put("kv2", 2, "a", "kv2-1", A2)
    return h


def clean_logs() -> dict[str, list[dict]]:
    return {
        "node1": [event(1, 0, "a", "kv0-1", A1, "local"), event(2, 1, "b", "kv1-1", B1),
                  event(3, 2, "a", "kv2-1", A2)],
        "node2": [event(1, 0, "a", "kv0-1", A1), event(2, 1, "b", "kv1-1", B1, "local"),
                  event(3, 2, "a", "kv2-1", A2)],
        "node3": [event(1, 2, "a", "kv2-1", A2, "local"), event(2, 0, "a", "kv0-1", A1),
                  event(3, 1, "b", "kv1-1", B1)],
    }


def clean_final() -> dict:
    store = {"a": [("kv0-1", A1, 0), ("kv2-1", A2, 2)], "b": [("kv1-1", B1, 1)]}
    return final_state(clean_logs(), store, [1, 1, 1])


def kinds(verdict: dict) -> list[str]:
    assert "violations" in verdict
    return sorted(v["kind"] for v in verdict["violations"])


def indexes(violation: dict) -> set[int]:
    return {op["index"] for op in violation["ops"]}


# -- clean histories -------------------------------------------------------------------------

def test_a_clean_history_has_no_violation_and_counts_what_it_checked():
    verdict = check(clean_history().entries, clean_final())
    assert verdict["valid"] is True and verdict["violations"] == []
    c = verdict["counts"]
    assert (c["kv_writes_acked"], c["kv_reads_ok"], c["delivery_events_checked"]) == (3, 1, 9)


def test_a_superseded_write_and_an_unknown_write_are_not_lost():
    h = History()
    h.put("kv0", 0, "a", "kv0-1", A1)
    h.put("kv1", 1, "a", "kv1-1", B1, context=A1)  # dominates kv0-1
    h.op("kv2", "put", {"node": 2, "key": "a", "value": "kv2-1", "context": None}, "info",
         {"error": "ReadTimeout"})
    logs = {n: [event(1, 0, "a", "kv0-1", A1), event(2, 1, "b", "kv1-1", B1)]
            for n in ("node1", "node2", "node3")}
    final = final_state(logs, {"a": [("kv1-1", B1, 1)]}, [1, 1, 0])
    assert kinds(check(h.entries, final)) == []


def test_anti_entropy_may_skip_overwritten_versions_but_never_reorder():
    # node3 got [2,0,0] by sync without ever seeing [1,0,0], which it overwrote: fine.
    h = History()
    h.put("kv0", 0, "a", "kv0-1", [1, 0, 0])
    h.put("kv0", 0, "a", "kv0-2", [2, 0, 0], context=[1, 0, 0])
    logs = {"node1": [event(1, 0, "a", "kv0-1", [1, 0, 0], "local"),
                      event(2, 0, "a", "kv0-2", [2, 0, 0], "local")],
            "node2": [event(1, 0, "a", "kv0-1", [1, 0, 0]), event(2, 0, "a", "kv0-2", [2, 0, 0])],
            "node3": [event(1, 0, "a", "kv0-2", [2, 0, 0], sync=True)]}
    final = final_state(logs, {"a": [("kv0-2", [2, 0, 0], 0)]}, [2, 0, 0])
    assert kinds(check(h.entries, final)) == []
    # ... but the skipped version arriving after the one that overwrote it is a violation
    final["events"]["node3"].append(event(2, 0, "a", "kv0-1", [1, 0, 0], sync=True))
    assert kinds(check(h.entries, final)) == ["causal-order"]


# -- KV anomalies ----------------------------------------------------------------------------

def test_finds_a_value_delivered_before_its_dependency():
    final = clean_final()
    log = final["events"]["node3"]
    log[1], log[2] = log[2], log[1]  # b (depends on a=kv0-1) before a=kv0-1
    verdict = check(clean_history().entries, final)
    assert kinds(verdict) == ["causal-order"]
    v = verdict["violations"][0]
    assert v["node"] == "node3" and set(v["events"]) == {2, 3}
    assert {op["value"] for op in v["ops"]} == {"kv0-1", "kv1-1"}


def test_finds_a_write_delivered_twice():
    final = clean_final()
    final["events"]["node2"].append(event(4, 0, "a", "kv0-1", A1))
    verdict = check(clean_history().entries, final)
    assert kinds(verdict) == ["duplicate-delivery"]
    assert verdict["violations"][0]["events"] == [1, 4]
    assert verdict["violations"][0]["ops"][0]["value"] == "kv0-1"


def test_finds_an_acknowledged_write_missing_on_one_node():
    final = clean_final()
    final["store"]["node3"]["b"] = None
    verdict = check(clean_history().entries, final)
    assert "lost-write" in kinds(verdict)
    lost = next(v for v in verdict["violations"] if v["kind"] == "lost-write")
    assert lost["nodes"] == ["node3"] and lost["ops"][0]["value"] == "kv1-1"


def test_writes_only_on_a_lost_disk_are_counted_not_violations():
    h = clean_history()
    h.put("kv0", 0, "c", "kv0-2", [2, 0, 0], context=A1)
    h.fault(1, "disk-loss", h.t + 0.5, h.t + 3.0, node="node1", hosts=["node1"])
    final = clean_final()
    verdict = check(h.entries, final)
    assert verdict["valid"], verdict["violations"]
    assert verdict["counts"]["writes_lost_to_disk_loss"] == 1
    # once another node delivered it, it was not only on the lost disk: missing is a bug
    final["events"]["node2"].append(event(4, 0, "c", "kv0-2", [2, 0, 0]))
    assert kinds(check(h.entries, final)) == ["lost-write"]


def test_finds_a_session_not_reading_its_own_write():
    h = clean_history()
    h.get("kv0", 2, "a", [("kv2-1", A2, 2)], clock=[1, 0, 1], context=A1)
    verdict = check(h.entries, clean_final())
    assert kinds(verdict) == ["read-your-writes"]
    assert indexes(verdict["violations"][0]) == {0, len(h.entries) - 2}


def test_finds_a_session_reading_backwards():
    h = clean_history()
    h.get("kv1", 2, "a", [("kv2-1", A2, 2)], clock=[1, 1, 1])
    verdict = check(h.entries, clean_final())
    assert kinds(verdict) == ["monotonic-reads"]
    assert verdict["violations"][0]["process"] == "kv1"


def test_finds_a_write_that_does_not_follow_what_the_session_read():
    h = History()
    h.put("kv0", 0, "a", "kv0-1", A1)
    h.get("kv1", 0, "a", [("kv0-1", A1, 0)], clock=A1)
    h.put("kv1", 1, "b", "kv1-1", [0, 1, 0], clock=[1, 1, 0])  # its version lost the read
    logs = {n: [event(1, 0, "a", "kv0-1", A1), event(2, 1, "b", "kv1-1", [0, 1, 0])]
            for n in ("node1", "node2", "node3")}
    final = final_state(logs, {"a": [("kv0-1", A1, 0)], "b": [("kv1-1", [0, 1, 0], 1)]},
                        [1, 1, 0])
    verdict = check(h.entries, final)
    assert kinds(verdict) == ["writes-follow-reads"]
    assert indexes(verdict["violations"][0]) == {2, 4}


def test_finds_an_answer_below_the_context_sent():
    h = clean_history()
    h.get("kv1", 2, "a", [("kv0-1", A1, 0), ("kv2-1", A2, 2)], clock=[1, 0, 1], context=B1)
    assert kinds(check(h.entries, clean_final())) == ["context-not-honoured"]


def test_finds_every_kind_of_divergence():
    final = clean_final()
    final["status"]["node3"]["vector_clock"] = [1, 0, 1]
    final["status"]["node2"]["buffer"] = [{"origin": 0}]
    final["status"]["node1"]["outbox"] = {"2": 4}
    final["store"]["node3"]["a"]["siblings"].append({"value": "x", "version": [0, 0, 0],
                                                     "origin": 1})
    verdict = check(clean_history().entries, final)
    assert kinds(verdict) == ["divergent-clocks", "divergent-key", "not-drained", "not-drained"]
    divergent = next(v for v in verdict["violations"] if v["kind"] == "divergent-key")
    assert divergent["key"] == "a" and {op["value"] for op in divergent["ops"]} == {"kv0-1",
                                                                                   "kv2-1"}
    final = clean_final()
    final["status"]["node2"] = {"error": "connection refused"}
    assert kinds(check(clean_history().entries, final)) == ["unreachable-at-end"]


# -- grid ------------------------------------------------------------------------------------

def grid_final() -> dict:
    return final_state({}, {}, [0, 0, 0], {"substation1": 30.0, "substation2": 20.0})


def test_finds_a_substation_surely_above_capacity():
    h = History()
    h.charge("ev0", 11.0, "substation2", ends_in=5)
    h.charge("ev1", 11.0, "substation2", ends_in=5)
    verdict = check(h.entries, grid_final())
    assert kinds(verdict) == ["over-capacity"]
    assert indexes(verdict["violations"][0]) == {0, 2}


def test_overlap_only_by_end_time_or_a_deleted_session_is_not_over_capacity():
    h = History()
    h.charge("ev0", 11.0, "substation2", ends_in=0.3, session="substation2.a")  # expired
    h.at(2.0).charge("ev1", 11.0, "substation2", ends_in=5, session="substation2.b")
    h.end("ev1", "substation2.b")
    h.charge("ev1", 11.0, "substation2", ends_in=5)
    assert kinds(check(h.entries, grid_final())) == []


def test_smart_charging_allocations_count_at_their_minimum():
    h = History()
    for i in range(4):  # 4 x 11 kW asked, allocations lowered: 4 x 3.7 kW fit in 20 kW
        h.charge(f"ev{i}", 11.0, "substation2", ends_in=5, allocated=5.0)
    assert kinds(check(h.entries, grid_final())) == []
    h.charge("ev9", 11.0, "substation2", ends_in=5, allocated=5.0, min_power=7.4)
    assert kinds(check(h.entries, grid_final())) == ["over-capacity"]


def test_finds_a_refusal_while_a_substation_had_room():
    h = History()
    h.charge("ev0", 22.0, "substation1", ends_in=5)
    h.charge("ev1", 7.4, None, ends_in=0, refused=True)  # substation1 had 8, substation2 20
    verdict = check(h.entries, grid_final())
    assert kinds(verdict) == ["refused-with-room"]
    assert indexes(verdict["violations"][0]) == {2}
    assert verdict["counts"]["refusals_judged"] == 1


def test_a_refusal_while_the_substation_with_room_did_not_answer_the_monitor_is_excused():
    def history(answered: bool) -> History:
        h = History()
        h.charge("ev0", 25.0, "substation1", ends_in=5)  # 5 kW left there
        h.probe("substation2").probe("substation1")
        h.charge("ev1", 7.4, None, ends_in=0, refused=True)  # substation2 had 20 kW free
        h.probe("substation2", ok=answered).probe("substation1")
        h.at(h.t + 0.5).probe("substation2")
        return h

    assert kinds(check(history(answered=True).entries, grid_final())) == ["refused-with-room"]
    verdict = check(history(answered=False).entries, grid_final())
    assert kinds(verdict) == [] and verdict["counts"]["substation_probes"] == 5


def test_an_unknown_admission_may_take_effect_when_the_fault_blocking_it_heals():
    """Seed 103's false alarm: a request timed out (3.5 s) while the grid Redis was paused;
    the substation admitted it when Redis resumed at 5 s, so with a 4 s duration it may hold
    power until 5 + 5 (balancer deadlines) + 4 s, long after `client timeout + duration`."""
    h = History()
    h.charge("ev0", 25.0, "substation1", ends_in=30)  # 5 kW left
    h.charge("ev1", 11.0, "substation2", ends_in=30)  # 9 kW left
    h.at(0.1).op("ev2", "charge", {"vehicle_id": "EV-x", "power_kw": 11.0, "duration_s": 4},
                 "info", {"error": "ReadTimeout"}, took=3.5)
    h.fault(1, "pause", 0.05, 5.0, target="redis-grid", grid=True)
    h.at(12.0).charge("ev1", 7.4, None, ends_in=0, refused=True)
    verdict = check(h.entries, grid_final())
    assert kinds(verdict) == [] and verdict["counts"]["refusals_judged"] == 1
    h.at(16.0).charge("ev1", 7.4, None, ends_in=0, refused=True)  # by now it surely ended
    assert kinds(check(h.entries, grid_final())) == ["refused-with-room"]


def test_a_refusal_when_full_or_near_a_grid_fault_is_not_a_violation():
    h = History()
    h.charge("ev0", 22.0, "substation1", ends_in=5)
    h.charge("ev1", 11.0, "substation2", ends_in=5)
    h.op("ev2", "charge", {"power_kw": 11.0, "duration_s": 5}, "info", {"error": "timeout"})
    h.charge("ev3", 11.0, None, ends_in=0, refused=True)  # 8 and 9 kW left at most
    verdict = check(h.entries, grid_final())
    assert kinds(verdict) == [] and verdict["counts"]["refusals_judged"] == 1
    h = History()
    h.fault(1, "grid-redis-cut", 0.0, 0.5, substation="substation1")
    h.at(1.0).charge("ev1", 7.4, None, ends_in=0, refused=True)
    verdict = check(h.entries, grid_final())
    assert kinds(verdict) == [] and verdict["counts"]["refusals_judged"] == 0


def test_finds_a_session_held_for_a_refused_driver_or_admitted_twice():
    h = History()
    h.charge("ev0", 11.0, "substation1", ends_in=30, session="substation1.aaaa")
    h.charge("ev1", 22.0, None, ends_in=0, refused=True)  # truly no room: 19 and 20 kW free
    h.op("ev2", "charge", {"vehicle_id": "EV-unknown", "power_kw": 7.4}, "info",
         {"error": "ReadTimeout"})
    final = grid_final()
    final["substations"]["substation1"]["sessions"] = [
        {"session_id": "substation1.aaaa", "vehicle_id": h.entries[0]["value"]["vehicle_id"]},
        {"session_id": "substation1.cccc", "vehicle_id": "EV-unknown"}]
    verdict = check(h.entries, final)
    assert kinds(verdict) == [] and verdict["counts"]["final_sessions_matched"] == 2
    final["substations"]["substation2"]["sessions"] = [
        {"session_id": "substation2.bbbb", "vehicle_id": h.entries[2]["value"]["vehicle_id"]},
        {"session_id": "substation2.dddd", "vehicle_id": h.entries[0]["value"]["vehicle_id"]}]
    verdict = check(h.entries, final)
    assert kinds(verdict) == ["double-admission", "phantom-session"]
    assert {v["substation"] for v in verdict["violations"]} == {"substation2"}


def test_finds_load_no_driver_can_hold_and_names_the_timed_out_request():
    """The CI seed's finding: the balancer timed out on substation1, told the car 503, and
    substation1 had admitted it anyway: 22 kW held for nobody until the session expired."""
    h = History()
    h.charge("ev0", 11.0, "substation1", ends_in=30)
    h.op("ev1", "charge", {"vehicle_id": "EV-p", "power_kw": 22.0, "duration_s": 6}, "fail",
         {"status": 503, "error": "no substation has room",
          "detail": "lowest live utilisation with room; skipped substation1 timeout",
          "tried": ["substation1"]})
    h.op("mon", "balancer-view", {}, "ok", {"load_kw": {"substation1": 11.0, "substation2": 0}})
    assert kinds(check(h.entries, grid_final())) == []
    h.op("mon", "balancer-view", {}, "ok", {"load_kw": {"substation1": 33.0, "substation2": 0}})
    verdict = check(h.entries, grid_final())
    assert kinds(verdict) == ["phantom-load"]
    assert indexes(verdict["violations"][0]) == {2, 6}


# -- properties --------------------------------------------------------------------------------

def simulate(seed: int, n_writes: int) -> dict[str, list[dict]]:
    """Three replicas under Birman-Schiper-Stephenson delivery with random network order:
    the logs of a correct causal broadcast."""
    rng = random.Random(seed)
    n = 3
    clocks = [[0] * n for _ in range(n)]
    logs: list[list[dict]] = [[] for _ in range(n)]
    pending: list[list[dict]] = [[] for _ in range(n)]

    def deliverable(i: int, m: dict) -> bool:
        j, vc = m["origin"], m["version"]
        return vc[j] == clocks[i][j] + 1 and all(vc[k] <= clocks[i][k] for k in range(n)
                                                 if k != j)

    def deliver(i: int, m: dict, kind: str) -> None:
        clocks[i] = [max(a, b) for a, b in zip(clocks[i], m["version"], strict=True)]
        logs[i].append({**m, "seq": len(logs[i]) + 1, "kind": kind})

    for w in range(n_writes):
        i = rng.randrange(n)
        vc = list(clocks[i])
        vc[i] += 1
        m = {"origin": i, "key": f"k{rng.randrange(3)}", "value": f"w{w}", "version": vc}
        deliver(i, m, "local")
        for peer in range(n):
            if peer != i:
                pending[peer].append(m)
        for peer in range(n):  # the network delivers some messages, in any order
            rng.shuffle(pending[peer])
            progress = True
            while progress:
                progress = False
                for m2 in list(pending[peer]):
                    if rng.random() < 0.6 and deliverable(peer, m2):
                        pending[peer].remove(m2)
                        deliver(peer, m2, "replicated")
                        progress = True
    return {f"node{i + 1}": logs[i] for i in range(n)}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), n_writes=st.integers(2, 40))
def test_correct_causal_logs_pass_and_any_swap_of_dependent_events_is_found(seed, n_writes):
    logs = simulate(seed, n_writes)
    final = {"nodes": ["node1", "node2", "node3"], "events": logs}
    assert check_delivery_logs(final, {}) == []
    rng = random.Random(seed)
    name = rng.choice(sorted(logs))
    log = logs[name]
    pairs = [(a, b) for a in range(len(log)) for b in range(a + 1, len(log))
             if all(x <= y for x, y in zip(log[a]["version"], log[b]["version"], strict=True))]
    if pairs:
        a, b = rng.choice(pairs)
        log[a], log[b] = log[b], log[a]
        found = check_delivery_logs(final, {})
        assert found and all(v["kind"] == "causal-order" and v["node"] == name for v in found)


# -- independence ------------------------------------------------------------------------------

PRODUCT = {"nodes", "grid", "substations", "balancer", "panel", "common", "stack", "loadtest",
           "bench"}


def test_the_checker_imports_nothing_but_the_standard_library_and_itself():
    for path in sorted((REPO_ROOT / "chaos" / "checker").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert top not in PRODUCT, f"{path.name} imports {name}"
                assert name.startswith("chaos.checker") or top == "__future__" or \
                    top in sys.stdlib_module_names, f"{path.name} imports {name}"
    assert (REPO_ROOT / "chaos" / "__init__.py").read_text().count("import") == 0


def test_the_checker_module_loads_without_the_product(tmp_path: Path):
    """Import it from a copy of chaos/ alone: nothing else of the repository on the path."""
    import shutil
    import subprocess

    shutil.copytree(REPO_ROOT / "chaos" / "checker", tmp_path / "chaos" / "checker")
    (tmp_path / "chaos" / "__init__.py").write_text("")
    code = "\n".join([
        "import sys",
        "sys.path.insert(0, '.')",
        "from chaos.checker import check",
        f"assert sys.modules['chaos.checker'].__file__.startswith({str(tmp_path)!r})",
        f"bad = [m for m in sys.modules if m.split('.')[0] in {sorted(PRODUCT)!r}]",
        "assert not bad, bad",
        "print('ok')"])
    out = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr
