"""Is the teacher model served at all? Asked of the endpoint's ``/models`` before the first paid call.

A model id typed by hand (the launch dialog, ``--teacher``) with a typo would otherwise fail every
request after its retries; the listing answers in one cheap call. An endpoint without a listing
(404, 405) or one that cannot be asked is not a reason to stop: the caller warns and goes on, and
the requests themselves report what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

import openai

from distillset.teacher.endpoints import TeacherEndpoint

# Enough ids to recognise the right one in an error message, few enough to read.
_LISTED_IDS = 20


class ModelNotServedError(ValueError):
    """The endpoint's ``/models`` does not list the teacher model (nor any accepted alias)."""


def check_model_served(
    endpoint: TeacherEndpoint,
    model: str,
    *,
    aliases: Sequence[str] = (),
    timeout_s: float = 30.0,
) -> str | None:
    """Check ``model`` against the endpoint's ``/models`` listing.

    Args:
        endpoint: where the teacher requests go.
        model: the teacher model id.
        aliases: ids the endpoint may answer with instead (``TEACHER_ACCEPT_MODEL_ALIASES``); one listed is enough.
        timeout_s: for the one listing request.

    Returns:
        None when the model is listed; a warning sentence when the listing could not be read.

    Raises:
        ModelNotServedError: the listing was read and names neither the model nor an alias.
    """
    client = openai.OpenAI(
        base_url=endpoint.base_url, api_key=endpoint.api_key or "not-needed", max_retries=1, timeout=timeout_s
    )
    try:
        served = [m.id for m in client.models.list()]
    except openai.APIStatusError as exc:
        return f"could not check that {model} is served: {endpoint.description} /models answered {exc.status_code}"
    except openai.APIError as exc:
        return f"could not check that {model} is served: {endpoint.description} /models failed ({type(exc).__name__})"
    finally:
        client.close()
    if model in served or any(alias in served for alias in aliases):
        return None
    shown = ", ".join(served[:_LISTED_IDS]) or "no model"
    more = f" and {len(served) - _LISTED_IDS} more" if len(served) > _LISTED_IDS else ""
    raise ModelNotServedError(f"teacher {model} is not served by {endpoint.description}: it serves {shown}{more}")
