-- Verifiable answers (GSM8K style): compare the teacher's final number with a numeric reference.
-- The reference counts when, without thousands commas, "$", "%", spaces and a final ".", it is a
-- number; otherwise the row is not verifiable (verifiable_result NULL).
-- The teacher's final answer is the first number after the last "####"; else the first number in
-- the last \boxed{...}; else the number right after the last "answer is" / "answer:" / "答案是"
-- (so a closing remark with another number does not count); else the last number in the text.
-- Numbers keep their sign and decimals and drop thousands commas ("1,234." -> 1234), and compare
-- within a relative $numeric_tolerance, so "72.0" equals "72". No number found: 'unparseable' (not a failed rule).
CREATE OR REPLACE TEMP TABLE quality_verifiable AS
WITH refs AS (
    SELECT
        _row,
        response,
        TRY_CAST(regexp_replace(trim(reference), '[,$%\s]|\.$', '', 'g') AS DOUBLE) AS reference_number
    FROM quality_input
),
segments AS (
    SELECT
        _row,
        reference_number,
        CASE
            WHEN reference_number IS NULL OR response IS NULL THEN NULL
            WHEN contains(response, '####') THEN regexp_extract_all(
                string_split(response, '####')[-1], '-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?')[1]
            WHEN contains(response, '\boxed{') THEN regexp_extract_all(
                regexp_extract_all(response, '\\boxed\{([^{}]*)\}', 1)[-1], '-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?')[1]
            ELSE coalesce(
                regexp_extract_all(
                    response,
                    '(?i)(?:answer\s*(?:is|:)|答案\s*(?:是|为|：|:))[\s*$]*(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?)',
                    1)[-1],
                regexp_extract_all(response, '-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?')[-1])
        END AS answer_text
    FROM refs
)
SELECT
    _row,
    TRY_CAST(replace(answer_text, ',', '') AS DOUBLE) AS verifiable_answer,
    CASE
        WHEN reference_number IS NULL THEN NULL
        WHEN TRY_CAST(replace(answer_text, ',', '') AS DOUBLE) IS NULL THEN 'unparseable'
        WHEN abs(TRY_CAST(replace(answer_text, ',', '') AS DOUBLE) - reference_number)
            <= $numeric_tolerance * greatest(1.0, abs(reference_number)) THEN 'correct'
        ELSE 'incorrect'
    END AS verifiable_result
FROM segments
