"""Scorecards: a model measured on the held-out benchmarks, recorded against dataset versions.

``sets`` reads the evaluation questions from the very files decontamination protects (so no
evaluation question can reach a training set), ``evaluate`` asks a model them through the teacher
ledger at temperature 0 and verifies the answers, ``interval`` gives the 95% interval, ``store``
keeps every evaluation (``$DISTILLSET_HOME/scorecards.sqlite``), and ``gate`` compares a new teacher
release with the incumbent. Plain Python: no Dagster, no environment reads.
"""
