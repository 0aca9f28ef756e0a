"""Licenses that travel with a training set: the sources' licenses and the teacher's terms.

Two questions decide whether a set may be published and used: may the source prompts be used
(commercially?), and do the teacher's terms allow training another model on its answers? The
teacher terms live in ``data/teacher_terms.json`` (first matching model-id pattern wins); source
licenses are classified from their SPDX-like ids. What blocks publication is a
:class:`~distillset.settings.LicensePolicy` (``settings.licenses``):

- ``block_non_commercial`` (``DISTILLSET_LICENSE_POLICY_BLOCK_NON_COMMERCIAL``, default ``false``):
  block sources under a non-commercial or research-only license (otherwise: a warning on the card).
- ``block_teacher_forbids_training`` (``..._BLOCK_TEACHER_FORBIDS_TRAINING``, default ``true``):
  block when the teacher's terms forbid or restrict training other models on its outputs.
- ``block_unknown`` (``..._BLOCK_UNKNOWN``, default ``false``): block sources with an unknown
  license and teachers whose terms are unknown.

This is a summary to make risks visible, not legal advice.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from distillset.settings import LicensePolicy
from distillset.settings.paths import DATA_DIR

TEACHER_TERMS_PATH = DATA_DIR / "teacher_terms.json"

PERMISSIVE = "permissive"
SHARE_ALIKE = "share_alike"
NON_COMMERCIAL = "non_commercial"
UNKNOWN = "unknown"

TERMS_UNKNOWN = "terms unknown"

_PERMISSIVE_IDS = {
    "mit",
    "apache-2.0",
    "bsd-2-clause",
    "bsd-3-clause",
    "isc",
    "zlib",
    "unlicense",
    "0bsd",
    "cc0",
    "cc0-1.0",
    "cc-by-4.0",
    "cc-by-3.0",
    "cc-by-2.0",
    "odc-by",
    "odc-by-1.0",
    "pddl",
    "public-domain",
    "llama3.1",
    "llama3.2",
    "llama3.3",
    "llama4",
}
_SHARE_ALIKE_IDS = {
    "cc-by-sa-4.0",
    "cc-by-sa-3.0",
    "odbl",
    "odbl-1.0",
    "gpl-3.0",
    "gpl-2.0",
    "lgpl-3.0",
    "agpl-3.0",
    "gfdl",
    "gfdl-1.3",
}
_NON_COMMERCIAL = re.compile(
    r"(^|[-_ ])nc([-_ ]|$)|non[-_ ]?commercial|research[-_ ]?only|academic[-_ ]?only|not for commercial"
)


def classify_source_license(license_id: str | None) -> str:
    """``permissive``, ``share_alike``, ``non_commercial`` or ``unknown`` for a license id.

    Matching is case-insensitive on SPDX-like ids (``MIT``, ``CC-BY-NC-4.0``); free text such as
    "research only" counts as non-commercial.
    """
    text = (license_id or "").strip().lower()
    if not text or text in ("unknown", "none", "other", "noassertion"):
        return UNKNOWN
    if _NON_COMMERCIAL.search(text):
        return NON_COMMERCIAL
    if text in _PERMISSIVE_IDS:
        return PERMISSIVE
    if text in _SHARE_ALIKE_IDS:
        return SHARE_ALIKE
    return UNKNOWN


@dataclass(frozen=True)
class TeacherTerms:
    """What a teacher's terms say about training on its outputs.

    ``allows_training`` is ``yes``, ``restricted`` (forbidden for competing models, or only for
    the vendor's own derivatives), ``no``, or ``terms unknown``.
    """

    model: str
    family: str | None
    license: str | None
    url: str | None
    allows_training: str
    attribution: str | None
    derivative_name_prefix: str | None
    note: str

    @property
    def forbids_training(self) -> bool:
        return self.allows_training in ("no", "restricted")


def _normalized_model_ids(model: str) -> list[str]:
    text = model.strip().lower()
    # Providers spell releases differently: "llama-v3p1" (Fireworks), "llama3.1:8b" (Ollama),
    # "Meta-Llama-3.1-..." (Hugging Face). Bring them to "llama-3.1".
    text = re.sub(r"llama[-_ ]?v?(\d)(?:p|\.|_)(\d)", r"llama-\1.\2", text)
    text = re.sub(r"llama[-_ ]?v?(\d)(?=[-_:]|$)", r"llama-\1-", text)
    return [text, text.rsplit("/", 1)[-1]]


@functools.lru_cache(maxsize=4)
def _load_terms(path: str) -> list[dict]:
    return json.loads(Path(path).read_text(encoding="utf-8"))["terms"]


def teacher_terms(model: str, registry_path: Path | None = None) -> TeacherTerms:
    """The terms of ``model`` from the registry; ``allows_training="terms unknown"`` if none match."""
    for entry in _load_terms(str(registry_path or TEACHER_TERMS_PATH)):
        pattern = entry["pattern"].lower()
        if any(fnmatch.fnmatchcase(candidate, pattern) for candidate in _normalized_model_ids(model)):
            return TeacherTerms(
                model=model,
                family=entry.get("family"),
                license=entry.get("license"),
                url=entry.get("url"),
                allows_training=entry["allows_training"],
                attribution=entry.get("attribution"),
                derivative_name_prefix=entry.get("derivative_name_prefix"),
                note=entry.get("note", ""),
            )
    return TeacherTerms(
        model=model,
        family=None,
        license=None,
        url=None,
        allows_training=TERMS_UNKNOWN,
        attribution=None,
        derivative_name_prefix=None,
        note="No known terms for this model: check its license before training on its outputs.",
    )


@dataclass
class LicenseReport:
    """The licenses of one training set and what they imply."""

    teacher: TeacherTerms
    sources: dict[str, dict[str, str]]
    """source_file -> {"license": ..., "category": ...}"""
    attribution: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)
    policy: LicensePolicy = field(default_factory=LicensePolicy)

    @property
    def non_commercial(self) -> bool:
        return any(s["category"] == NON_COMMERCIAL for s in self.sources.values())

    def to_dict(self) -> dict:
        """A JSON-ready form for the manifest."""
        return {
            "teacher": asdict(self.teacher),
            "sources": self.sources,
            "attribution": self.attribution,
            "warnings": self.warnings,
            "blocking": self.blocking,
            "policy": asdict(self.policy),
        }


def license_report(
    source_licenses: dict[str, str],
    teacher_model: str,
    policy: LicensePolicy | None = None,
) -> LicenseReport:
    """Classify the sources' licenses and the teacher's terms, and apply ``policy``.

    Args:
        source_licenses: source_file -> license id, as recorded in ``raw_prompts.license``.
        teacher_model: the teacher's model id (``meta-llama/Llama-3.1-405B-Instruct``).
        policy: what blocks; the default policy when omitted.

    Returns:
        A report whose ``blocking`` list is empty when publication is allowed.
    """
    policy = policy or LicensePolicy()
    terms = teacher_terms(teacher_model)
    report = LicenseReport(
        teacher=terms,
        sources={
            f: {"license": lic or "unknown", "category": classify_source_license(lic)}
            for f, lic in sorted(source_licenses.items())
        },
        policy=policy,
    )
    if terms.attribution:
        report.attribution.append(terms.attribution)
    if terms.derivative_name_prefix:
        report.warnings.append(
            f"{terms.license}: a model trained on this set must have a name starting with "
            f'"{terms.derivative_name_prefix}" and be distributed with "{terms.attribution}".'
        )

    if terms.forbids_training:
        message = f"teacher {teacher_model}: {terms.license} {terms.allows_training} training on outputs: {terms.note}"
        (report.blocking if policy.block_teacher_forbids_training else report.warnings).append(message)
    elif terms.allows_training == TERMS_UNKNOWN:
        message = f"teacher {teacher_model}: {TERMS_UNKNOWN}; check its license before training on its outputs."
        (report.blocking if policy.block_unknown else report.warnings).append(message)

    for source, info in report.sources.items():
        if info["category"] == NON_COMMERCIAL:
            message = (
                f"source {source} is under a non-commercial license ({info['license']}): the set must not be used "
                "commercially."
            )
            (report.blocking if policy.block_non_commercial else report.warnings).append(message)
        elif info["category"] == UNKNOWN:
            message = f"source {source} has an unknown license ({info['license']})."
            (report.blocking if policy.block_unknown else report.warnings).append(message)
        elif info["category"] == SHARE_ALIKE:
            report.warnings.append(
                f"source {source} is under a share-alike license ({info['license']}): derived data must keep it."
            )
    return report


def version_licenses(
    source_licenses: dict[str, str], teacher_models: list[str], policy: LicensePolicy | None = None
) -> tuple[dict, list[str]]:
    """The manifest's ``licenses`` for a version answered by ``teacher_models``, and what blocks it.

    Returns:
        ``(licenses, blocking)``: the first teacher's report as a dict (other teachers' terms under
        ``other_teachers``, warnings and attributions merged), and every blocking message.
    """
    reports = [license_report(source_licenses, model, policy) for model in teacher_models]
    blocking = [message for report in reports for message in report.blocking]
    licenses = reports[0].to_dict()
    if len(reports) > 1:
        licenses["other_teachers"] = [r.to_dict()["teacher"] for r in reports[1:]]
        licenses["warnings"] = sorted({w for r in reports for w in r.warnings})
        licenses["attribution"] = sorted({a for r in reports for a in r.attribution})
    return licenses, blocking
