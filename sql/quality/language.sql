-- Language mismatch by script: CJK characters (Han, kana, Hangul) against Latin words.
-- A CJK character weighs as much as a Latin word (one character is roughly one word), so a Chinese
-- answer that uses a few English terms ("在Python中使用list comprehension") stays mostly CJK.
-- Code blocks, inline code and URLs are removed first: code is Latin in any language.
-- Expected script: CJK when the prompt's CJK share is at least 0.5; Latin when the prompt has fewer
-- than 2 CJK characters; otherwise (mixed prompts, e.g. a Chinese instruction over an English text)
-- nothing is expected. A mismatch is an answer with at least $language_min_units script units whose
-- share of the expected script is under $language_min_share. Prompts that name a language or ask for
-- a translation are never judged.
-- language_grade (0..1, a graded signal of the score): the answer's share of the expected script
-- (1 when nothing is expected, the prompt names a language, or the answer has fewer than
-- $language_min_units units), so an English answer with a stray Chinese sentence ranks below a
-- clean one before it is a mismatch.
CREATE OR REPLACE TEMP TABLE quality_language AS
WITH stripped AS (
    SELECT
        _row,
        -- The substring tests skip two regex passes over the many texts without code or links.
        CASE WHEN contains(prompt_text, '`') OR contains(prompt_text, '://')
            THEN regexp_replace(regexp_replace(prompt_text, '```[\s\S]*?```', ' ', 'g'), '`[^`\n]*`|https?://\S+', ' ', 'g')
            ELSE prompt_text END AS prompt,
        CASE WHEN contains(response, '`') OR contains(response, '://')
            THEN regexp_replace(regexp_replace(response, '```[\s\S]*?```', ' ', 'g'), '`[^`\n]*`|https?://\S+', ' ', 'g')
            ELSE response END AS answer,
        regexp_matches(prompt_text, '(?i)translat|english|chinese|japanese|korean|翻译|翻譯|英文|英语|英語|中文|汉语|漢語|日语|日語|韩语') AS names_language
    FROM quality_input
),
units AS (
    -- The regex counts run only where they can change the verdict: pure-ASCII text has no CJK
    -- (strlen = length), and Latin words only matter for text that has some CJK or when the
    -- expected script is CJK.
    SELECT
        _row,
        names_language,
        prompt_cjk,
        CASE WHEN prompt_cjk < 2 THEN CASE WHEN regexp_matches(prompt, '[A-Za-z]') THEN 1 ELSE 0 END
            ELSE len(regexp_extract_all(prompt, '[A-Za-z\x{00C0}-\x{024F}]+')) END AS prompt_latin,
        answer_cjk,
        CASE WHEN answer_cjk > 0 OR prompt_cjk >= 2
            THEN len(regexp_extract_all(answer, '[A-Za-z\x{00C0}-\x{024F}]+'))
            ELSE len(string_split(trim(answer), ' ')) END AS answer_latin
    FROM (
        SELECT
            _row,
            names_language,
            prompt,
            answer,
            CASE WHEN strlen(prompt) = length(prompt) THEN 0
                ELSE length(regexp_replace(prompt, '[^\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]+', '', 'g')) END AS prompt_cjk,
            CASE WHEN strlen(answer) = length(answer) THEN 0
                ELSE length(regexp_replace(answer, '[^\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]+', '', 'g')) END AS answer_cjk
        FROM stripped
    )
),
shares AS (
    SELECT
        _row,
        names_language,
        CASE
            WHEN prompt_cjk + prompt_latin > 0 AND prompt_cjk / (prompt_cjk + prompt_latin) >= 0.5 THEN 'cjk'
            WHEN prompt_cjk < 2 AND prompt_latin > 0 THEN 'latin'
        END AS expected_script,
        answer_cjk + answer_latin AS answer_units,
        CASE WHEN answer_cjk + answer_latin > 0 THEN answer_cjk / (answer_cjk + answer_latin) END AS answer_cjk_share
    FROM units
)
SELECT
    _row,
    round(answer_cjk_share, 4) AS response_cjk_share,
    coalesce(
        NOT names_language
        AND answer_units >= $language_min_units
        AND CASE expected_script
            WHEN 'cjk' THEN answer_cjk_share < $language_min_share
            WHEN 'latin' THEN 1.0 - answer_cjk_share < $language_min_share
            ELSE false END,
        false
    ) AS language_mismatch,
    round(CASE
        WHEN names_language OR answer_units < $language_min_units OR answer_cjk_share IS NULL THEN 1.0
        WHEN expected_script = 'cjk' THEN answer_cjk_share
        WHEN expected_script = 'latin' THEN 1.0 - answer_cjk_share
        ELSE 1.0 END, 4)::DOUBLE AS language_grade
FROM shares
