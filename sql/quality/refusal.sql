-- Refusals, deflections and the teacher naming itself, from the `refusal_patterns` table
-- ($refusal_regex: kinds refusal + deflection; $self_id_regex: kind self_identification; see
-- pattern_regex.sql).
-- A refusal phrase counts when it OPENS a sentence within the first $refusal_head_chars characters
-- (optionally after Markdown emphasis or a short lead-in ending in a comma: "Sorry, I can't..."),
-- or anywhere in an answer of at most $refusal_short_chars characters. In both cases a phrase after
-- an opening quote (" “ 「 『) in its own sentence does not count, so an answer explaining that
-- "I can't help with that" is a common refusal passes. Self-identification counts anywhere, unless
-- quoted the same way. Sentences end at . ! ? 。 ！ ？ or a newline.
CREATE OR REPLACE TEMP TABLE quality_refusal AS
WITH answers AS (
    -- Only the opening is lower-cased: the refusal rules never look further, and copying whole
    -- answers was the largest cost of this step.
    SELECT
        _row,
        response,
        length(response) AS response_chars,
        lower(left(
            ltrim(response, ' ' || chr(9) || chr(10) || chr(13) || chr(12288)),
            greatest($refusal_head_chars, $refusal_short_chars)
        )) AS opening
    FROM quality_input
),
matches AS (
    -- Boolean regexp_matches run as a DFA scan; extracting a capture group needs the much slower
    -- submatch engine, so the contextual rules are tested as booleans and the reported phrase is
    -- the first phrase of the opening (the one the rule matched, unless a quoted one comes first).
    -- The plain phrase scan screens every answer first: most answers contain no phrase at all.
    SELECT
        _row,
        CASE WHEN regexp_matches(opening, $refusal_regex)
            AND (
                regexp_matches(
                    left(opening, $refusal_head_chars),
                    '(?:^|[.!?。！？\n])[\s*_#>]*(?:[^.!?。！？\n"“”「」『』]{0,30}[,，、]\s*)?(?:' || $refusal_regex || ')')
                OR (response_chars <= $refusal_short_chars
                    AND regexp_matches(opening, '(?:^|[.!?。！？\n])[^.!?。！？\n"“「『]*(?:' || $refusal_regex || ')'))
            )
            THEN regexp_extract(opening, $refusal_regex) END AS refusal_match,
        CASE WHEN regexp_matches(response, '(?i)' || $self_id_regex)
            AND regexp_matches(lower(response), '(?:^|[.!?。！？\n])[^.!?。！？\n"“「『]*(?:' || $self_id_regex || ')')
            THEN regexp_extract(lower(response), $self_id_regex) END AS self_id_match
    FROM answers
),
kinds AS (
    -- The same phrase may be listed twice (shipped and user table): one kind per normalized phrase.
    SELECT
        regexp_replace(lower(replace(pattern, '’', '''')), '\s+', ' ', 'g') AS phrase,
        min(kind) AS kind
    FROM refusal_patterns
    WHERE kind IN ('refusal', 'deflection')
    GROUP BY phrase
)
SELECT
    m._row,
    m.refusal_match IS NOT NULL AS is_refusal,
    k.kind AS refusal_kind,
    regexp_replace(replace(m.refusal_match, '’', ''''), '\s+', ' ', 'g') AS refusal_pattern,
    m.self_id_match IS NOT NULL AS names_teacher,
    regexp_replace(replace(m.self_id_match, '’', ''''), '\s+', ' ', 'g') AS teacher_pattern
FROM matches AS m
LEFT JOIN kinds AS k ON k.phrase = regexp_replace(replace(m.refusal_match, '’', ''''), '\s+', ' ', 'g')
