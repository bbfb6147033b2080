"""The client book on its own: verdicts per shared file, counts that follow every change, a bounded pool."""

from __future__ import annotations

from sepm_exporter.judge.clients import TrustBasis, build_index, trust_basis
from sepm_exporter.judge.history import History
from sepm_exporter.judge.parity import current_server_keys, group_copies
from sepm_exporter.lab import estate
from sepm_exporter.runtime.client_book import ClientBook
from sepm_exporter.settings.config import load_config
from sepm_exporter.sources.scanner import Scanner


def _scanned(lab: estate.Lab) -> tuple[Scanner, ClientBook, TrustBasis]:
    scanner = Scanner(load_config(lab.config_path))
    scanner.scan_all()
    inventory = scanner.inventory
    basis = trust_basis(current_server_keys(inventory, {}), {})
    book = ClientBook()
    assert book.stale_for(basis)  # no index yet
    book.rebase(build_index(group_copies(inventory), History().groups), basis, inventory.clients)
    assert not book.stale_for(basis)
    return scanner, book, basis


def test_clients_holding_one_file_share_one_verdict_and_are_counted_once(lab: estate.Lab) -> None:
    scanner, book, _ = _scanned(lab)
    names = set(scanner.inventory.clients)
    judged = book.judge(names, scanner.inventory.clients)
    assert sorted(n for held, _ in judged.touched for n in held) == sorted(names) and judged.dropped == []
    assert sum(book.group_counts().values()) == len(names) == 12
    by_group: dict[str, set[int]] = {}
    for name, verdict in book.verdicts.items():
        by_group.setdefault(verdict.group_id, set()).add(id(verdict))
        assert name in book.by_canonical[book.canonical_of[name]]
    assert all(len(ids) == 1 for ids in by_group.values())  # one verdict object per group file
    assert {v.status.value for v in book.verdicts.values()} == {"current"}


def test_a_client_gone_leaves_the_counts_and_the_file_index(lab: estate.Lab) -> None:
    scanner, book, _ = _scanned(lab)
    book.judge(set(scanner.inventory.clients), scanner.inventory.clients)
    gone = sorted(scanner.inventory.clients)[0]
    canonical = book.canonical_of[gone]
    del scanner.inventory.clients[gone]
    judged = book.judge({gone}, scanner.inventory.clients)
    assert judged.dropped == [gone] and judged.touched == [] and gone not in judged.check  # gone: nothing to report
    assert gone not in book.verdicts and gone not in book.by_canonical.get(canonical, set())
    assert sum(book.group_counts().values()) == 11


def test_a_new_trust_basis_rejudges_every_client_and_a_new_index_only_those_it_touches(lab: estate.Lab) -> None:
    scanner, book, basis = _scanned(lab)
    inventory = scanner.inventory
    book.judge(set(inventory.clients), inventory.clients)
    index = build_index(group_copies(inventory), History().groups)
    assert book.rebase(index, basis, inventory.clients) == set()  # same files, same keys: nobody
    other = TrustBasis(frozenset({"a" * 64}), frozenset())
    assert book.rebase(index, other, inventory.clients) == set(inventory.clients)


def test_the_pool_is_rebuilt_from_live_verdicts_when_it_outgrows_its_limit(lab: estate.Lab) -> None:
    scanner, book, basis = _scanned(lab)
    inventory = scanner.inventory
    book.pool_limit = 1
    book.judge(set(inventory.clients), inventory.clients)
    assert book.pool_size == 3  # one per group file
    book.rebase(build_index(group_copies(inventory), History().groups), basis, inventory.clients)
    assert book.pool_size == 3 and book.pool_limit == 1024
