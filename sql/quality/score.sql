-- One row per input row (input order): every signal, the failed rules, the score and the verdict.
-- failed_rules lists the rules the row breaks, minus the ones in $disabled_rules.
-- score is the product, over the failed rules, of each rule's factor below (1.0 when nothing
-- fails); a disabled rule costs nothing. The factors rank rows for sampling and review;
-- `passed` (no failed rule) is the verdict the training set uses.
--   empty 0.0 | refusal 0.1 | secret 0.1 | wrong_answer 0.2 | repetitive 0.3 | truncated 0.4
--   language_mismatch 0.4 | too_short 0.5 | pii 0.5 | names_teacher 0.5 | too_long 0.7
--   unbalanced_code_fence 0.7 | broken_table 0.8
WITH signals AS (
    SELECT
        l._row,
        l.response_chars,
        l.is_empty,
        l.is_truncated,
        l.is_too_short,
        l.is_too_long,
        r.is_refusal,
        r.refusal_kind,
        r.refusal_pattern,
        r.names_teacher,
        r.teacher_pattern,
        p.repetition_ratio,
        p.has_looping_tail,
        p.is_repetitive,
        g.response_cjk_share,
        g.language_mismatch,
        v.verifiable_answer,
        v.verifiable_result,
        k.has_pii,
        k.has_secret,
        f.unbalanced_code_fence,
        f.broken_table,
        list_filter([
            CASE WHEN l.is_empty THEN 'empty' END,
            CASE WHEN l.is_truncated THEN 'truncated' END,
            CASE WHEN l.is_too_short THEN 'too_short' END,
            CASE WHEN l.is_too_long THEN 'too_long' END,
            CASE WHEN r.is_refusal THEN 'refusal' END,
            CASE WHEN p.is_repetitive THEN 'repetitive' END,
            CASE WHEN g.language_mismatch THEN 'language_mismatch' END,
            CASE WHEN v.verifiable_result = 'incorrect' THEN 'wrong_answer' END,
            CASE WHEN k.has_pii THEN 'pii' END,
            CASE WHEN k.has_secret THEN 'secret' END,
            CASE WHEN r.names_teacher THEN 'names_teacher' END,
            CASE WHEN f.unbalanced_code_fence THEN 'unbalanced_code_fence' END,
            CASE WHEN f.broken_table THEN 'broken_table' END
        ], lambda rule: rule IS NOT NULL AND NOT list_contains($disabled_rules, rule)) AS failed_rules
    FROM quality_length AS l
    JOIN quality_refusal AS r USING (_row)
    JOIN quality_repetition AS p USING (_row)
    JOIN quality_language AS g USING (_row)
    JOIN quality_verifiable AS v USING (_row)
    JOIN quality_leaks AS k USING (_row)
    JOIN quality_formatting AS f USING (_row)
)
SELECT
    * EXCLUDE (failed_rules),
    coalesce(list_product(list_transform(failed_rules, lambda rule: CASE rule
        WHEN 'empty' THEN 0.0
        WHEN 'refusal' THEN 0.1
        WHEN 'secret' THEN 0.1
        WHEN 'wrong_answer' THEN 0.2
        WHEN 'repetitive' THEN 0.3
        WHEN 'truncated' THEN 0.4
        WHEN 'language_mismatch' THEN 0.4
        WHEN 'too_short' THEN 0.5
        WHEN 'pii' THEN 0.5
        WHEN 'names_teacher' THEN 0.5
        WHEN 'too_long' THEN 0.7
        WHEN 'unbalanced_code_fence' THEN 0.7
        WHEN 'broken_table' THEN 0.8
        ELSE 1.0 END)), 1.0)::DOUBLE AS score,
    len(failed_rules) = 0 AS passed,
    failed_rules
FROM signals
ORDER BY _row
