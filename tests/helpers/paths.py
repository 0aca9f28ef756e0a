"""Where the project and the test fixtures are, wherever a test module sits."""

from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
