# Two commands set everything up on a machine with only Python: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DB := demo/loyalty.db
LOYALTY := $(BIN)/loyalty --db $(DEMO_DB) -q

.PHONY: demo demo-zh messages test stress bench clean

$(BIN)/loyalty: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# compat mode puts the source on sys.path with a .pth (no import-time finder, faster start-up);
	@# if a future setuptools drops it, fall back to the default editable install.
	@# setuptools prints a deprecation banner for compat mode on every install: silenced by its
	@# message alone (PYTHONWARNINGS reaches the build backend); every other warning and error shows.
	PYTHONWARNINGS="$${PYTHONWARNINGS:+$$PYTHONWARNINGS,}ignore:Compat editable installs" \
	  $(BIN)/python -m pip install --quiet -e '.[test,postgres]' --config-settings editable_mode=compat \
	  || $(BIN)/python -m pip install --quiet -e '.[test,postgres]'
	@# bytecode now: with PYTHONDONTWRITEBYTECODE set, every command would compile the sources again
	$(BIN)/python -m compileall -q loyalty_cli
	@# … and of the PostgreSQL driver, which every command on a PostgreSQL --db imports
	$(BIN)/python -m compileall -q $$($(BIN)/python -c "import os, psycopg, psycopg_binary; print(os.path.dirname(psycopg.__file__), os.path.dirname(psycopg_binary.__file__))")
	touch $(BIN)/loyalty

