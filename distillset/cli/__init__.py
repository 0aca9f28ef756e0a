"""Engine-only subcommands of the ``distillset`` command line.

Each module here defines ``NAME``, ``HELP`` (one line), ``configure(parser)`` to add its arguments and
``run(args) -> int`` (the exit code). ``orchestration/cli.py`` lists them; they run without Dagster.
"""
