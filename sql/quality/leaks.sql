-- Leaks in the answer: personal data and credentials a student model must never learn to emit.
-- PII: e-mail addresses (except the documentation domains example.com/.org/.net and the reserved
-- .test/.example/.invalid/.localhost TLDs), phone numbers in international (+CC ...), North
-- American (555-123-4567, (555) 123-4567) and Chinese mobile (11 digits from 13..19) shapes.
-- Secrets: OpenAI-style keys (sk-, 20+ characters), AWS access key ids (AKIA + 16), GitHub tokens
-- (ghp_/gho_/ghu_/ghs_/ghr_ + 36), Slack tokens (xox?-), Google API keys (AIza + 35) and PEM
-- private key headers. Cheap substring tests guard the regexes: most answers contain neither.
CREATE OR REPLACE TEMP TABLE quality_leaks AS
SELECT
    _row,
    coalesce(
        (contains(response, '@') AND len(list_filter(
            regexp_extract_all(response, '[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}'),
            lambda address: NOT regexp_matches(lower(address), '@(?:[a-z0-9-]+\.)*example\.(?:com|org|net)$|\.(?:test|example|invalid|localhost)$')
        )) > 0)
        OR regexp_matches(response, '(?:^|[^\w+])(?:\+\d{1,3}[\s.-]?\(?\d{1,4}\)?[\s.-]?\d{3,4}[\s.-]?\d{3,4}|\(\d{3}\)\s?\d{3}[\s.-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4}|1[3-9]\d{9})(?:$|[^\w])'),
        false
    ) AS has_pii,
    coalesce(regexp_matches(
        response,
        '\bsk-[A-Za-z0-9_-]{20,}|\bAKIA[0-9A-Z]{16}\b|\bgh[opusr]_[A-Za-z0-9]{36}\b|\bxox[abprs]-[A-Za-z0-9-]{10,}|\bAIza[0-9A-Za-z_-]{35}\b|-----BEGIN (?:RSA |EC |DSA |OPENSSH )?PRIVATE KEY-----'
    ), false) AS has_secret
FROM quality_input
