"""The typed records of the format room: the network description read from untrusted JSON,
and a stored analysis as a record."""

from __future__ import annotations

import numpy as np
import pytest

import trajscope
from trajscope.format.network import FACTORIES, NetworkSpec, NetworkSpecError

GOOD = {
    "kind": "ppo",
    "factory": "brax.training.agents.ppo.networks.make_ppo_networks",
    "algorithm": "ppo",
    "kwargs": {"policy_hidden_layer_sizes": [32, 32], "activation": {"activation": "swish"}},
    "observation_size": {"state": [5], "pixels/view_0": [12, 16, 3]},
    "action_size": 1,
    "normalize_observations": True,
    "why": None,
}


def test_network_spec_round_trips_and_names_what_is_malformed():
    spec = NetworkSpec.from_json(GOOD)
    assert spec.rebuildable and spec.kind in FACTORIES and spec.observation_size["pixels/view_0"] == [12, 16, 3]
    assert NetworkSpec.from_json(spec.to_json()) == spec
    assert NetworkSpec.from_json({**GOOD, "observation_size": 7}).observation_size == 7
    bad = [
        ([1, 2], "must be an object"),
        ({**GOOD, "kind": "os.system"}, "unknown network kind"),
        ({**GOOD, "action_size": "1"}, "action_size"),
        ({**GOOD, "action_size": True}, "action_size"),
        ({**GOOD, "observation_size": [0]}, "impossible shape"),
        ({**GOOD, "observation_size": {"a": "x"}}, "malformed shape"),
        ({**GOOD, "kwargs": [1]}, "kwargs"),
    ]
    for doc, message in bad:
        with pytest.raises(NetworkSpecError, match=message):
            NetworkSpec.from_json(doc)


def test_a_malformed_network_description_is_a_clear_policy_error():
    pytest.importorskip("jax")
    from trajscope.analyse import PolicyUnavailable, load_policy

    with pytest.raises(PolicyUnavailable, match=r"malformed.*action_size"):
        load_policy({**GOOD, "action_size": -3}, {"policy/params/hidden_0/kernel": np.zeros((5, 2))})
    with pytest.raises(PolicyUnavailable, match=r"cannot be rebuilt: mine\.py"):
        load_policy({**GOOD, "kind": None, "why": "mine.py"}, {})


def test_stored_analysis_is_a_record_that_unpacks(tmp_path):
    from trajscope.store import write_analysis

    w = trajscope.RunWriter(tmp_path, name="r", env_name="x")
    w.close()
    run_dir = tmp_path / "r"
    write_analysis(run_dir, {"captures": [{"step": 3}]}, {"points": np.ones((4, 2))}, captures_analysed=["c0"])
    stored = trajscope.open_run(run_dir).analysis()
    assert stored is not None
    doc, arrays = stored
    assert stored.result == doc["analysis"] == {"captures": [{"step": 3}]}
    assert stored.captures_analysed == ["c0"] and stored.created_unix_s and arrays["points"].shape == (4, 2)
