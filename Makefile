# pyredcache: set up, build, demo and test on a fresh Debian 12 / Ubuntu.
#
#   make demo    install what is missing, build, run `python -m pyredcache demo`
#   make test    install what is missing, build, run the test suite (C core and
#                pure-Python twin in one run)
#
# With CI=true in the environment (CI sets it; .ci/run is CI's entry point),
# `make test` runs the CI stages instead, in turn, each timed (.ci/stages):
#   lint-imports    the layer contracts of pyproject.toml (import-linter)
#   test-editable   the suite on the in-place build, as without CI=true
#   test-installed  sdist -> wheel built from it -> fresh virtualenv; the
#                   suite from outside the checkout against that install
#   test-sanitize   the core tests under ASan+UBSan on a PYREDCACHE_SANITIZE=1
#                   build made out of tree
#   coverage        C (gcov) and Python (coverage.py) line coverage per file,
#                   from the suite on a PYREDCACHE_COVERAGE=1 out-of-tree build
# Each is also a target of its own.  Out-of-tree builds live in temporary
# directories; the in-place extension is never replaced by them.
#
# Variables: PYTHON (the interpreter for .venv, default python3), and
# PYTEST_ARGS, DEMO_ARGS, BENCH_ARGS (extra arguments for those commands).
# Environment switches honoured by the build: PYREDCACHE_NO_EXTENSIONS,
# PYREDCACHE_REQUIRE_EXTENSIONS, PYREDCACHE_DEBUG_BUILD, PYREDCACHE_COVERAGE,
# PYREDCACHE_SANITIZE, PYREDCACHE_WERROR (see setup.py).  GNU make only.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python

# System packages `make deps` installs when something is missing.
APT_PACKAGES := libhiredis-dev pkg-config redis-server gcc python3-dev python3-venv
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

