"""A/B arms without a server: the assignment hash, the split, arm and split parsing, and the
experiment records (new arms -> new id, a restart resumes, a stop keeps the record).

The assignment is recomputed here by an independent integer implementation (the documented
formula: the first 8 bytes of sha256(salt NUL user) against each arm's cumulative threshold
of 2**64), so ``assign`` is checked against the contract, not against itself.
"""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltrec.app import live_experiments as ex
from ltrec.app.live_experiments import Experiment, assign
from ltrec.errors import BadInputError, ConfigError, NotFoundError

SALT = "0123456789abcdef"
BOOST = '{"strategy": "tail_boost", "beta": 0.3}'


def exp_of(split: tuple[float, ...], salt: str = SALT) -> Experiment:
    names = ["control", "boost", "third", "fourth"][: len(split)]
    return Experiment("exp-test", "demo", {n: {} for n in names}, split, salt, "2026-01-01")


def independent(user: str, split: tuple[float, ...], salt: str = SALT) -> int:
    """The arm index by integer arithmetic on exact fractions of the split."""
    h = int.from_bytes(hashlib.sha256(f"{salt}\x00{user}".encode()).digest()[:8], "big")
    total = Fraction(0)
    for i, share in enumerate(split):
        total += Fraction(share)
        if Fraction(h, 2**64) < total:
            return i
    return len(split) - 1


def test_split_of_10k_ids_is_the_exact_count_of_the_hash() -> None:
    users = [f"user-{i:05d}" for i in range(10_000)]
    for split in ((0.5, 0.5), (0.9, 0.1), (0.25, 0.25, 0.25, 0.25), (0.2, 0.3, 0.5)):
        exp = exp_of(split)
        arms = list(exp.arms)
        got = [arms.index(assign(u, exp)) for u in users]
        want = [independent(u, split) for u in users]
        assert got == want
        counts = [got.count(i) for i in range(len(split))]
        # within 4 standard deviations of the configured split
        for c, p in zip(counts, split, strict=True):
            assert abs(c - 10_000 * p) <= 4 * (10_000 * p * (1 - p)) ** 0.5, (split, counts)
    # the fixed salt's 50/50 count, as computed once by the formula above (a drift guard)
    half = exp_of((0.5, 0.5))
    assert sum(assign(u, half) == "control" for u in users) == 4960


@settings(max_examples=200, deadline=None)
@given(
    user=st.text(min_size=1, max_size=40),
    salt=st.text(alphabet="0123456789abcdef", min_size=16, max_size=16),
    weights=st.lists(st.integers(1, 97), min_size=2, max_size=4),
)
def test_assign_is_pure_and_follows_the_formula(user: str, salt: str, weights: list[int]) -> None:
    split = tuple(w / sum(weights) for w in weights)
    exp = exp_of(split, salt)
    arm = assign(user, exp)
    assert arm == assign(user, exp_of(split, salt))  # same record -> same arm
    assert list(exp.arms).index(arm) == independent(user, split, salt)


def test_parse_arms_and_split() -> None:
    arms = ex.parse_arms(
        [
            "control={}",
            f"boost={BOOST}",
            'other={"run": "r1", "strategy": "tail_boost", "beta": 0.2}',
        ]
    )
    assert arms == {
        "control": {},
        "boost": {"strategy": "tail_boost", "beta": 0.3},
        "other": {"run": "r1", "strategy": "tail_boost", "beta": 0.2},
    }
    assert ex.arm_setting(arms["other"]) == ("r1", {"strategy": "tail_boost", "beta": 0.2})
    assert ex.parse_split(None, 4) == (0.25, 0.25, 0.25, 0.25)
    assert ex.parse_split("90, 10", 2) == (0.9, 0.1)


@pytest.mark.parametrize(
    ("specs", "words"),
    [
        (["control={}"], "2 to 4 arms; 1 given"),
        ([f"a{i}={{}}" for i in range(5)], "2 to 4 arms; 5 given"),
        (
            ["control={}", 'boost={"strategy": "nope"}'],
            "arm 'boost': bad re-ranking setting: unknown strategy 'nope'",
        ),  # fmt: skip
        (
            ["control={}", 'boost={"strategy": "tail_boost", "beta": "x"}'],
            "arm 'boost': bad re-ranking setting: beta",
        ),  # fmt: skip
        (["control={}", "boost={oops"], "the policy of arm 'boost' is not valid JSON"),
        (["control={}", "boost=[1]"], "arm 'boost': the policy must be a JSON object"),
        (["control={}", 'boost={"run": 7}'], "arm 'boost': \"run\" must be a run id"),
        (["control={}", "control={}"], "arm 'control' is given twice"),
        (["control={}", "{}"], "bad --arm '{}'"),
        (["control={}", "9lives={}"], "bad --arm '9lives={}'"),
    ],
)
def test_a_bad_arm_is_a_config_error_naming_it(specs: list[str], words: str) -> None:
    with pytest.raises(ConfigError) as err:
        ex.parse_arms(specs)
    assert words in err.value.message
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("50,40", "sum to 90, not 100"),
        ("50", "1 shares for 2 arms"),
        ("100,0", "each share must be above 0"),
        ("half,half", "bad --split 'half,half'"),
    ],
)
def test_a_bad_split_is_refused(text: str, words: str) -> None:
    with pytest.raises(BadInputError) as err:
        ex.parse_split(text, 2)
    assert words in err.value.message


