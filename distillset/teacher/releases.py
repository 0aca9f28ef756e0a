"""Finding new teacher releases: the models an endpoint serves and, optionally, a model hub lists.

The new-release sensor (``orchestration/sensors.py``) calls :func:`discover_models` and
:func:`match_releases`; everything here is plain HTTP and regular expressions, so it can be tried
from a shell without Dagster::

    from distillset.teacher.releases import discover_models, match_releases
    match_releases(discover_models("http://127.0.0.1:8000/v1", None))

Sources:
- the teacher endpoint's OpenAI-compatible ``GET {base_url}/models`` (``data[].id``);
- a Hugging Face-compatible hub, ``GET {hub_url}/api/models?author=<author>`` (a JSON list of
  objects with ``id`` or ``modelId``), newest first.

API keys are sent as ``Authorization: Bearer`` headers and never appear in an error message.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable

from distillset.settings import DEFAULT_HUB_AUTHOR, DEFAULT_RELEASE_PATTERN

# The hub lists newest first and one page of this size covers every repository an author such as
# meta-llama has ever published, so a new release is always on the one page read (no pagination).
HUB_PAGE_SIZE = 1000
# A model id becomes a Dagster partition key and a folder name: anything longer or carrying
# whitespace or control characters is not a model id we can use.
MAX_MODEL_ID_CHARS = 256
_USABLE_MODEL_ID = re.compile(r"^[^\s\x00-\x1f\x7f]+$")


class ReleaseSourceError(RuntimeError):
    """A release source (teacher endpoint or model hub) could not be read.

    The message names the source by its URL without credentials or query string, and never
    contains an API key.
    """


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"release pattern {pattern!r} is not a valid regular expression: {exc}") from exc


def match_releases(model_ids: Iterable[str], pattern: str = DEFAULT_RELEASE_PATTERN) -> list[str]:
    """The model ids that ``pattern`` finds (``re.search``), deduplicated and sorted.

    Args:
        model_ids: ids from :func:`discover_models`.
        pattern: a regular expression; anchor it with ``^`` to match whole ids from the start.

    Raises:
        ValueError: ``pattern`` is not a valid regular expression.
    """
    compiled = _compile(pattern)
    return sorted({model_id for model_id in model_ids if compiled.search(model_id)})


def discover_models(
    openai_base_url: str | None,
    api_key: str | None,
    *,
    hub_url: str | None = None,
    hub_author: str = DEFAULT_HUB_AUTHOR,
    timeout_s: float = 10.0,
) -> list[str]:
    """Every model id the configured sources list, deduplicated and sorted.

    Args:
        openai_base_url: the teacher endpoint (``.../v1``); ``None`` to skip it.
        api_key: sent to the teacher endpoint only (the hub's public listing needs none).
        hub_url: a Hugging Face-compatible hub (``https://huggingface.co``); ``None`` to skip it.
        hub_author: the hub organisation whose models are listed.
        timeout_s: per request.

    Raises:
        ReleaseSourceError: a configured source is unreachable or answers something that is not a
            model listing. Any source failing fails the whole call, so a caller never mistakes a
            partial listing for a complete one.
        ValueError: no source is configured.
    """
    if not openai_base_url and not hub_url:
        raise ValueError("no release source: give a teacher endpoint base URL or a hub URL")
    found: set[str] = set()
    if openai_base_url:
        found.update(_endpoint_models(openai_base_url, api_key, timeout_s))
    if hub_url:
        found.update(_hub_models(hub_url, hub_author, timeout_s))
    return sorted(found)


def _endpoint_models(base_url: str, api_key: str | None, timeout_s: float) -> list[str]:
    # A plain GET rather than the openai SDK: the SDK insists on a key even for keyless local
    # servers and retries on its own, while a sensor tick wants one quick, bounded attempt.
    url = base_url.rstrip("/") + "/models"
    body = _get_json(url, "teacher endpoint", api_key, timeout_s)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ReleaseSourceError(
            f"teacher endpoint {_safe_url(url)} did not answer an OpenAI model list (no `data` list)"
        )
    return _usable_ids(entry.get("id") for entry in data if isinstance(entry, dict))


def _hub_models(hub_url: str, author: str, timeout_s: float) -> list[str]:
    query = urllib.parse.urlencode({"author": author, "sort": "createdAt", "direction": "-1", "limit": HUB_PAGE_SIZE})
    url = f"{hub_url.rstrip('/')}/api/models?{query}"
    body = _get_json(url, "model hub", None, timeout_s)
    if not isinstance(body, list):
        raise ReleaseSourceError(f"model hub {_safe_url(url)} did not answer a JSON list of models")
    return _usable_ids(entry.get("id") or entry.get("modelId") for entry in body if isinstance(entry, dict))


def _usable_ids(candidates: Iterable[object]) -> list[str]:
    return [
        candidate
        for candidate in candidates
        if isinstance(candidate, str) and len(candidate) <= MAX_MODEL_ID_CHARS and _USABLE_MODEL_ID.match(candidate)
    ]


def _get_json(url: str, source: str, api_key: str | None, timeout_s: float) -> object:
    headers = {"Accept": "application/json", "User-Agent": "distillset-release-sensor"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, headers=headers, method="GET")
    where = f"{source} {_safe_url(url)}"
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        hint = " (check TEACHER_API_KEY)" if exc.code in (401, 403) and source == "teacher endpoint" else ""
        raise ReleaseSourceError(f"{where} answered HTTP {exc.code} {exc.reason}{hint}") from None
    except urllib.error.URLError as exc:
        raise ReleaseSourceError(f"{where} is unreachable: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise ReleaseSourceError(f"{where} is unreachable: {type(exc).__name__}: {exc}") from None
    except ValueError as exc:  # a malformed URL
        raise ReleaseSourceError(f"{where} is not a usable URL: {exc}") from None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReleaseSourceError(f"{where} did not answer JSON: {exc}") from None


def _safe_url(url: str) -> str:
    """``url`` without user info or query string, which may carry credentials."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "<malformed URL>"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