C_SOURCES := $(wildcard csrc/*.c csrc/*.h)

# Everything that changes the compiled extension.  It is written to
# $(VENV)/.build-config, which changes (and so forces a rebuild) only when
# one of these does: building once without PYREDCACHE_WERROR and then with
# it must compile again, with -Werror; removing a C file must relink.
BUILD_CONFIG := python=$(PYTHON) no_extensions=$(PYREDCACHE_NO_EXTENSIONS) \
	debug=$(PYREDCACHE_DEBUG_BUILD) sanitize=$(PYREDCACHE_SANITIZE) \
	coverage=$(PYREDCACHE_COVERAGE) werror=$(PYREDCACHE_WERROR) \
	sources=$(sort $(C_SOURCES))

# The extension was deleted behind make's back (e.g. by hand): build again.
BUILD_FORCE :=
ifeq ($(strip $(PYREDCACHE_NO_EXTENSIONS)),)
ifeq ($(wildcard pyredcache/_core*.so),)
BUILD_FORCE := FORCE
endif
endif

# CI=true (or 1, yes): `make test` runs the CI stages.
CI_MODE := $(filter true 1 yes,$(shell echo '$(CI)' | tr A-Z a-z))
CI_STAGES := lint-imports test-editable test-installed test-sanitize coverage

.PHONY: help deps venv build demo test test-editable lint-imports test-installed test-sanitize \
	coverage bench fuzz docs clean distclean FORCE

help:
	@echo "make deps       install missing system packages ($(APT_PACKAGES))"
	@echo "make venv       create $(VENV) and install pyredcache (editable) with its test extras"
	@echo "make build      compile the C core in place (when csrc/*, setup.py or build switches changed)"
	@echo "make demo       deps + venv + build, then: $(VPY) -m pyredcache demo"
	@echo "make test       deps + venv + build, then: $(VPY) -m pytest"
	@echo "                (with CI=true: the CI stages $(CI_STAGES))"
	@echo "make lint-imports    check the layer contracts (import-linter, pyproject.toml)"
	@echo "make test-installed  the suite against a wheel built from the sdist, in a fresh venv"
	@echo "make test-sanitize   the core tests under ASan+UBSan (out-of-tree build)"
	@echo "make coverage   C (gcov) and Python (coverage.py) line coverage per file"
	@echo "make bench      run bench/run.py, bench/codec.py, bench/cluster.py, bench/locks.py and bench/containers.py"
	@echo "make fuzz       run fuzz/run.sh"
	@echo "make docs       build the Sphinx docs into docs/_build/html"
	@echo "make clean      remove build products (keeps $(VENV)); distclean also removes $(VENV)"

# Checks each requirement and runs apt-get only when one is missing.
deps:
	@missing=""; \
	command -v pkg-config >/dev/null 2>&1 || missing="$$missing pkg-config"; \
	pkg-config --exists hiredis 2>/dev/null || missing="$$missing libhiredis-dev"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v gcc >/dev/null 2>&1 || missing="$$missing gcc"; \
	$(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	$(PYTHON) -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
		>/dev/null 2>&1 || missing="$$missing python3-dev"; \
	if [ -z "$$missing" ]; then echo "deps: everything is installed"; exit 0; fi; \
	echo "deps: missing:$$missing"; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "deps: no apt-get here; install the equivalents of: $(APT_PACKAGES)" >&2; exit 1; \
	fi; \
	if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null 2>&1; then \
		echo "deps: not root and no sudo; as root run: apt-get install -y $(APT_PACKAGES)" >&2; exit 1; \
	fi; \
	$(SUDO) apt-get update; \
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $(APT_PACKAGES)

venv: $(VENV)/.stamp-install

$(VPY): | deps
	$(PYTHON) -m venv $(VENV)

# The editable install brings the dependencies and makes `import pyredcache`
# find this checkout.  It compiles nothing (PYREDCACHE_NO_EXTENSIONS=1): the
# C core is built in place by the `build` rule below, with the build switches
# taken from the environment, so there is one compile path.
$(VENV)/.stamp-install: pyproject.toml setup.py | $(VPY)
	$(VPY) -m pip install --quiet --upgrade pip 'setuptools>=77' wheel
	PYREDCACHE_NO_EXTENSIONS=1 $(VPY) -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.build-config: FORCE | $(VPY)
	@printf '%s\n' '$(strip $(BUILD_CONFIG))' > $@.tmp; \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

build: $(VENV)/.stamp-build

# In place, the C core is required: a build that cannot compile it fails
# here rather than leaving the tests to find no extension.
$(VENV)/.stamp-build: $(C_SOURCES) setup.py pyproject.toml $(VENV)/.build-config $(VENV)/.stamp-install $(BUILD_FORCE)
	PYREDCACHE_REQUIRE_EXTENSIONS=1 $(VPY) setup.py --quiet build_ext --inplace --force
	touch $@

demo: deps build
	$(VPY) -m pyredcache demo $(DEMO_ARGS)

# pytest exits 5 when it collected no tests; like any non-zero status, that
# fails the target.
ifneq ($(CI_MODE),)
test: deps build $(VENV)/.stamp-ci
	@bash .ci/stages $(CI_STAGES)
else
test: test-editable
endif

test-editable: deps build
	$(VPY) -m pytest $(PYTEST_ARGS)

# What the CI stages need in .venv besides the test extra: build, twine,
# coverage (the `ci` extra).
$(VENV)/.stamp-ci: pyproject.toml setup.py $(VENV)/.stamp-install
	PYREDCACHE_NO_EXTENSIONS=1 $(VPY) -m pip install --quiet -e '.[test,ci]'
	touch $@

# The layers (integrations > features > clients > core), the pure twin's
# independence and the absence of import cycles, as pyproject.toml states
# them; a broken contract names the import that breaks it.
lint-imports: $(VENV)/.stamp-ci
	$(VENV)/bin/lint-imports --no-cache

test-installed: deps $(VENV)/.stamp-ci
	PYTHON='$(PYTHON)' VPY='$(VPY)' bash .ci/installed $(PYTEST_ARGS)

test-sanitize: deps $(VENV)/.stamp-install
	VPY='$(VPY)' bash .ci/sanitize $(PYTEST_ARGS)

coverage: deps $(VENV)/.stamp-ci
	VPY='$(VPY)' bash .ci/coverage $(PYTEST_ARGS)

$(VENV)/.stamp-bench: pyproject.toml setup.py $(VENV)/.stamp-install
	PYREDCACHE_NO_EXTENSIONS=1 $(VPY) -m pip install --quiet -e '.[test,bench]'
	touch $@

bench: deps build $(VENV)/.stamp-bench
	$(VPY) bench/run.py $(BENCH_ARGS)
	$(VPY) bench/codec.py $(BENCH_ARGS)
	$(VPY) bench/cluster.py $(BENCH_ARGS)
	$(VPY) bench/locks.py $(BENCH_ARGS)
	$(VPY) bench/containers.py $(BENCH_ARGS)

fuzz:
	bash fuzz/run.sh

$(VENV)/.stamp-docs: pyproject.toml setup.py $(VENV)/.stamp-install
	PYREDCACHE_NO_EXTENSIONS=1 $(VPY) -m pip install --quiet -e '.[test,docs]'
	touch $@

docs: $(VENV)/.stamp-docs
	$(VENV)/bin/sphinx-build -W docs docs/_build/html

clean:
	rm -rf build dist *.egg-info docs/_build .pytest_cache .hypothesis
	rm -f pyredcache/_core*.so $(VENV)/.stamp-build $(VENV)/.build-config
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
