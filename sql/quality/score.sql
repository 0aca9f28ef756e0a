-- One row per input row (input order): every signal, the failed rules, the graded signals, the
-- score and the verdict. failed_rules lists the rules the row breaks, minus those in $disabled_rules.
--
-- score = rule_factor * grade, on 0..1, so it ranks and filters rows, passing ones included:
-- rule_factor is the product, over the failed rules, of each rule's factor below (1.0 when nothing
-- fails; a disabled rule costs nothing):
--   empty 0.0 | refusal 0.1 | secret 0.1 | wrong_answer 0.2 | no_final_answer 0.2 | repetitive 0.3
--   truncated 0.4 | language_mismatch 0.4 | too_short 0.5 | pii 0.5 | names_teacher 0.5
--   too_long 0.7 | unbalanced_code_fence 0.7 | broken_table 0.8
-- grade is the weighted mean of six graded signals, each 0..1:
--   0.25 length_grade (length.sql)  | 0.25 verification_grade | 0.15 repetition_grade
--   0.15 language_grade (language.sql) | 0.10 ending_grade (length.sql) | 0.10 format_grade (formatting.sql)
-- verification_grade: 1.0 verified correct; 0.8 nothing to verify; 0.6 verifiable but not decidable
-- (unverifiable); 0.0 wrong or no final answer. repetition_grade: 1 - repetition_ratio.
-- `passed` (no failed rule) is the verdict the training set uses.
WITH signals AS (
    SELECT
        l._row,
        l.response_chars,
        l.is_empty,
        l.is_truncated,
        l.is_too_short,
        l.is_too_long,
        l.length_grade,
        l.ending_grade,
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
        g.language_grade,
        v.verifiable_result,
        v.verifiable_reason,
        v.verifiable_expected,
        v.verifiable_answer,
        k.has_pii,
        k.has_secret,
        f.unbalanced_code_fence,
        f.broken_table,
        f.format_grade,
        list_filter([
            CASE WHEN l.is_empty THEN 'empty' END,
            CASE WHEN l.is_truncated THEN 'truncated' END,
            CASE WHEN l.is_too_short THEN 'too_short' END,
            CASE WHEN l.is_too_long THEN 'too_long' END,
            CASE WHEN r.is_refusal THEN 'refusal' END,
            CASE WHEN p.is_repetitive THEN 'repetitive' END,
            CASE WHEN g.language_mismatch THEN 'language_mismatch' END,
            CASE WHEN v.verifiable_result = 'wrong' THEN 'wrong_answer' END,
            CASE WHEN v.verifiable_result = 'no_final_answer' THEN 'no_final_answer' END,
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
),
graded AS (
    SELECT
        *,
        CASE verifiable_result
            WHEN 'correct' THEN 1.0
            WHEN 'unverifiable' THEN 0.6
            WHEN 'wrong' THEN 0.0
            WHEN 'no_final_answer' THEN 0.0
            ELSE 0.8 END::DOUBLE AS verification_grade,
        (1.0 - coalesce(repetition_ratio, 0.0))::DOUBLE AS repetition_grade,
        coalesce(list_product(list_transform(failed_rules, lambda rule: CASE rule
        WHEN 'empty' THEN 0.0
        WHEN 'refusal' THEN 0.1
        WHEN 'secret' THEN 0.1
        WHEN 'wrong_answer' THEN 0.2
        WHEN 'no_final_answer' THEN 0.2
        WHEN 'repetitive' THEN 0.3
        WHEN 'truncated' THEN 0.4
        WHEN 'language_mismatch' THEN 0.4
        WHEN 'too_short' THEN 0.5
        WHEN 'pii' THEN 0.5
        WHEN 'names_teacher' THEN 0.5
        WHEN 'too_long' THEN 0.7
        WHEN 'unbalanced_code_fence' THEN 0.7
        WHEN 'broken_table' THEN 0.8
        ELSE 1.0 END)), 1.0)::DOUBLE AS rule_factor
    FROM signals
)
SELECT
    * EXCLUDE (failed_rules, rule_factor),
    round(0.25 * length_grade + 0.25 * verification_grade + 0.15 * repetition_grade
        + 0.15 * language_grade + 0.10 * ending_grade + 0.10 * format_grade, 4)::DOUBLE AS grade,
    round(rule_factor * (0.25 * length_grade + 0.25 * verification_grade + 0.15 * repetition_grade
        + 0.15 * language_grade + 0.10 * ending_grade + 0.10 * format_grade), 4)::DOUBLE AS score,
    len(failed_rules) = 0 AS passed,
    failed_rules
FROM graded
ORDER BY _row
