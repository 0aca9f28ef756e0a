"""The simulator's per-model accuracy (DISTILLSET_SIMULATOR_MODEL_ACCURACY).

Protects: the pairs parse, bad values are named in one settings error, and a model not listed
keeps the default accuracy.
"""

from __future__ import annotations

import pytest

from distillset.settings import SettingsError, load_settings
from distillset.simulator.accuracy import accuracy_of, parse_model_accuracy


def test_pairs_parse_and_unlisted_models_keep_the_default():
    accuracies = parse_model_accuracy("meta-llama/A=0.9, meta-llama/B=0.55")
    assert accuracies == {"meta-llama/A": 0.9, "meta-llama/B": 0.55}
    assert accuracy_of("other", accuracies, 0.85) == 0.85
    assert parse_model_accuracy("") == {}


@pytest.mark.parametrize("bad", ["a", "a=x", "a=1.5", "=0.5"])
def test_a_bad_value_is_one_settings_error_naming_the_variable(bad):
    with pytest.raises(SettingsError, match="DISTILLSET_SIMULATOR_MODEL_ACCURACY"):
        load_settings({"DISTILLSET_SIMULATOR_MODEL_ACCURACY": bad})
