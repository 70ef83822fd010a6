"""``--model-config`` prefixes match hashes the same way on every backend, in either case."""

from __future__ import annotations

from taskgraph.storage import open_repository


def test_an_upper_case_prefix_finds_the_lower_case_hash(storage_url, make_trial):
    with open_repository(storage_url) as repo:
        for number, auxiliaries in enumerate([(), ("pos",)]):
            config, result = make_trial("ner", auxiliaries, seed=number)
            repo.add_run_result(study="s", trial_number=number, config=config, result=result)
        digest = repo.runs()[0].model_config_hash
        assert digest == digest.lower() and digest != digest.upper()  # hex with letters
        for prefix in (digest.upper(), digest[:6].upper(), digest[:6]):
            assert [r.model_config_hash for r in repo.runs(model_config=prefix)] == [digest] * 2
        assert repo.runs(model_config=digest.upper() + "0") == []
