-- Markdown formatting defects.
-- unbalanced_code_fence: an odd number of lines opening with ``` (up to 3 spaces of indentation, as
-- in CommonMark): a code block that never closes swallows the rest of the answer.
-- broken_table: two consecutive table lines (lines starting with "|") with different numbers of
-- cells; escaped pipes (\|) are not separators, and a missing leading or trailing pipe does not
-- change the count. Only answers with two such lines in a row pay for the line split.
-- format_grade (0..1, a graded signal of the score): 1, or 0.6 for a wall of text (an answer of at
-- least $wall_of_text_chars characters without a single line break), which a reader cannot scan.
CREATE OR REPLACE TEMP TABLE quality_formatting AS
WITH answers AS (
    SELECT
        _row,
        response,
        CASE WHEN contains(response, '|')
            AND regexp_matches(response, '(?m)^[ \t]*\|.*\n[ \t]*\|') THEN list_transform(
            string_split(response, chr(10)),
            lambda line: CASE WHEN starts_with(trim(line), '|') THEN
                length(replace(trim(line), '\|', ''))
                - length(replace(replace(trim(line), '\|', ''), '|', ''))
                - CASE WHEN ends_with(trim(line), '|') AND length(trim(line)) > 1 THEN 2 ELSE 1 END
            END
        ) END AS separators_per_line
    FROM quality_input
)
SELECT
    _row,
    coalesce(contains(response, '```')
        AND len(regexp_extract_all(response, '(?m)^ {0,3}```')) % 2 = 1, false) AS unbalanced_code_fence,
    coalesce(list_bool_or(list_transform(
        range(2, len(separators_per_line) + 1),
        lambda i: separators_per_line[i] IS NOT NULL
            AND separators_per_line[i - 1] IS NOT NULL
            AND separators_per_line[i] <> separators_per_line[i - 1]
    )), false) AS broken_table,
    CASE WHEN length(response) >= $wall_of_text_chars AND NOT contains(response, chr(10)) THEN 0.6 ELSE 1.0 END::DOUBLE
        AS format_grade
FROM answers
