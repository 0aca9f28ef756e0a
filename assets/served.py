"""The teacher model is checked against the endpoint's ``/models`` before anything is paid for it."""

import dagster as dg

from distillset.settings import TeacherSettings
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.served import ModelNotServedError, check_model_served


def require_model_served(
    context: dg.AssetExecutionContext, endpoint: TeacherEndpoint, settings: TeacherSettings
) -> None:
    """Fail the step with a one-line reason when the endpoint does not serve the teacher; warn when it cannot say.

    Raises:
        dg.Failure: ``teacher X is not served by <endpoint>: it serves a, b, c``.
    """
    try:
        warning = check_model_served(
            endpoint, settings.model, aliases=settings.accept_model_aliases, timeout_s=settings.timeout_s
        )
    except ModelNotServedError as exc:
        raise dg.Failure(description=str(exc)) from None
    if warning:
        context.log.warning(f"{warning}; going on")
