"""Provider Batch API mode (``TEACHER_BATCH=true``): the requests the ledger lacks, sent as batches.

``lines`` builds the JSONL request lines and splits them within the provider's limits, ``store``
keeps the batches in the ledger (intent before upload, the provider's id as soon as it exists),
``submit`` uploads, creates and adopts, ``poll`` follows them, ``ingest`` turns output and error
files into ledger answers and failed lines, ``plan`` decides which requests are due (turn k+1 after
turn k, best-of-N rounds with early stop) and ``run`` drives the rounds.
"""
