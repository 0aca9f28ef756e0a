# The README's commands. uv (bootstrapped with pip when missing) installs exactly what uv.lock pins.
PYTHON ?= python3
UV := $(PYTHON) -m uv
DISTILLSET_HOME ?= $(CURDIR)/.distillset
DAGSTER_HOME ?= $(DISTILLSET_HOME)/dagster
export DISTILLSET_HOME

.PHONY: install demo test ui bench clean

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

## The whole flow on the embedded defaults: sample prompts, teacher simulator, local storage.
demo: install
	$(UV) run --frozen distillset run

test: install
	$(UV) run --frozen pytest

## The Dagster UI on http://127.0.0.1:3000, with a persistent DAGSTER_HOME (shared with `distillset run`).
ui: install
	@mkdir -p "$(DAGSTER_HOME)"
	@[ -f "$(DAGSTER_HOME)/dagster.yaml" ] || cp dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"
	DAGSTER_HOME="$(DAGSTER_HOME)" $(UV) run --frozen dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: install
	$(UV) run --frozen python bench/bench_teacher.py --quick
	$(UV) run --frozen python bench/bench_dedup.py
	$(UV) run --frozen python bench/bench_quality.py

clean:
	rm -rf "$(DISTILLSET_HOME)"
