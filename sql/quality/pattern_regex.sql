-- One regular expression per rule, built from the `refusal_patterns` table: `refusal` (kinds
-- refusal and deflection) and `self_identification`.
-- Patterns are literal phrases, not regexes: they are escaped, lower-cased, their spaces match any
-- run of whitespace, an apostrophe matches a straight or a curly one, and a phrase that ends in a
-- letter or digit must end at a word boundary ("as an ai" does not match "as an aircraft").
-- Longest first: RE2 alternation is leftmost-first, so the most specific phrase is the one reported.
-- The caller passes the result back to refusal.sql as parameters: DuckDB folds a parameter into a
-- constant and compiles the regex once, where a regex read from a table is compiled on every row.
SELECT
    CASE WHEN kind = 'self_identification' THEN kind ELSE 'refusal' END AS rule,
    string_agg(
        replace(replace(regexp_escape(regexp_replace(lower(replace(pattern, '’', '''')), '\s+', ' ', 'g')), '\ ', '\s+'), '\''', '[''’]')
            || CASE WHEN regexp_matches(pattern, '[A-Za-z0-9]$') THEN '\b' ELSE '' END,
        '|'
        ORDER BY length(pattern) DESC, pattern
    ) AS regex
FROM refusal_patterns
GROUP BY rule
ORDER BY rule