# ----------------------------------------------------------------------------- records


def test_records_new_arms_new_id_restart_resumes_stop_keeps(tmp_path: Path) -> None:
    ab = ex.parse_arms(["control={}", f"boost={BOOST}"])
    first, stopped = ex.begin(tmp_path, "demo", ab, (0.5, 0.5))
    assert stopped is None and first.id == ex.derive_id("demo", ab, (0.5, 0.5))
    assert first.id.startswith("exp-") and len(first.id) == 14
    assert (first.control, first.running, first.split) == ("control", True, (0.5, 0.5))
    # a restart with the same arms and split: the same experiment, the same salt
    again, stopped = ex.begin(tmp_path, "demo", ab, (0.5, 0.5))
    assert (again, stopped) == (first, None)
    # a new split is a new experiment; the old one is stopped and kept
    second, stopped = ex.begin(tmp_path, "demo", ab, (0.9, 0.1))
    assert second.id != first.id and second.salt != first.salt
    assert stopped is not None and stopped.id == first.id and stopped.stopped_at is not None
    assert [(e.id, e.running) for e in ex.experiments(tmp_path, "demo")] == [
        (first.id, False),
        (second.id, True),
    ]
    assert ex.load_experiment(tmp_path, "demo") == second
    assert ex.load_experiment(tmp_path, "demo", first.id) == stopped
    # stop; the same arms again start a new experiment (a stopped one never resumes)
    done = ex.stop(tmp_path, "demo")
    assert done.id == second.id and not done.running
    assert ex.load_experiment(tmp_path, "demo") == done  # none runs: the newest
    third, stopped = ex.begin(tmp_path, "demo", ab, (0.9, 0.1))
    assert stopped is None and third.id not in (first.id, second.id)
    assert len(ex.experiments(tmp_path, "demo")) == 3
    record = tmp_path / "api" / "experiments" / "demo" / f"{third.id}.json"
    assert Experiment.from_json(json.loads(record.read_text())) == third


def test_explicit_ids_and_unknown_ids(tmp_path: Path) -> None:
    ab = ex.parse_arms(["control={}", f"boost={BOOST}"])
    mine, _ = ex.begin(tmp_path, "demo", ab, (0.5, 0.5), "spring-sale")
    assert mine.id == "spring-sale"
    with pytest.raises(BadInputError, match="'spring-sale' has other arms or another split"):
        ex.begin(tmp_path, "demo", ab, (0.9, 0.1), "spring-sale")
    assert ex.load_experiment(tmp_path, "demo").running  # the refused start stopped nothing
    ex.stop(tmp_path, "demo")
    with pytest.raises(BadInputError, match="a stopped experiment does not resume"):
        ex.begin(tmp_path, "demo", ab, (0.5, 0.5), "spring-sale")
    with pytest.raises(BadInputError, match="bad --experiment"):
        ex.begin(tmp_path, "demo", ab, (0.5, 0.5), "../x")
    with pytest.raises(
        NotFoundError, match=r"no experiment 'nope' .* \(experiments: spring-sale\)"
    ):
        ex.load_experiment(tmp_path, "demo", "nope")
    with pytest.raises(NotFoundError, match="no experiment runs on dataset 'demo'"):
        ex.stop(tmp_path, "demo")
    with pytest.raises(NotFoundError, match="dataset 'other' has no experiments"):
        ex.load_experiment(tmp_path, "other")


def test_deleting_the_dataset_log_removes_its_experiments(tmp_path: Path) -> None:
    from ltrec.app.live_events import dropping_log, wal_path

    ab = ex.parse_arms(["control={}", f"boost={BOOST}"])
    ex.begin(tmp_path, "demo", ab, (0.5, 0.5))
    ex.begin(tmp_path, "other", ab, (0.5, 0.5))
    wal_path("demo", tmp_path).write_bytes(b"")
    with dropping_log("demo", tmp_path):
        pass
    assert ex.experiments(tmp_path, "demo") == []
    assert len(ex.experiments(tmp_path, "other")) == 1  # another dataset's are kept