demo: $(BIN)/loyalty
	rm -rf demo && mkdir -m 700 demo
	$(BIN)/loyalty --db $(DEMO_DB) -q init
	$(BIN)/loyalty --db $(DEMO_DB) -q program load sample_data/program.toml
	$(BIN)/loyalty --db $(DEMO_DB) members import sample_data/members.csv
	$(BIN)/loyalty --db $(DEMO_DB) purchases import sample_data/purchases.csv
	@# A month at the counter: rewards, a few redemptions, some feedback for the NPS.
	$(LOYALTY) rewards add COFFEE --name "Free coffee" --cost 150
	$(LOYALTY) rewards add CAKE --name "Slice of cake" --cost 300 --stock 40
	$(LOYALTY) points redeem M0099 --reward CAKE --at 2026-10-20T11:02
	$(LOYALTY) points redeem M0002 500 --at 2026-10-12T09:40
	$(LOYALTY) points redeem M0042 --reward COFFEE --at 2026-10-25T16:15
	$(LOYALTY) points redeem M0120 --reward COFFEE --at 2026-10-28T08:31
	for fb in M0099:10 M0002:9 M0042:8 M0120:9 M0059:6 M0043:10 M0116:3 M0152:9 M0092:7 M0169:10; do \
	  $(LOYALTY) feedback add $${fb%%:*} $${fb##*:} --at 2026-10-30; done
	$(BIN)/loyalty --db $(DEMO_DB) -q points expire --as-of 2026-10-31
	$(BIN)/loyalty --db $(DEMO_DB) -q tiers recalc --as-of 2026-10-31
	@echo
	$(BIN)/loyalty --db $(DEMO_DB) dashboard --as-of 2026-10-31
	@echo
	@echo "Try: $(BIN)/loyalty --db $(DEMO_DB) members show M0099"

# The Chinese sample shop (sample_data/zh/, made by its generate.py), with the dashboard in Chinese.
DEMO_ZH_DB := demo-zh/loyalty.db
LOYALTY_ZH := LOYALTY_LANG=zh $(BIN)/loyalty --db $(DEMO_ZH_DB)
demo-zh: $(BIN)/loyalty
	rm -rf demo-zh && mkdir -m 700 demo-zh
	$(LOYALTY_ZH) -q init
	$(LOYALTY_ZH) program load sample_data/zh/program.toml
	$(LOYALTY_ZH) members import sample_data/zh/members.csv
	$(LOYALTY_ZH) purchases import sample_data/zh/purchases.csv
	$(LOYALTY_ZH) -q rewards add MIANBAO --name "招牌吐司一条" --cost 800
	$(LOYALTY_ZH) -q rewards add KAFEI --name "现磨咖啡一杯" --cost 1500 --stock 50
	$(LOYALTY_ZH) -q points redeem H0001 --reward KAFEI --at 2026-10-20T08:15
	$(LOYALTY_ZH) -q points redeem H0005 --reward MIANBAO --at 2026-10-26T17:40
	for fb in H0001:10 H0002:9 H0004:8 H0005:9 H0007:6 H0010:10 H0012:4 H0015:9; do \
	  $(LOYALTY_ZH) -q feedback add $${fb%%:*} $${fb##*:} --at 2026-10-30; done
	$(LOYALTY_ZH) -q points expire --as-of 2026-10-31
	$(LOYALTY_ZH) -q tiers recalc --as-of 2026-10-31
	@echo
	$(LOYALTY_ZH) dashboard --as-of 2026-10-31
	@echo
	@echo "试试：LOYALTY_LANG=zh $(BIN)/loyalty --db $(DEMO_ZH_DB) members show H0001"

# The translations: extract the messages from the source (tools/messages.py, with ast), merge them
# into the Chinese catalogue (new ones empty: tests/test_i18n.py fails until they are translated)
# and compile it. Needs gettext's msgmerge and msgfmt; the tests need neither.
LOCALE := loyalty_cli/locale
PO := $(LOCALE)/zh_CN/LC_MESSAGES/loyalty.po
messages:
	mkdir -p build
	$(PYTHON) tools/messages.py extract > build/loyalty.pot
	msgmerge --quiet --update --backup=none --no-fuzzy-matching $(PO) build/loyalty.pot
	msgfmt --check --output-file=$(PO:.po=.mo) $(PO)

# The suite on SQLite, then the slow tests one by one by name (the crash harness alone takes about
# five minutes, which looked like a hang), then the suite again on PostgreSQL when its server
# binaries are here (a throwaway server: tests/pg_server.py); the exit status is a failure if any
# run failed. `make test TESTS=tests/test_store.py` runs only the files named; `PG=no` skips the
# PostgreSQL half, `PG=yes` (what .ci/run sets) makes a missing server a failure.
PG ?= auto
test: $(BIN)/loyalty
	@status=0; \
	echo "$(BIN)/python -m pytest -q -m 'not slow' $(TESTS)"; \
	$(BIN)/python -m pytest -q -m "not slow" $(TESTS) || status=$$?; \
	echo; echo "Slow tests next, named as they run: the crash harness kills a 200,000-row import 10 times"; \
	echo "(about five minutes), then 100 Ctrl-Cs at random moments (about half a minute)."; \
	echo "$(BIN)/python -m pytest -v -m slow $(TESTS)"; \
	$(BIN)/python -m pytest -v -m slow $(TESTS) || { code=$$?; [ $$code -eq 5 ] || status=$$code; }; \
	echo; \
	if [ "$(PG)" = no ]; then echo "PostgreSQL half skipped (PG=no)."; \
	elif $(BIN)/python -c "import sys; from tests.pg_server import binaries_dir; sys.exit(binaries_dir() is None)"; then \
	  echo "The suite again on PostgreSQL (a throwaway server in a temporary folder):"; \
	  echo "$(BIN)/python -m pytest -q -m 'not slow' --backend postgresql $(TESTS)"; \
	  $(BIN)/python -m pytest -q -m "not slow" --backend postgresql $(TESTS) || status=$$?; \
	elif [ "$(PG)" = yes ]; then echo "PostgreSQL's server binaries (initdb, pg_ctl, postgres) are not installed: PG=yes fails"; status=1; \
	else echo "PostgreSQL half skipped: its server binaries (initdb, pg_ctl, postgres) are not on this machine."; fi; \
	exit $$status

# The hardening tests, large: 200 kills of the import, 2,000 simulation seeds, more random files,
# 1,000 Ctrl-Cs at random moments.
stress: $(BIN)/loyalty
	LOYALTY_STRESS=1 $(BIN)/python -m pytest -q tests/test_crash.py tests/test_simulation.py tests/test_hostile.py \
	  tests/test_concurrency.py tests/test_concurrency_mixed.py tests/test_signals_pipes.py

bench: $(BIN)/loyalty
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/import_bench.py

clean:
	rm -rf $(VENV) demo bench/.data .pytest_cache .hypothesis
