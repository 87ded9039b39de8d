# The two entry points of the README:
#   make bench   build cxxloop into a venv and run the benchmark
#   make test    build and test on every CPython >= 3.11 on this machine,
#                plus the C++ unit tests and an ASan+UBSan build
SHELL := /bin/bash
PYTHON ?= $(firstword $(shell tools/find-pythons))
PYTHONS ?= $(shell tools/find-pythons)
PYTEST_ARGS ?=

.PHONY: bench test test-python test-cpp test-asan test-external deps wheel clean

bench: deps
	tools/venv .venv-bench $(PYTHON) '.[bench]'
	.venv-bench/bin/python -m cxxloop bench $(BENCH_ARGS)

# wheel first: tests/test_wheel.py installs what it puts in dist/.
test: deps test-cpp wheel test-python test-asan test-external

deps:
	tools/apt-deps

test-python:
	@set -e; for py in $(PYTHONS); do \
	  ver=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  echo "=== CPython $$ver ($$py)"; \
	  tools/venv .venv-$$ver $$py '.[test,test-integrations]'; \
	  .venv-$$ver/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS); \
	done

# dist/: the sdist, and a wheel built from it for $(PYTHON), repaired to a
# manylinux tag by auditwheel.
wheel:
	tools/wheel $(PYTHON)

test-cpp:
	tests/cpp/run.sh

# The extension built with -fsanitize=address,undefined, run over the suite.
test-asan:
	CXXLOOP_SANITIZE=ON tools/venv .venv-asan $(PYTHON) '.[test,test-integrations]'
	@# Refuse to report a sanitizer run that did not load a sanitized build.
	ldd .venv-asan/lib/python*/site-packages/cxxloop/_core*.so | grep -q libasan
	@# --capture=sys leaves fd 2 alone, so a sanitizer's report reaches the
	@# log: pytest's default captures it into a file that the abort discards.
	tools/run-asan .venv-asan/bin/python -m pytest -p no:cacheprovider --capture=sys $(PYTEST_ARGS)

# Other projects' suites (tests/external) on asyncio and on cxxloop, compared per
# test: the full selection on the last Python of PYTHONS, the quick one on the others.
test-external: deps
	$(PYTHON) tests/external/run.py $(foreach py,$(PYTHONS),--python $(py)=$(if $(filter $(py),$(lastword $(PYTHONS))),full,quick))

clean:
	rm -rf build dist .venv-* .pytest_cache
