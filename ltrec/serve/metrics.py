"""``/metrics``: Prometheus text exposition (format 0.0.4), written by hand (a few counters do
not need a client library).

Counted per route template (``/v1/recommendations/{user_id}``, never the raw path, so user ids
neither leak nor explode the series): requests by status, a latency histogram, and for the
lists served: how many came from a fallback and how many of the items served are tail items.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable

#: Latency histogram bucket bounds in seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Counters of one server (thread-safe; read by :meth:`render`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.lists = 0
        self.fallback_lists = 0
        self.items = 0
        self.tail_items = 0
        self.events = 0
        self.reloads: dict[str, int] = defaultdict(int)
        self.arm_lists: dict[str, int] = defaultdict(int)  # lists served per arm (A/B)
        self.impressions = 0  # impressions logged for those lists

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route)
        with self._lock:
            self.requests[(method, route, status)] += 1
            counts = self.buckets.setdefault(key, [0] * (len(BUCKETS) + 1))
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.sums[key] += seconds

    def served(self, fallback: bool, n_items: int, n_tail: int) -> None:
        with self._lock:
            self.lists += 1
            self.fallback_lists += int(fallback)
            self.items += n_items
            self.tail_items += n_tail

    def accepted(self, n: int) -> None:
        with self._lock:
            self.events += n

    def exposed(self, arms: list[str], n_items: int) -> None:
        with self._lock:
            for arm in arms:
                self.arm_lists[arm] += 1
            self.impressions += n_items

    def reloaded(self, outcome: str) -> None:
        with self._lock:
            self.reloads[outcome] += 1

    def render(self, gauges: dict[str, tuple[str, Callable[[], float]]] | None = None) -> str:
        """The exposition text; ``gauges`` adds ``name -> (help, value)`` read now."""
        out: list[str] = []

        def head(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")

        with self._lock:
            head("ltrec_http_requests_total", "counter", "HTTP requests by route and status.")
            for (method, route, status), n in sorted(self.requests.items()):
                out.append(
                    f'ltrec_http_requests_total{{method="{method}",route="{_label(route)}",'
                    f'status="{status}"}} {n}'
                )
            name = "ltrec_http_request_duration_seconds"
            head(name, "histogram", "Time to answer a request, by route.")
            for (method, route), counts in sorted(self.buckets.items()):
                labels = f'method="{method}",route="{_label(route)}"'
                total = 0
                for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                    total += n
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    out.append(f'{name}_bucket{{{labels},le="{le}"}} {total}')
                out.append(f"{name}_sum{{{labels}}} {self.sums[(method, route)]:.6f}")
                out.append(f"{name}_count{{{labels}}} {total}")
            share = self.fallback_lists / self.lists if self.lists else 0.0
            tail = self.tail_items / self.items if self.items else 0.0
            for metric, kind, text, value in (
                ("ltrec_lists_served_total", "counter", "Recommendation lists served.", self.lists),
                (
                    "ltrec_fallback_lists_total",
                    "counter",
                    "Lists served from a fallback (a user without history).",
                    self.fallback_lists,
                ),
                ("ltrec_fallback_share", "gauge", "Share of lists served from a fallback.", share),
                ("ltrec_items_served_total", "counter", "Items in the lists served.", self.items),
                (
                    "ltrec_tail_items_served_total",
                    "counter",
                    "Tail items in the lists served.",
                    self.tail_items,
                ),
                ("ltrec_tail_share", "gauge", "Share of served items that are tail items.", tail),
                ("ltrec_events_accepted_total", "counter", "Events acknowledged.", self.events),
            ):
                head(metric, kind, text)
                out.append(
                    f"{metric} {value:.6g}" if isinstance(value, float) else f"{metric} {value}"
                )
            head("ltrec_reloads_total", "counter", "Reloads of the served run, by outcome.")
            for outcome, n in sorted(self.reloads.items()):
                out.append(f'ltrec_reloads_total{{outcome="{outcome}"}} {n}')
            if self.arm_lists:  # only while an experiment runs
                head("ltrec_arm_lists_total", "counter", "Lists served per arm of the experiment.")
                for arm, n in sorted(self.arm_lists.items()):
                    out.append(f'ltrec_arm_lists_total{{arm="{_label(arm)}"}} {n}')
                head("ltrec_impressions_logged_total", "counter", "Impressions logged durably.")
                out.append(f"ltrec_impressions_logged_total {self.impressions}")
        for metric, (text, read) in (gauges or {}).items():
            head(metric, "gauge", text)
            out.append(f"{metric} {read():.6g}")
        return "\n".join(out) + "\n"
