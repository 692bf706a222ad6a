"""Prometheus metrics (API.md §8): requests by route and status, latency, events, view lag, checkpoints."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """One registry per application instance, so tests and workers do not share global state."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "nocert_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "nocert_http_request_duration_seconds", "HTTP request latency by route and status",
            ["method", "route", "status"], registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.events = Gauge("nocert_events_recorded", "Events in the global log (its last position)", registry=self.registry)
        self.view_lag = Gauge("nocert_view_lag_events", "Events recorded but not yet in the views", registry=self.registry)
        self.checkpoint_size = Gauge(
            "nocert_checkpoint_tree_size", "Tree size of the latest signed ledger checkpoint", registry=self.registry
        )
        self.cosigned_size = Gauge(
            "nocert_cosigned_checkpoint_tree_size", "Tree size of the newest checkpoint a witness cosigned (API.md §15)",
            registry=self.registry,
        )
        self.cosigned_age = Gauge(
            "nocert_cosigned_checkpoint_age_seconds",
            "Seconds since the newest checkpoint a witness cosigned was signed (-1 before the first)",
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "nocert_auth_failures_total", "Requests refused for a missing or unknown API key", registry=self.registry
        )
