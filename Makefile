# Two entry points: `make demo` runs the main job, `make test` runs every test.
# Both create the virtual environment and install the project on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test fuzz lint bench bench-scan bench-resume bench-waiting clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/certrenew demo --unattended $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -n 4 --dist loadfile $(ARGS)

# The property-based parser tests with 10,000 generated inputs per parser (CI runs 300).
fuzz: $(STAMP)
	CERTRENEW_HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -m fuzz --timeout=3600 $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

# The scan against a minimal asyncio+ssl client on nginx, as whole processes (needs nginx).
bench-scan: $(STAMP)
	$(BIN)/python -m benchmarks.scan_bed $(ARGS)

# From a submitted form to the next question, split into polling, process start and replay.
bench-resume: $(STAMP)
	$(BIN)/python -m benchmarks.resume_latency $(ARGS)

# N renewals waiting at a human step (processes, server memory, database), resumed at once;
# the detection flow over 10,000 targets (needs nginx).
bench-waiting: $(STAMP)
	$(BIN)/python -m benchmarks.waiting_renewals $(ARGS)

clean:
	rm -rf $(VENV) .certrenew .pytest_cache
