import pytest

from gbg_utils.decoding import ConfigError, DecodingConfig, greedy, item_seed


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"temperature": -0.1}, "temperature must be >= 0"),
        ({"n": 0}, "n must be >= 1"),
        ({"n": 4, "temperature": 0.0}, "greedy decoding has one output"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
    ],
)
def test_bad_configs_are_refused(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        DecodingConfig(**kw)


def test_unknown_parameter_is_named():
    with pytest.raises(ConfigError, match=r"unknown decoding parameter\(s\) \['temprature'\]"):
        DecodingConfig.from_dict({"temprature": 1.0})


def test_key_ignores_n_and_greedy_ignores_sampling_knobs():
    a = DecodingConfig(temperature=1.0, n=4, seed=1)
    assert a.key == a.replace(n=16).key
    assert a.key != a.replace(seed=2).key
    assert a.key != a.replace(temperature=0.7).key
    g = greedy(a)
    assert g.greedy and g.n == 1
    assert g.key == greedy(a.replace(seed=9, top_p=0.5)).key
    assert g.key != greedy(a.replace(repetition_penalty=1.2)).key


def test_item_seed_is_stable_and_identity_dependent():
    c = DecodingConfig(temperature=1.0)
    s = item_seed("m", "gsm8k", "1", c)
    assert s == item_seed("m", "gsm8k", "1", c.replace(n=8))
    assert (
        len(
            {
                s,
                item_seed("m", "gsm8k", "2", c),
                item_seed("m2", "gsm8k", "1", c),
                item_seed("m", "gsm8k", "1", c.replace(seed=1)),
            }
        )
        == 4
    )
    assert 0 <= s < 2**30
