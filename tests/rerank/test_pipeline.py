"""Pipeline settings: JSON and URL round trips, clear errors, rules and pins, Studio figures."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ltrec.errors import ConfigError
from ltrec.rerank import (
    STRATEGIES,
    Candidates,
    Context,
    build,
    from_query,
    parse_config,
    setting_keys,
    side_by_side,
    to_dict,
    to_json,
    to_query,
    to_query_string,
)
from tests.rerank.conformance import HYPO, pool, rules_st, shop


@st.composite
def configs(draw):
    name = draw(st.sampled_from(sorted(STRATEGIES)))
    cls = STRATEGIES[name][0]
    data = {
        "strategy": name,
        "rules": draw(rules_st).model_dump(),
        "pool": draw(st.integers(1, 5000)),
    }
    if cls.STRENGTH:
        key = cls.model_fields[cls.STRENGTH].alias or cls.STRENGTH
        data[key] = draw(st.floats(0, cls.STRENGTH_MAX))
    if name == "calibration":
        data["by"] = draw(st.sampled_from(["bucket", "category"]))
        data["alpha"] = draw(st.floats(0.001, 0.5))
    if name == "fair":
        data["adjust_alpha"] = draw(st.booleans())
    return parse_config(data)


@HYPO
@given(cfg=configs())
def test_json_and_url_round_trip(cfg) -> None:
    assert parse_config(to_json(cfg)) == cfg
    assert parse_config(json.loads(json.dumps(to_dict(cfg)))) == cfg
    assert from_query(to_query_string(cfg)) == cfg
    assert from_query(to_query(cfg)) == cfg


def test_url_form_is_flat_and_short() -> None:
    cfg = parse_config(
        {
            "strategy": "tail_boost",
            "beta": 0.3,
            "rules": {"in_stock": True, "exclude_categories": ["Toys", "Books"], "pins": ["A@B@1"]},
        }
    )
    assert to_query(cfg) == [
        ("strategy", "tail_boost"),
        ("beta", "0.3"),
        ("signal", "tail"),
        ("rules.in_stock", "1"),
        ("rules.exclude_categories", "Toys"),
        ("rules.exclude_categories", "Books"),
        ("rules.pins", "A@B@1"),
    ]
    assert cfg.rules.pins[0].item == "A@B" and cfg.rules.pins[0].position == 1
    assert from_query("strategy=tail_boost&beta=0.3&rules.in_stock=1") == parse_config(
        {"strategy": "tail_boost", "beta": 0.3, "rules": {"in_stock": True}}
    )
    # The URL form is accepted wherever a setting is (the CLI's --rerank too).
    assert parse_config("strategy=xquad&lambda=0.4") == parse_config(
        '{"strategy": "xquad", "lambda": 0.4}'
    )
    # A mapping as st.query_params gives it (lists for repeated keys).
    assert from_query({"strategy": "xquad", "lambda": "0.4"}).strength == 0.4


def test_setting_keys_filters_page_state() -> None:
    assert setting_keys(["user", "strategy", "beta", "rules.in_stock", "page"]) == [
        "strategy",
        "beta",
        "rules.in_stock",
    ]


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ('{"strategy": "tail_boost", "beta": 7}', "beta: must be less than or equal to 5"),
        ('{"strategy": "tail_boost", "bta": 1}', "unknown key 'bta' for strategy 'tail_boost'"),
        ('{"strategy": "magic"}', "unknown strategy 'magic'"),
        ('{"strategy": "xquad", "lambda": -0.1}', "lambda: must be greater than or equal to 0"),
        ('{"rules": {"price_min": 9, "price_max": 1}}', "price_min 9.0 is above price_max 1.0"),
        ('{"rules": {"pins": ["A@1", "B@1"]}}', "two pins share a position"),
        ('{"rules": {"colour": "red"}}', "unknown key 'rules.colour'"),
        ('{"strategy": "fair", "p": "lots"}', "p: must be a valid number"),
        ("[1, 2]", "must be a JSON object"),
        ("{beta: 1}", "not valid JSON"),
    ],
)
def test_bad_settings_say_what_is_wrong(value: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(value)
    assert needle in str(err.value)
    assert err.value.exit_code == 2


def test_bad_url_values() -> None:
    with pytest.raises(ConfigError, match="beta"):
        from_query("strategy=tail_boost&beta=abc")
    with pytest.raises(ConfigError, match="given twice"):
        from_query("strategy=tail_boost&beta=1&beta=2")


def test_unknown_category_is_a_clear_error() -> None:
    pipe = build({"rules": {"include_categories": ["Garden gnomes"]}})
    with pytest.raises(ConfigError, match="no category is called 'Garden gnomes'"):
        pipe.rerank(pool(0), shop(), 0, 10)


def test_category_paths_include_sub_categories() -> None:
    ctx = shop()
    r = build({"rules": {"include_categories": ["Home"]}}).rerank(pool(0, m=200), ctx, 0, 20)
    names = {ctx.category_names[c] for c in ctx.category[r.items]}
    assert names == {"Home > Kitchen", "Home > Garden"}


def test_rules_reasons_and_pins() -> None:
    ctx = shop()
    cand = pool(0)
    out_of_pool = next(i for i in range(ctx.n_items) if i not in cand.items and ctx.in_stock[i])
    pin_id = f"SKU{out_of_pool}"
    r = build({"rules": {"in_stock": True, "pins": [f"{pin_id}@2"]}}).rerank(cand, ctx, 0, 10)
    assert r.items[1] == out_of_pool
    assert r.reasons[1] == "pinned by rule (position 2)"
    assert r.base_ranks[1] == 0 and np.isnan(r.base_scores[1]) and np.isnan(r.scores[1])
    assert ctx.in_stock[r.items].all()
    stocked = cand.items[ctx.in_stock[cand.items]]
    assert r.items[0] == stocked[0]
    for rank, (br, why) in enumerate(zip(r.base_ranks, r.reasons, strict=True), start=1):
        if rank == 2:
            continue
        if br > rank:
            assert "removed by rules" in why
        elif br < rank:
            assert why.startswith("moved down")


def test_pin_of_an_out_of_stock_item_is_skipped_with_a_note() -> None:
    ctx = shop()
    gone = int(np.flatnonzero(~ctx.in_stock)[0])
    r = build({"rules": {"in_stock": True, "pins": [f"SKU{gone}@1"]}}).rerank(pool(0), ctx, 0, 5)
    assert gone not in r.items
    assert any("fails a filter rule" in n for n in r.notes)


def test_list_stats_for_the_studio() -> None:
    ctx = shop()
    cand = pool(1)
    base = build(None).rerank(cand, ctx, 1, 10)
    boosted = build({"strategy": "tail_boost", "beta": 1.0}).rerank(cand, ctx, 1, 10)
    b, s = base.stats(ctx), boosted.stats(ctx, base=base)
    assert s.tail_share > b.tail_share
    assert s.arp < b.arp
    assert s.mean_base_score < b.mean_base_score
    assert 0 <= s.overlap < 1 and base.stats(ctx, base=base).overlap == 1.0
    frame = boosted.to_frame(ctx)
    assert list(frame.columns[:4]) == ["rank", "item", "item_id", "base_rank"]
    assert (frame["rank_change"] == frame["base_rank"] - frame["rank"]).all()
    assert set(frame["bucket"]) <= {"head", "tail"}
    ranks = ctx.popularity_rank
    top = int(np.argmax(ctx.popularity))
    assert ranks[top] == 1 and ranks.max() <= ctx.n_items
    assert frame["popularity_rank"].tolist() == ranks[boosted.items].tolist()
    assert set(frame["category"]) <= set(ctx.category_names)


def test_context_from_labels_and_csr_history() -> None:
    from scipy import sparse

    hist = sparse.csr_matrix(np.array([[1, 0, 0, 2], [0, 0, 0, 0]]))
    ctx = Context.from_data(
        [10, 5, 1, 0], bucket=[0, 1, 2, 2], category=["B", None, "A", "B"], history=hist
    )
    assert ctx.bucket_names == ("head", "mid", "tail")
    assert ctx.category.tolist() == [1, -1, 0, 1]
    assert ctx.user_distribution(0, "bucket").tolist() == [0.5, 0.0, 0.5]
    assert ctx.user_distribution(0, "category").tolist() == [0.0, 1.0, 0.0]
    assert ctx.user_tail_share(1) is None
    assert ctx.low_pop[0] == 0.0 and ctx.low_pop[3] == 1.0


def test_candidates_from_row_drops_padding() -> None:
    cand = Candidates.from_row(np.array([3, -1, 5, 7]), np.array([0.1, 0.9, -np.inf, 0.5]))
    assert cand.items.tolist() == [7, 3]


def test_url_is_shareable() -> None:
    cfg = parse_config({"strategy": "fair", "p": 0.4, "rules": {"price_max": 20}})
    link = "https://shop.example/rerank?" + urlencode(to_query(cfg))
    assert from_query(link.split("?", 1)[1]) == cfg


def test_side_by_side_columns_for_the_studio() -> None:
    ctx = shop()
    cols = side_by_side(
        [None, {"strategy": "tail_boost", "beta": 0.5}, {"pool": 20}],
        pool(2),
        ctx,
        2,
        10,
    )
    (base, bs), (boost, st_), (small, _) = cols
    assert bs.overlap == 1.0 and base.setting == "base"
    assert st_.tail_share >= bs.tail_share and boost.setting == "tail_boost beta=0.5"
    assert set(small.items) <= set(pool(2).items[:20])
