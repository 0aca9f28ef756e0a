-- The figures of a scored set in one row, for the summary (distillset/quality/summary.py) and the
-- gates (gates.py): the caller puts the scored rows in front of this statement as the CTE
-- `quality_scored` (a catalog partition or a registered frame), so memory holds aggregates, never
-- the rows. Bins are 0.1 wide over [0, 1], the last one closed; the epsilon keeps a score of
-- exactly 0.3 in bin 0.3-0.4 despite binary rounding. Quantiles interpolate linearly.
SELECT
    count(*) AS rows,
    count(*) FILTER (WHERE passed) AS passed,
    count(*) FILTER (WHERE is_refusal) AS refusals,
    count(*) FILTER (WHERE is_truncated) AS truncated,
    avg(score) AS mean_score,
    quantile_cont(score, [0.0, 0.25, 0.5, 0.75, 1.0]) AS quantiles,
    histogram(least(greatest(floor(least(greatest(score, 0.0), 1.0) * 10 + 1e-9), 0), 9)::BIGINT) AS bins,
    histogram(verifiable_result) AS verifiable,
    (SELECT histogram(rule) FROM (SELECT unnest(failed_rules) AS rule FROM quality_scored)) AS failed_rules
FROM quality_scored
