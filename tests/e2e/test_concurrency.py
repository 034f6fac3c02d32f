"""Ten users at once: ten browser contexts (async Playwright, one Chromium) run mixed flows for a
bounded time against the one server; no errors, and the server's memory growth stays bounded.

The figures (RSS from /proc before, peak, after; flows done) are printed and written to
``test-artifacts/concurrency.json``. ``LTREC_E2E_USERS_S`` sets the duration: 20 s in the suite
(every user still finishes at least one flow while the other nine run theirs); the long run,
75 s, is ``benchmarks/bench_e2e.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
from typing import Any

import pytest

from tests.e2e.harness import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    RUN_COUNTER,
    SETTLED,
    app_pages,
    benign,
    goto,
    retry_waits,
    watch,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

USERS = 10
DURATION_S = float(os.environ.get("LTREC_E2E_USERS_S", "20"))
MAX_GROWTH_MB = 1536  # generous: caches fill as the users open views
STEP_MS = 240_000  # one step may wait this long on two loaded cores


async def settle(pg: Any) -> None:
    await pg.wait_for_function(SETTLED, timeout=STEP_MS, polling=150)
    await pg.wait_for_timeout(200)
    await pg.wait_for_function(SETTLED, timeout=STEP_MS, polling=150)


async def act(pg: Any, action: Any) -> None:
    before = await pg.evaluate("window.__ltrecRuns || 0")
    await action()
    try:
        await pg.wait_for_function(f"(window.__ltrecRuns || 0) > {before}", timeout=20_000)
    except Exception:  # noqa: BLE001 - an action that reran nothing; settle still checks
        pass
    await settle(pg)


async def select(pg: Any, label: str, option: str) -> None:
    box = pg.get_by_role("combobox", name=label, exact=True).first
    item = pg.get_by_role("option", name=option, exact=True)
    if await box.input_value() == option:
        return  # picking the option shown reruns nothing: act would wait its whole 20 s

    async def choose() -> None:
        # A click that lands while the widget is re-rendered opens nothing (seen once in CI: the
        # option never appeared in 240 s); a user clicks again, and so does this.
        for wait in retry_waits(STEP_MS):
            await box.click()
            try:
                await item.wait_for(state="visible", timeout=wait)
                break
            except Exception:  # noqa: BLE001 - not open yet: close whatever is open, retry
                await pg.keyboard.press("Escape")
        await item.click()

    await act(pg, choose)


async def flow_overview(pg: Any, url: str, rng: random.Random) -> None:
    await pg.goto(f"{url}/?ds={rng.choice(['demo', 'xss'])}", wait_until="domcontentloaded")
    await settle(pg)
    assert await pg.locator('[data-testid="stMetricValue"]').count() >= 4


async def flow_long_tail(pg: Any, url: str, rng: random.Random) -> None:
    await pg.goto(f"{url}/long_tail", wait_until="domcontentloaded")
    await settle(pg)
    cuts = pg.locator('[data-testid="stSidebar"] [data-testid="stTextInput"] input').first
    value = rng.choice(["0.5,0.8", "0.6", "0.7,0.9", "0.8"])

    async def change() -> None:
        await cuts.fill(value)
        await cuts.press("Enter")

    await act(pg, change)
    assert await pg.locator('[data-testid="stPlotlyChart"] .main-svg').count() >= 2


async def flow_segments(pg: Any, url: str, rng: random.Random) -> None:
    await pg.goto(f"{url}/segments", wait_until="domcontentloaded")
    await settle(pg)
    dim = rng.choice(["tenure", "tail_affinity", "region", "device"])
    await select(pg, "Segment dimension", dim)
    assert f"seg={dim}" in pg.url


async def flow_rerank(pg: Any, url: str, rng: random.Random) -> None:
    await pg.goto(f"{url}/rerank_studio?user=U{rng.randrange(1, 400):04d}")
    await settle(pg)
    thumb = pg.locator('.st-key-rs_c2_tail_boost_beta input[type="range"]')
    if await thumb.count():

        async def move() -> None:
            await thumb.focus()
            await thumb.press(rng.choice(["End", "Home", "PageUp"]))

        await act(pg, move)


async def flow_pages(pg: Any, url: str, rng: random.Random) -> None:
    """Open two pages of the navigation by clicking their links."""
    titles = [t for t, _ in app_pages()]
    if not pg.url.startswith(url):  # a fresh tab: open the app first
        await pg.goto(url, wait_until="domcontentloaded")
        await settle(pg)
    for title in rng.sample(titles, 2):
        link = pg.locator('[data-testid="stSidebarNavLink"]').filter(has_text=title).first
        await act(pg, link.click)


FLOWS = [flow_overview, flow_long_tail, flow_segments, flow_pages]


async def user(browser: Any, url: str, uid: int, deadline: float, log: dict) -> None:
    rng = random.Random(uid)
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    await ctx.add_init_script(RUN_COUNTER)
    pg = await ctx.new_page()
    pg.set_default_timeout(STEP_MS)
    errors = log["errors"]

    def on_console(msg: Any) -> None:
        loc = msg.location or {}
        if msg.type == "error" and not benign(msg.text, loc.get("url", ""), url):
            errors.append(f"user {uid}: {msg.text} ({loc.get('url', '')})")

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: errors.append(f"user {uid}: pageerror {exc}"))
    flows = [*FLOWS, *([flow_rerank] if any(p == "rerank_studio" for _, p in app_pages()) else [])]
    try:
        # at least one flow each, even when starting Chromium ate the whole duration
        first = True
        while first or time.monotonic() < deadline:
            first = False
            flow = rng.choice(flows)
            t0 = time.monotonic()
            try:
                await flow(pg, url, rng)
                if await pg.locator('[data-testid="stException"]').count():
                    text = await pg.locator('[data-testid="stException"]').first.inner_text()
                    errors.append(f"user {uid}: {flow.__name__}: exception box: {text[:300]}")
            except Exception as exc:  # noqa: BLE001 - every failure is recorded and asserted on
                errors.append(f"user {uid}: {flow.__name__}: {exc.__class__.__name__}: {exc}")
            log["flows"].append((uid, flow.__name__, round(time.monotonic() - t0, 2)))
    finally:
        await ctx.close()


async def crowd(url: str, deadline: float, log: dict) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            await asyncio.gather(*(user(browser, url, i, deadline, log) for i in range(USERS)))
        finally:
            await browser.close()


def test_ten_users_at_once(server, browser):
    # One page view first: the memory growth measured below is then the users', not the first
    # run's library imports (this file may be the first of its worker's browser tests).
    ctx = browser.new_context()
    try:
        goto(watch(ctx, server.url))
    finally:
        ctx.close()
    log: dict = {"errors": [], "flows": []}
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - t0, server.rss_mb()))
            stop.wait(0.5)

    start_mb = server.rss_mb()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # async Playwright in its own thread: the session's sync Playwright owns this one's loop
    runner = threading.Thread(
        target=lambda: asyncio.run(crowd(server.url, time.monotonic() + DURATION_S, log))
    )
    runner.start()
    runner.join()
    stop.set()
    sampler.join()
    end_mb = server.rss_mb()
    peak_mb = max(mb for _, mb in samples)
    per_user = {u: sum(1 for x, _, _ in log["flows"] if x == u) for u in range(USERS)}
    every = 1 + len(samples) // 200  # at most ~200 samples in the file
    report = {
        "users": USERS,
        "duration_s": DURATION_S,
        "wall_s": round(time.monotonic() - t0, 1),
        "server_rss_mb": {
            "start": round(start_mb, 1),
            "peak": round(peak_mb, 1),
            "end": round(end_mb, 1),
            "growth": round(end_mb - start_mb, 1),
            "peak_growth": round(peak_mb - start_mb, 1),
        },
        "flows_done": len(log["flows"]),
        "flows_per_user": per_user,
        "flow_seconds": log["flows"],
        "errors": log["errors"],
        "server_pid_alive": server.proc.poll() is None,
        "note": "2 shared CPU cores, loaded by other work while measured",
        "rss_samples": [(round(t, 1), round(mb, 1)) for t, mb in samples[::every]],
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "concurrency.json").write_text(json.dumps(report, indent=2))
    print(
        f"\n{USERS} users for {DURATION_S:.0f} s: {len(log['flows'])} flows, server RSS "
        f"{start_mb:.0f} -> peak {peak_mb:.0f} -> {end_mb:.0f} MiB "
        f"(growth {end_mb - start_mb:+.0f} MiB)"
    )
    assert server.proc.poll() is None, "the server died"
    assert log["errors"] == [], log["errors"][:10]
    assert all(n >= 1 for n in per_user.values()), per_user
    assert peak_mb - start_mb < MAX_GROWTH_MB
