"""The placement rule on its own: least loaded healthy host with a free slot, then list order."""

from __future__ import annotations

from ktrdr.backend.execution.placement import HostLedger, HostSlots, choose, placed_reason, rank


def host(
    address: str,
    preference: int,
    *,
    max_sessions: int = 2,
    reported: int = 0,
    placed: int = 0,
    since: int = 0,
    healthy: bool = True,
    accepting: bool = True,
    gpu: bool = False,
) -> HostSlots:
    return HostSlots(
        address, preference, healthy, gpu, accepting, max_sessions, reported, placed, since
    )


def test_least_loaded_first_then_order_of_preference():
    hosts = [
        host("a", 0, reported=1),
        host("b", 1),
        host("c", 2),
        host("d", 3, max_sessions=8, reported=2),  # 2/8 = 0.25: less loaded than a (0.5)
    ]
    assert [h.address for h in rank(hosts, want_gpu=False)] == ["b", "c", "d", "a"]


def test_load_is_the_larger_of_the_hosts_report_and_the_backends_own_count():
    lagging_report = host("a", 0, reported=0, placed=2)  # StartTraining sent, not counted yet
    other_backend = host("b", 1, reported=2, placed=1)  # one session is someone else's
    assert (lagging_report.load, lagging_report.free) == (2, 0)
    assert (other_backend.load, other_backend.free) == (2, 0)
    assert rank([lagging_report, other_backend], want_gpu=False) == []


def test_what_was_placed_after_the_hosts_answer_adds_to_its_report():
    # answered: 1 session (another backend's); since then this backend placed one there
    host_a = host("a", 0, reported=1, placed=1, since=1)
    assert (host_a.load, host_a.free) == (2, 0)
    # placed before the answer: the report may count it already (the larger count wins)
    host_b = host("b", 1, reported=1, placed=1, since=0)
    assert (host_b.load, host_b.free) == (1, 1)


def test_unhealthy_and_draining_hosts_have_no_free_slot():
    down = host("a", 0, healthy=False)
    draining = host("b", 1, accepting=False)
    assert down.free == draining.free == 0
    choice = choose([down, draining], want_gpu=False)
    assert choice.host is None
    # a draining host is healthy: the request waits for it, a down one does not count
    assert [h.address for h in choice.eligible] == ["b"]
    assert choice.busy_text() == "1 host busy (b 0/2 sessions, not accepting)"


def test_a_gpu_request_only_considers_gpu_hosts():
    hosts = [host("cpu", 0), host("gpu", 1, gpu=True, reported=1)]
    choice = choose(hosts, want_gpu=True)
    assert choice.host is not None and choice.host.address == "gpu"
    assert [h.address for h in choice.eligible] == ["gpu"]
    assert "has a GPU" in placed_reason(choice.host, choice)


def test_every_healthy_host_busy_is_not_the_same_as_no_healthy_host():
    busy = choose([host("a", 0, reported=2), host("b", 1, placed=2)], want_gpu=False)
    assert busy.host is None and len(busy.busy) == 2
    assert busy.busy_text(detail=False) == "2 hosts busy"
    assert busy.busy_text() == "2 hosts busy (a 2/2 sessions; b 2/2 sessions)"
    down = choose([host("a", 0, healthy=False)], want_gpu=False)
    assert down.host is None and down.eligible == ()


def test_reason_names_the_host_and_its_load():
    hosts = [host("a", 0, reported=1), host("b", 1)]
    choice = choose(hosts, want_gpu=False)
    assert choice.host is not None
    assert placed_reason(choice.host, choice) == (
        "host b is healthy and the least loaded of 2 (0/2 sessions in use)"
    )
    alone = choose([host("a", 0)], want_gpu=False)
    assert alone.host is not None
    assert placed_reason(alone.host, alone) == "host a is healthy, 0/2 sessions in use"


def test_ledger_counts_placed_operations_and_wakes_on_release():
    ledger = HostLedger()
    woken: list[int] = []
    ledger.on_release = lambda: woken.append(1)
    ledger.place("op1", "a")
    ledger.place("op2", "a")
    ledger.place("op3", "b")
    assert (ledger.count("a"), ledger.count("b"), ledger.count("c")) == (2, 1, 0)
    assert ledger.host_of("op3") == "b"
    assert ledger.release("op1") and not ledger.release("op1")  # once only
    assert ledger.count("a") == 1 and woken == [1]


def test_six_requests_over_three_hosts_of_two_slots_spread_two_each():
    """A burst: every host asked once (all idle), then the requests decided one by one, each
    booked in the ledger before the next is decided."""
    ledger = HostLedger()
    mark = ledger.mark()
    chosen = []
    for n in range(7):
        slots = [
            host(a, i, placed=ledger.count(a), since=ledger.count(a, since=mark))
            for i, a in enumerate("abc")
        ]
        choice = choose(slots, want_gpu=False)
        if choice.host is None:
            chosen.append(None)
            continue
        ledger.place(f"op{n}", choice.host.address)
        chosen.append(choice.host.address)
    assert chosen == ["a", "b", "c", "a", "b", "c", None]
