"""Per-model accuracy of the simulator: several simulated releases, each as good as configured.

``DISTILLSET_SIMULATOR_MODEL_ACCURACY="model-a=0.9,model-b=0.55"`` (``parse_model_accuracy``)
maps a served model id to the share of word problems with a known reference (the answer key) it
answers right; a model not listed keeps ``answers.KNOWN_ANSWER_ACCURACY``. The draw is per request
(model, messages, sampling), so one model's accuracy over many questions is close to its setting,
and the same request always gets the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping


def parse_model_accuracy(text: str | None) -> dict[str, float]:
    """``"model-a=0.9,model-b=0.55"`` -> ``{"model-a": 0.9, "model-b": 0.55}``.

    Raises:
        ValueError: an item without ``=``, an empty model id, or an accuracy outside [0, 1].
    """
    accuracies: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        model, sep, value = item.strip().rpartition("=")
        if not sep or not model.strip():
            raise ValueError(f"{item.strip()!r} is not MODEL=ACCURACY")
        try:
            accuracy = float(value)
        except ValueError:
            raise ValueError(f"{item.strip()!r}: {value!r} is not a number") from None
        if not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"{item.strip()!r}: an accuracy must be in [0, 1]")
        accuracies[model.strip()] = accuracy
    return accuracies


def model_accuracy_problem(text: str) -> str | None:
    """The settings check of ``DISTILLSET_SIMULATOR_MODEL_ACCURACY``: a problem sentence, or None."""
    try:
        parse_model_accuracy(text)
    except ValueError as exc:
        return f"must be MODEL=ACCURACY pairs, comma-separated ({exc})"
    return None


def accuracy_of(model: str, accuracies: Mapping[str, float], default: float) -> float:
    """The configured accuracy of ``model``, or ``default``."""
    return accuracies.get(model, default)
