-- Emptiness, truncation and length signals.
-- Lengths are Unicode characters of the answer with surrounding whitespace removed.
-- too short: under $min_chars characters, or, for a prompt of at least $ratio_min_prompt_chars
-- characters without a reference answer, under $min_length_ratio times the prompt length
-- (a two-line answer to a two-page request). Verifiable rows are exempt from the ratio: "72" is a
-- complete answer to a long word problem.
CREATE OR REPLACE TEMP TABLE quality_length AS
WITH answers AS (
    SELECT
        _row,
        finish_reason,
        length(prompt_text) AS prompt_chars,
        reference,
        length(trim(response, ' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13) || chr(160) || chr(12288))) AS response_chars
    FROM quality_input
)
SELECT
    _row,
    coalesce(response_chars, 0) AS response_chars,
    coalesce(response_chars, 0) = 0 AS is_empty,
    coalesce(finish_reason = 'length', false) AS is_truncated,
    coalesce(response_chars, 0) > 0 AND (
        response_chars < $min_chars
        OR (reference IS NULL
            AND prompt_chars >= $ratio_min_prompt_chars
            AND response_chars < $min_length_ratio * prompt_chars)
    ) AS is_too_short,
    coalesce(response_chars, 0) > $max_chars AS is_too_long
FROM answers
