"""Re-ranking: trade a little accuracy for more long-tail exposure (DESIGN §5).

Typical use::

    from ltrec.rerank import Candidates, Context, build
    ctx = Context.from_data(popularity, tail=tail, category=category, history=train_matrix)
    ranked = build({"strategy": "tail_boost", "beta": 0.3}).rerank(
        Candidates(items, scores), ctx, user, k=10
    )
    ranked.to_frame(ctx); ranked.stats(ctx, base=base_ranked)
"""

from ltrec.rerank.base import (
    PAD,
    Candidates,
    Context,
    ListStats,
    Ranked,
    RankedBatch,
    Reranker,
    rerank_batch,
)
from ltrec.rerank.pipeline import (
    STRATEGIES,
    Pipeline,
    RerankConfig,
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
from ltrec.rerank.rules import Pin, RulesConfig
from ltrec.rerank.strategies import (
    BaseOrderConfig,
    CalibratedPopularityConfig,
    CalibrationConfig,
    FairConfig,
    MMRConfig,
    PersonalXQuADConfig,
    StrategyConfig,
    TailBoostConfig,
    TailSelectConfig,
    XQuADConfig,
)

__all__ = [
    "PAD",
    "STRATEGIES",
    "BaseOrderConfig",
    "CalibratedPopularityConfig",
    "CalibrationConfig",
    "Candidates",
    "Context",
    "FairConfig",
    "ListStats",
    "MMRConfig",
    "PersonalXQuADConfig",
    "Pin",
    "Pipeline",
    "Ranked",
    "RankedBatch",
    "RerankConfig",
    "Reranker",
    "RulesConfig",
    "StrategyConfig",
    "TailBoostConfig",
    "TailSelectConfig",
    "XQuADConfig",
    "build",
    "from_query",
    "parse_config",
    "rerank_batch",
    "setting_keys",
    "side_by_side",
    "to_dict",
    "to_json",
    "to_query",
    "to_query_string",
]
