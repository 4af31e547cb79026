"""The long-budget benchmark's bookkeeping (its run is a benchmark, not a test): fold times survive a resumed
run, which reports finished folds as None, because row (b)'s wall clock is computed from them."""
from experiments.phantom_long_budget import CHAIN, OUR_ROWS, _fold_seconds_record, _slug


def test_fold_seconds_survive_a_resumed_run(tmp_path):
    first = _fold_seconds_record(tmp_path, {CHAIN: {"folds": {0: 100.0, 1: None}}})
    assert first == {CHAIN: {"0": 100.0}}
    resumed = _fold_seconds_record(tmp_path, {CHAIN: {"folds": {0: None, 1: 120.0}}})
    assert resumed == {CHAIN: {"0": 100.0, "1": 120.0}}


def test_rows_get_distinct_folders():
    slugs = [_slug(name) for name, _, _ in OUR_ROWS]
    assert len(set(slugs)) == len(OUR_ROWS) and all(s.replace("_", "").isalnum() for s in slugs)
