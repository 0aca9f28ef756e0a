"""License tracking: teacher terms and source licenses, and the policy that blocks publication.

Protects: Llama releases that allow training on outputs carry "Built with Llama" and the
"Llama" name rule, closed providers' terms block by default, an unknown teacher is marked
"terms unknown", non-commercial sources warn or block by policy, and the policy reads its
documented environment variables.
"""

from __future__ import annotations

import pytest

from distillset.publish.licenses import (
    NON_COMMERCIAL,
    PERMISSIVE,
    TERMS_UNKNOWN,
    UNKNOWN,
    classify_source_license,
    license_report,
    teacher_terms,
)
from distillset.settings import LicensePolicy, SettingsError, load_settings

SOURCES = {"prompts/gsm8k.jsonl": "MIT", "prompts/mt_bench.jsonl": "Apache-2.0"}


@pytest.mark.parametrize(
    "model",
    [
        "meta-llama/Llama-3.1-405B-Instruct",
        "meta-llama/Meta-Llama-3.1-8B-Instruct",
        "accounts/fireworks/models/llama-v3p1-405b-instruct",
        "llama3.1:70b",
        "meta-llama/Llama-3.3-70B-Instruct",
        "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
    ],
)
def test_llama_releases_allow_training_with_attribution(model):
    report = license_report(SOURCES, model, LicensePolicy())
    assert report.teacher.allows_training == "yes"
    assert report.attribution == ["Built with Llama"]
    assert report.teacher.derivative_name_prefix == "Llama"
    assert report.blocking == []
    assert any('name starting with "Llama"' in w for w in report.warnings)


@pytest.mark.parametrize("model", ["gpt-4o", "openai/gpt-4o-mini", "claude-3-5-sonnet-20241022", "gemini-1.5-pro"])
def test_closed_teachers_block_by_default_and_warn_when_allowed(model):
    blocked = license_report(SOURCES, model, LicensePolicy())
    assert blocked.teacher.forbids_training and len(blocked.blocking) == 1 and model in blocked.blocking[0]
    relaxed = license_report(SOURCES, model, LicensePolicy(block_teacher_forbids_training=False))
    assert relaxed.blocking == [] and any(model in w for w in relaxed.warnings)


def test_unknown_teacher_is_marked_terms_unknown():
    report = license_report(SOURCES, "mistralai/Mixtral-8x22B-Instruct-v0.1", LicensePolicy())
    assert report.teacher.allows_training == TERMS_UNKNOWN
    assert report.blocking == [] and any(TERMS_UNKNOWN in w for w in report.warnings)
    assert license_report(SOURCES, "some/private-model", LicensePolicy(block_unknown=True)).blocking


def test_non_commercial_source_warns_or_blocks_by_policy():
    sources = {**SOURCES, "prompts/research.jsonl": "CC-BY-NC-4.0"}
    report = license_report(sources, "meta-llama/Llama-3.1-405B-Instruct", LicensePolicy())
    assert report.non_commercial and report.blocking == []
    assert any("prompts/research.jsonl" in w and "non-commercial" in w for w in report.warnings)
    strict = license_report(sources, "meta-llama/Llama-3.1-405B-Instruct", LicensePolicy(block_non_commercial=True))
    assert len(strict.blocking) == 1 and "prompts/research.jsonl" in strict.blocking[0]
    assert report.to_dict()["sources"]["prompts/research.jsonl"] == {
        "license": "CC-BY-NC-4.0",
        "category": NON_COMMERCIAL,
    }


@pytest.mark.parametrize(
    "license_id,category",
    [
        ("MIT", PERMISSIVE),
        ("apache-2.0", PERMISSIVE),
        ("CC0-1.0", PERMISSIVE),
        ("CC-BY-4.0", PERMISSIVE),
        ("CC-BY-NC-SA-4.0", NON_COMMERCIAL),
        ("research only", NON_COMMERCIAL),
        ("Non-Commercial use", NON_COMMERCIAL),
        ("unknown", UNKNOWN),
        ("", UNKNOWN),
        (None, UNKNOWN),
        ("my-own-license", UNKNOWN),
    ],
)
def test_source_license_classification(license_id, category):
    assert classify_source_license(license_id) == category


def test_unknown_source_blocks_only_when_asked():
    sources = {"prompts/scraped.jsonl": "unknown"}
    assert license_report(sources, "meta-llama/Llama-3.1-405B-Instruct", LicensePolicy()).blocking == []
    assert license_report(sources, "meta-llama/Llama-3.1-405B-Instruct", LicensePolicy(block_unknown=True)).blocking


def test_teacher_terms_match_the_model_id_case_insensitively():
    assert teacher_terms("META-LLAMA/LLAMA-3.2-3B-INSTRUCT").family == "Llama 3.2"
    assert teacher_terms("meta-llama/Meta-Llama-3-70B-Instruct").allows_training == "restricted"


def test_policy_from_env(monkeypatch):
    monkeypatch.setenv("DISTILLSET_LICENSE_POLICY_BLOCK_NON_COMMERCIAL", "true")
    monkeypatch.setenv("DISTILLSET_LICENSE_POLICY_BLOCK_TEACHER_FORBIDS_TRAINING", "0")
    monkeypatch.delenv("DISTILLSET_LICENSE_POLICY_BLOCK_UNKNOWN", raising=False)
    assert load_settings().licenses == LicensePolicy(
        block_non_commercial=True, block_teacher_forbids_training=False, block_unknown=False
    )
    monkeypatch.setenv("DISTILLSET_LICENSE_POLICY_BLOCK_UNKNOWN", "maybe")
    with pytest.raises(SettingsError, match="DISTILLSET_LICENSE_POLICY_BLOCK_UNKNOWN"):
        load_settings()
