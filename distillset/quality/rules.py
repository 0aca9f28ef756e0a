"""The names of the quality rules, in the order ``failed_rules`` lists them (``sql/quality/score.sql``)."""

from __future__ import annotations

# Rule name -> one-line description.
QUALITY_RULES: dict[str, str] = {
    "empty": "The answer is missing or only whitespace.",
    "truncated": "The teacher stopped at the token limit (finish_reason = 'length').",
    "too_short": "The answer is shorter than the minimum, or tiny next to a long prompt.",
    "too_long": "The answer is longer than the maximum length.",
    "refusal": "The answer refuses or deflects (a phrase from the refusal pattern table opens it).",
    "repetitive": "Repeated lines, repeated 4-grams or a looping tail.",
    "language_mismatch": "The answer is in another script than the prompt (CJK vs Latin).",
    "wrong_answer": "The final answer differs from the reference answer (math-verify equivalence).",
    "no_final_answer": "The prompt has a reference answer, and no final answer can be read from the response.",
    "pii": "An e-mail address or phone number appears in the answer.",
    "secret": "An API key, access token or private key appears in the answer.",
    "names_teacher": 'The teacher names itself or its maker ("I am Llama", "I\'m ChatGPT").',
    "unbalanced_code_fence": "An odd number of ``` fences: a code block never closes.",
    "broken_table": "Consecutive Markdown table rows have different numbers of cells.",
}
