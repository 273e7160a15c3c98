# The two commands: `make demo` (the main job, on emulators) and `make test` (what CI runs).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck docs pytest bench clean

demo: $(VENV)/.demo
	$(BIN)/rotator sandbox

test: $(VENV)/.test lint typecheck docs pytest

lint: $(VENV)/.test
	$(BIN)/ruff check rotator providers tests benchmarks
	$(BIN)/ruff format --check rotator providers tests benchmarks
	$(BIN)/lint-imports

typecheck: $(VENV)/.test
	$(BIN)/mypy --strict rotator providers

# The documentation site (mkdocs.yml, docs/): a broken link or anchor, or a page left out
# of the nav, fails the build. Built into .site/ (ignored), needing no network.
# NO_MKDOCS_2_WARNING silences the banner Material prints on every build about its
# end of life and its successor, which is no finding about these pages. Not --quiet:
# it drops the warnings strict mode counts, and the build then passes.
docs: $(VENV)/.test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir .site

# Under branch coverage of rotator/ and providers/ (the subprocesses of the end-to-end
# tests included); fails below [tool.coverage.report] fail_under in pyproject.toml.
# `$(BIN)/coverage report -m` afterwards lists what no test reaches.
# Two workers (pytest-xdist), each on its own PostgreSQL database (tests/conftest.py);
# the tests marked `serial` restart a shared server, so they run alone afterwards.
# The sources are compiled first, as pip compiles an installed copy: the tests start
# rotator as a subprocess again and again, and with PYTHONDONTWRITEBYTECODE set,
# each start would otherwise compile every module again (about 0.25 s a start).
# The slowest tests of each run are listed, so that CI's time can be read from its log.
pytest: $(VENV)/.test
	rm -f .coverage .coverage.*
	$(BIN)/python -m compileall -q rotator providers tests benchmarks
	$(BIN)/coverage run -m pytest -q -n 2 --dist worksteal -m "not serial" --durations=25
	$(BIN)/coverage run -m pytest -q -m serial --durations=5
	$(BIN)/coverage combine -q
	@total=$$($(BIN)/coverage report --format=total); status=$$?; \
	  echo "branch coverage of rotator and providers: $$total% (floor: fail_under in pyproject.toml)"; \
	  exit $$status

bench: $(VENV)/.test
	$(BIN)/python benchmarks/policies.py

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.demo: pyproject.toml $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[aws,vault,azure,azure-apim,sandbox]'
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.demo

clean:
	rm -rf $(VENV) .site .mypy_cache .ruff_cache .pytest_cache rotator.db rotator.db.key .coverage .coverage.*
