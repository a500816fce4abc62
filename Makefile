# Two entry points: `make demo` runs the main job, `make test` runs every test.
# Both create the virtual environment and install the project on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test fuzz lint bench clean

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
	$(BIN)/pytest $(ARGS)

# The property-based parser tests with 10,000 generated inputs per parser (CI runs 300).
fuzz: $(STAMP)
	CERTRENEW_HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -m fuzz --timeout=3600 $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

clean:
	rm -rf $(VENV) .certrenew .pytest_cache
