"""`hemisphere drill`: simulated users in every location of a running `hemisphere up`, a region
killed and recovered through the control endpoint, and what the users saw: a timeline, latency
and errors per phase, replication lags, RTO, RPO, a single-region baseline.

    records      what a run observes (plain records)
    users        readers, a shopper and a region probe per location; realtime: subscribers
    tokens       the customers' tokens, from the development issuer of `up` (contract v2)
    runner       the scenarios, driving the control endpoint and waiting for each step
    conditions   what the runner waits for
    baseline     the primary alone behind a delay proxy per location
    finals       the acknowledged orders at the end, and every region's copy of them
    timeline, phases, rpo, propagation, report, render, figures   pure: what it all means
    plot         --plot, with matplotlib; dump: --json's observations
    command      the CLI
"""

from hemisphere.drill.command import register

__all__ = ["register"]
