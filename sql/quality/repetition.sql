-- Degenerate repetition: three measures, any one over its threshold makes an answer repetitive.
-- line ratio: 1 - distinct/total over the lines of at least $repetition_min_line_chars characters
--   (short lines such as "```", "}" or "---" repeat legitimately), when there are at least
--   $repetition_min_lines of them;
-- n-gram ratio: 1 - distinct/total over word 4-grams (in text with non-ASCII characters a CJK
--   character counts as a word, since Chinese has no spaces), when there are at least
--   $repetition_min_ngrams of them; only the first $repetition_max_tokens tokens are read;
-- looping tail: the last $loop_tail_chars characters occur $loop_min_repeats times or more in the
--   last $loop_window_chars characters (a generation stuck in a loop of period up to a third of the
--   window).
-- repetition_ratio is the larger of the two ratios.
-- Cost guard: DuckDB list functions (split, distinct) cost ~100 ns per element, too much to run on
-- every answer of a large batch. Both ratios are computed only for answers in which one of five
-- 16-character probes (at 1/6 .. 5/6 of the text) already occurs earlier in the text: text that is
-- more than half repeated lines or 4-grams has such a probe, natural prose seldom does. instr()
-- is a fast scan; the probes are spelled out because a lambda over them measured several times
-- slower, and instr() three times faster than counting occurrences with replace().
CREATE OR REPLACE TEMP TABLE quality_repetition AS
WITH texts AS (
    SELECT
        _row,
        rtrim(response, ' ' || chr(9) || chr(10) || chr(13)) AS answer
    FROM quality_input
),
probed AS (
    SELECT
        _row,
        answer,
        length(answer) >= 64 AND (
            instr(answer, substring(answer, 1 + (length(answer) - 16) * 1 // 6, 16)) < 1 + (length(answer) - 16) * 1 // 6
            OR instr(answer, substring(answer, 1 + (length(answer) - 16) * 2 // 6, 16)) < 1 + (length(answer) - 16) * 2 // 6
            OR instr(answer, substring(answer, 1 + (length(answer) - 16) * 3 // 6, 16)) < 1 + (length(answer) - 16) * 3 // 6
            OR instr(answer, substring(answer, 1 + (length(answer) - 16) * 4 // 6, 16)) < 1 + (length(answer) - 16) * 4 // 6
            OR instr(answer, substring(answer, 1 + (length(answer) - 16) * 5 // 6, 16)) < 1 + (length(answer) - 16) * 5 // 6
        ) AS has_repeated_probe
    FROM texts
),
parts AS (
    SELECT
        _row,
        answer,
        CASE WHEN has_repeated_probe THEN list_filter(
            list_transform(string_split(answer, chr(10)), lambda line: trim(line)),
            lambda line: length(line) >= $repetition_min_line_chars
        ) END AS lines,
        CASE
            WHEN NOT has_repeated_probe THEN NULL
            WHEN strlen(answer) = length(answer) THEN list_filter(
                string_split(lower(translate(answer, chr(9) || chr(10) || chr(13), '   ')), ' '),
                lambda token: token <> '')[1:$repetition_max_tokens]
            ELSE regexp_extract_all(
                lower(answer),
                '[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]|[^\s\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]+'
            )[1:$repetition_max_tokens]
        END AS tokens,
        right(answer, $loop_window_chars) AS tail_window,
        right(answer, $loop_tail_chars) AS tail_unit
    FROM probed
),
ratios AS (
    SELECT
        _row,
        CASE WHEN len(lines) >= $repetition_min_lines
            THEN 1.0 - len(list_distinct(lines)) / len(lines) ELSE 0.0 END AS line_ratio,
        CASE WHEN len(tokens) - 3 >= $repetition_min_ngrams
            THEN 1.0 - len(list_distinct(list_transform(
                range(1, len(tokens) - 2),
                lambda i: hash(tokens[i], tokens[i + 1], tokens[i + 2], tokens[i + 3])
            ))) / (len(tokens) - 3)
            ELSE 0.0 END AS ngram_ratio,
        length(answer) >= $loop_tail_chars * $loop_min_repeats
            AND (length(tail_window) - length(replace(tail_window, tail_unit, ''))) // length(tail_unit)
                >= $loop_min_repeats AS looping
    FROM parts
)
SELECT
    _row,
    round(coalesce(greatest(line_ratio, ngram_ratio), 0.0), 4) AS repetition_ratio,
    coalesce(looping, false) AS has_looping_tail,
    coalesce(line_ratio > $repetition_max_ratio OR ngram_ratio > $repetition_max_ratio OR looping, false)
        AS is_repetitive
FROM ratios
