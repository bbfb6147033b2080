"""Stranded-if-renewed, step by step on the lab's replicated pair, and `check --renewal`."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from conftest import find
from sepm_exporter.judge import renewal
from sepm_exporter.lab import estate
from sepm_exporter.lab.sylink_writer import render
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import load_config


def figures(exporter: Exporter) -> dict[str, float]:
    return {labels["server"]: value for labels, value in find(exporter.exposition, "sepm_renewal_stranded_clients")}


def plan_of(exporter: Exporter) -> renewal.RenewalPlan:
    return renewal.plan_for(exporter.scanner.inventory, exporter.history, exporter.derived.verdicts)


def test_one_server_at_a_time_strands_nobody_both_at_once_everyone(lab: estate.Lab) -> None:
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    assert figures(exporter) == {"SEPM1": 0, "SEPM2": 0, "*": 12}
    assert {labels["server"]: v for labels, v in find(exporter.exposition, "sepm_renewal_unknown_clients")} == {
        "SEPM1": 0, "SEPM2": 0, "*": 0}
    assert [p.what_if.status for p in plan_of(exporter).servers] == ["safe", "safe"]
    assert plan_of(exporter).advice.startswith("renew SEPM1 first")

    lab.renew("SEPM1", new_key=True)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    exporter.full_scan()
    assert figures(exporter) == {"SEPM1": 0, "SEPM2": 12, "*": 12}, "no pull yet: SEPM2's key is all they have"
    plan = plan_of(exporter)
    assert plan.servers[1].what_if.status == "wait", "the outbox already holds the file that saves them"
    assert plan.advice.startswith("wait: SEPM1's new key is in 0 of 12 clients (0%)")
    assert one_rollout(exporter) == 0

    lab.pull(0.5)
    exporter.full_scan()
    assert figures(exporter)["SEPM2"] == 6 and one_rollout(exporter) == 6
    lab.pull(1.0)
    exporter.full_scan()
    assert figures(exporter) == {"SEPM1": 0, "SEPM2": 0, "*": 12}
    text = "\n".join(renewal.render_plan(plan_of(exporter)))
    assert "renewing SEPM2 is now safe: every client embeds SEPM1's new key" in text
    assert "rollout of its new key: 12 of 12 clients (100%)" in text
    assert renewal.plan_data(plan_of(exporter))["now_safe"] == ["renewing SEPM2 is now safe: every client embeds SEPM1's new key"]


def one_rollout(exporter: Exporter) -> float:
    return next(v for labels, v in find(exporter.exposition, "sepm_renewal_rollout_clients") if labels["server"] == "SEPM1")


def test_a_client_listing_only_sepm1_counts_for_sepm1_alone(lab: estate.Lab) -> None:
    group = lab.state.groups[0]
    spec = lab.sylink_spec(group)
    only = dataclasses.replace(spec, certificates=spec.certificates[:1], servers=spec.servers[:1])
    estate.atomic_write(lab.client_path("WS-0001"), render(only))
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    assert figures(exporter) == {"SEPM1": 1, "SEPM2": 0, "*": 12}
    assert plan_of(exporter).servers[0].what_if.stranded == ("WS-0001",)


def test_unknown_clients_are_counted_apart(tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=1, clients=4)
    sepm1, _ = estate.write_split_configs(lab, tmp_path / "split", clients_on="SEPM1")
    exporter = Exporter(load_config(sepm1))
    exporter.full_scan()
    assert figures(exporter) == {"SEPM1": 0, "*": 0}, "SEPM2 is not watched: its key still saves them, as far as told"
    unknown = {labels["server"]: v for labels, v in find(exporter.exposition, "sepm_renewal_unknown_clients")}
    assert unknown == {"SEPM1": 4, "*": 4}, "not safe: unknown"


def test_weak_keys_get_the_keep_key_caveat() -> None:
    assert "clears the sha1 warning" in renewal.keep_key_note("sha1", 2048)
    assert "1024-bit key stays weak" in renewal.keep_key_note("sha1", 1024)
    assert renewal.keep_key_note("sha256", 2048).endswith("strands nobody")


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sepm_exporter", "check", *args], capture_output=True, text=True, timeout=60)


def test_check_renewal_what_if(lab: estate.Lab) -> None:
    both = check("--config", str(lab.config_path), "--renewal", "SEPM1,SEPM2")
    assert both.returncode == 2, both.stdout + both.stderr
    assert "Renewing SEPM1, SEPM2 with a new key now would strand 12 clients (unsafe)" in both.stdout
    assert "safe order: renew SEPM1 first" in both.stdout and "Renewal plan (a new key now):" in both.stdout
    one = check("--config", str(lab.config_path), "--renewal", "SEPM1")
    assert one.returncode == 0, one.stdout + one.stderr
    assert "would strand 0 clients (safe)" in one.stdout
    assert check("--config", str(lab.config_path), "--renewal", "SEPM9").returncode == 1


def test_plan_data_is_plain(lab: estate.Lab) -> None:
    import json

    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    data = renewal.plan_data(plan_of(exporter))
    assert json.loads(json.dumps(data))["all_at_once"] == {"stranded": 12, "unknown": 0, "status": "unsafe"}
    assert [s["server"] for s in data["servers"]] == ["SEPM1", "SEPM2"]  # type: ignore[index]


def test_during_an_outage_the_plan_counts_the_stranded_and_never_reads_safe(lab: estate.Lab) -> None:
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    lab.renew("SEPM1", new_key=True)
    lab.renew("SEPM2", new_key=True)
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    exporter.full_scan()
    plan = plan_of(exporter)
    assert plan.everything.already_count == 12
    assert {p.what_if.status for p in plan.servers} | {plan.everything.status} == {"outage"}
    assert plan.advice.startswith("outage: 12 clients already trust no current key")
    text = "\n".join(renewal.render_plan(plan))
    assert "safe" not in text.replace("unsafe", "").split("note:")[0].replace("safe order", ""), text
    assert "OUTAGE NOW: 12 clients already trust no current key" in text
    data = renewal.plan_data(plan)
    assert data["already_stranded"] == 12 and data["all_at_once"]["status"] == "outage"  # type: ignore[index]


def test_advice_moves_on_once_a_server_is_renewed(lab: estate.Lab) -> None:
    exporter = Exporter(load_config(lab.config_path))
    exporter.full_scan()
    assert plan_of(exporter).advice.startswith("renew SEPM1 first")
    lab.renew("SEPM1", new_key=True)
    exporter.full_scan()
    advice = plan_of(exporter).advice
    assert "renew SEPM1" not in advice and advice.startswith("wait: SEPM1's new key is in 0 of 12 clients"), advice
    lab.publish("SEPM1")
    lab.replicate("SEPM1", "SEPM2")
    lab.pull(1.0)
    exporter.full_scan()
    advice = plan_of(exporter).advice
    assert advice.startswith("SEPM1: renewed with a new key that every client embeds; renew SEPM2 first"), advice


def test_no_client_seen_is_unknown_not_safe(tmp_path: Path) -> None:
    lab = estate.init(tmp_path / "lab", groups=1, clients=2)
    sepm1, *_ = estate.write_split_configs(lab, tmp_path / "split")
    exporter = Exporter(load_config(sepm1))
    exporter.full_scan()
    plan = plan_of(exporter)
    assert plan.servers[0].what_if.status == "unknown" and plan.advice.startswith("no client file is seen")
