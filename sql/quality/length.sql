-- Emptiness, truncation and length signals, and two graded signals of the score (score.sql).
-- Lengths are Unicode characters of the answer with surrounding whitespace removed.
-- too short: under $min_chars characters, or, for a prompt of at least $ratio_min_prompt_chars
-- characters without a reference answer, under $min_length_ratio times the prompt length
-- (a two-line answer to a two-page request). Verifiable rows are exempt from the ratio: "72" is a
-- complete answer to a long word problem.
-- length_grade (0..1): length adequacy against the prompt, 1 - exp(-chars / target) with
-- target = greatest($length_target_chars, $length_target_ratio * prompt characters): an answer of
-- the target length grades 0.63, twice it 0.86, with diminishing returns beyond (too_long is a rule).
-- ending_grade (0..1): 0 when the teacher stopped at the token limit; 1 when the answer ends like a
-- finished text (sentence punctuation, a closing bracket, quote, code fence or math delimiter, a
-- digit, or a last line that is a list item, heading or table row); 0.5 otherwise: it stops
-- mid-sentence, as a cut answer does.
CREATE OR REPLACE TEMP TABLE quality_length AS
WITH answers AS (
    SELECT
        _row,
        finish_reason,
        length(prompt_text) AS prompt_chars,
        reference,
        length(trim(response, ' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13) || chr(160) || chr(12288))) AS response_chars,
        right(rtrim(response, ' ' || chr(9) || chr(10) || chr(13) || chr(12288)), 1) AS last_char,
        string_split(rtrim(response, ' ' || chr(9) || chr(10) || chr(13) || chr(12288)), chr(10))[-1] AS last_line
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
    coalesce(response_chars, 0) > $max_chars AS is_too_long,
    round(1.0 - exp(-coalesce(response_chars, 0)
        / greatest($length_target_chars, $length_target_ratio * coalesce(prompt_chars, 0), 1)), 4)::DOUBLE AS length_grade,
    CASE
        WHEN coalesce(finish_reason = 'length', false) OR coalesce(response_chars, 0) = 0 THEN 0.0
        WHEN contains('.!?。！？…)]}"''”’»`*$|', last_char) OR regexp_matches(last_char, '\d') THEN 1.0
        WHEN regexp_matches(last_line, '^\s*(?:[-*+•]\s|\d+[.)]\s|#{1,6}\s|\|)') THEN 1.0
        ELSE 0.5
    END::DOUBLE AS ending_grade
FROM answers
