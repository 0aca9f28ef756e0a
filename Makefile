# The README's commands. uv installs exactly what uv.lock pins; scripts/uv finds an installed uv or
# bootstraps a private one (a venv under .tools/, never pip into the system Python).
PYTHON ?= python3
export PYTHON
UV := $(CURDIR)/scripts/uv
DISTILLSET_HOME ?= $(CURDIR)/.distillset
DAGSTER_HOME ?= $(DISTILLSET_HOME)/dagster
export DISTILLSET_HOME

.PHONY: install demo lint test ui bench clean

install:
	@$(UV) sync --frozen --quiet

## The whole flow on the embedded defaults: sample prompts, teacher simulator, local storage.
demo: install
	$(UV) run --frozen distillset run

## Lint (ruff, configured in pyproject.toml), then the test suite.
lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

test: lint
	$(UV) run --frozen pytest

## The Dagster UI on http://127.0.0.1:3000, with a persistent DAGSTER_HOME (shared with `distillset run`).
ui: install
	@mkdir -p "$(DAGSTER_HOME)"
	@[ -f "$(DAGSTER_HOME)/dagster.yaml" ] || cp orchestration/dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"
	DAGSTER_HOME="$(DAGSTER_HOME)" $(UV) run --frozen dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## Quick sizes (about 10 minutes on 2 cores); bench/README.md gives the full-size commands.
bench: install
	$(UV) run --frozen python bench/bench_teacher.py
	$(UV) run --frozen python bench/bench_dedup.py --docs 100000 --datasketch-docs 20000
	$(UV) run --frozen python bench/bench_verify.py
	$(UV) run --frozen python bench/bench_quality.py --rows 1000000
	$(UV) run --frozen python bench/bench_publish.py --rows 20000

clean:
	rm -rf "$(DISTILLSET_HOME)"
