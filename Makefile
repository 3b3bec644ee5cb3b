# Two commands set everything up on a machine with only Python: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DB := demo/loyalty.db

.PHONY: demo test stress bench clean

$(BIN)/loyalty: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	touch $(BIN)/loyalty

demo: $(BIN)/loyalty
	rm -rf demo && mkdir -m 700 demo
	$(BIN)/loyalty --db $(DEMO_DB) -q program load sample_data/program.toml
	$(BIN)/loyalty --db $(DEMO_DB) members import sample_data/members.csv
	$(BIN)/loyalty --db $(DEMO_DB) purchases import sample_data/purchases.csv
	$(BIN)/loyalty --db $(DEMO_DB) -q points expire --as-of 2026-10-31
	$(BIN)/loyalty --db $(DEMO_DB) -q tiers recalc --as-of 2026-10-31
	@echo
	$(BIN)/loyalty --db $(DEMO_DB) dashboard --as-of 2026-10-31
	@echo
	@echo "Try: $(BIN)/loyalty --db $(DEMO_DB) members show M0099"

test: $(BIN)/loyalty
	$(BIN)/python -m pytest -q

stress: $(BIN)/loyalty
	LOYALTY_STRESS=1 $(BIN)/python -m pytest -q -m slow

bench: $(BIN)/loyalty
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/import_bench.py

clean:
	rm -rf $(VENV) demo bench/.data .pytest_cache .hypothesis
