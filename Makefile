# The two entry points of the README:
#   make bench   build cxxloop into a venv and run the benchmark
#   make test    lint, then build and test on every CPython >= 3.11 on this
#                machine and on 3.14 and 3.15 in a Debian sid root, plus the
#                C++ unit tests and ASan+UBSan builds
SHELL := /bin/bash
PYTHON ?= $(firstword $(shell tools/find-pythons))
PYTHONS ?= $(shell tools/find-pythons)
PYTEST_ARGS ?=
# test-python's venvs are $(VENV)<version>, test-asan's is $(ASAN_VENV); the
# sid runs name theirs apart, so a host with the same version keeps its own.
VENV ?= .venv-
ASAN_VENV ?= .venv-asan
# Interpreters that bookworm lacks, tested inside the sid root
# (tools/sid-root builds it, tools/in-sid runs a command in it).
SID_PYTHONS ?= python3.14 python3.15
SID_ASAN_PYTHON ?= python3.15
# The test builds make compiler warnings errors (CMake's CXXLOOP_WERROR);
# WERROR=OFF builds as a user's pip install does.
WERROR ?= ON

.PHONY: bench lint test test-python test-cpp test-asan test-external test-sid test-sid-python test-sid-asan deps wheel clean

bench: deps
	tools/venv .venv-bench $(PYTHON) '.[bench]'
	.venv-bench/bin/python -m cxxloop bench $(BENCH_ARGS)

# wheel first: tests/test_wheel.py installs what it puts in dist/.
test: deps lint test-cpp wheel test-python test-asan test-external test-sid

# ruff over the Python files, mypy over the package (tools/lint).
lint:
	tools/lint $(PYTHON)

deps:
	tools/apt-deps

# Every version runs even when an earlier one fails, so one run shows them all.
test-python:
	@failed=; for py in $(PYTHONS); do \
	  ver=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  echo "=== CPython $$ver ($$py)"; \
	  CXXLOOP_WERROR=$(WERROR) tools/venv $(VENV)$$ver $$py '.[test,test-integrations]' && \
	  $(VENV)$$ver/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS) || failed="$$failed $$ver"; \
	done; \
	if [ -n "$$failed" ]; then echo "=== failed on CPython$$failed"; exit 1; fi

# dist/: the sdist, and a wheel built from it for $(PYTHON), repaired to a
# manylinux tag by auditwheel.
wheel:
	tools/wheel $(PYTHON)

test-cpp:
	CXXLOOP_WERROR=$(WERROR) tests/cpp/run.sh

# The extension built with -fsanitize=address,undefined, run over the suite.
test-asan:
	CXXLOOP_SANITIZE=ON CXXLOOP_WERROR=$(WERROR) tools/venv $(ASAN_VENV) $(PYTHON) '.[test,test-integrations]'
	@# Refuse to report a sanitizer run that did not load a sanitized build.
	ldd $(ASAN_VENV)/lib/python*/site-packages/cxxloop/_core*.so | grep -q libasan
	@# --capture=sys leaves fd 2 alone, so a sanitizer's report reaches the
	@# log: pytest's default captures it into a file that the abort discards.
	tools/run-asan $(ASAN_VENV)/bin/python -m pytest -p no:cacheprovider --capture=sys $(PYTEST_ARGS)

# The same two targets inside the sid root, where make sees only what its
# command line passes (tools/in-sid runs with a clean environment).
test-sid: test-sid-python test-sid-asan

test-sid-python:
	tools/in-sid $(MAKE) --no-print-directory test-python PYTHONS='$(SID_PYTHONS)' VENV=.venv-sid- WERROR=$(WERROR) PYTEST_ARGS='$(PYTEST_ARGS)'

test-sid-asan:
	tools/in-sid $(MAKE) --no-print-directory test-asan PYTHON=$(SID_ASAN_PYTHON) ASAN_VENV=.venv-sid-asan-$(SID_ASAN_PYTHON:python%=%) WERROR=$(WERROR) PYTEST_ARGS='$(PYTEST_ARGS)'

# Other projects' suites (tests/external) on asyncio and on cxxloop, compared per
# test: the full selection on the last Python of PYTHONS, the quick one on the others.
test-external: deps
	$(PYTHON) tests/external/run.py $(foreach py,$(PYTHONS),--python $(py)=$(if $(filter $(py),$(lastword $(PYTHONS))),full,quick))

clean:
	rm -rf build dist .venv-* .pytest_cache
