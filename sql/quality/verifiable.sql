-- Verifiable answers: the verdict of distillset.verify (the math verifier, math-verify equivalence of
-- final answers), computed once per row in Python before these statements run
-- (distillset/quality/verifiable.py) and handed over as columns of quality_input, so the score, the
-- `distillset score` command and the accuracy gate share one verifier.
-- verifiable_result: 'correct', 'wrong' (rule wrong_answer), 'no_final_answer' (rule
-- no_final_answer: a verifiable prompt answered with no final answer that can be read),
-- 'unverifiable' (too long or complex to compare, or a reference it cannot parse: no rule), or NULL
-- (the row has no reference with a final answer).
CREATE OR REPLACE TEMP TABLE quality_verifiable AS
SELECT
    _row,
    verifiable_result,
    verifiable_reason,
    verifiable_expected,
    verifiable_answer
FROM quality_input
