# ptshim: `make run` is the main job, `make test` the full check; both set themselves up.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The interpreters .venv may be made from, first choice first: the first that is Python >= 3.11
# and can make a venv.  The distribution's CPython comes first: Debian's links the interpreter
# statically (no libpython.so), and the campaign runs about 1.2x faster on it than on a
# default pyenv build (--enable-shared, no --enable-optimizations): README, "Speed".
PYTHONS ?= /usr/bin/python3 python3

.PHONY: run examples test test-slow lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || for p in $(PYTHONS); do \
		$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
			&& $$p -m venv $(VENV) 2>/dev/null && echo "made $(VENV) from $$p" && break; \
		rm -rf $(VENV); \
	done; \
	test -x $(PY) || { echo "make: none of '$(PYTHONS)' is a Python >= 3.11 that can make a venv (set PYTHONS=...)" >&2; exit 2; }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

PAIR := examples/pairs/readonly.py:make_range_readonly_legacy,make_range_readonly_unified

# The worked call-site pair and the built-in ports, side by side on every configuration.
run: $(STAMP)
	@rc=0; \
	$(VENV)/bin/ptshim diff --pair $(PAIR) --arch all --examples 40 --keep-going --out out \
		|| rc=1; \
	$(VENV)/bin/ptshim diff --arch all --examples 25 --keep-going --out out || rc=1; \
	exit $$rc

# Every example scenario on every configuration, checked by the hardware walker.
examples: $(STAMP)
	$(VENV)/bin/ptshim run examples --arch all

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict

pytest: $(STAMP)
	$(VENV)/bin/pytest -n auto

test: lint typecheck pytest

# The exhaustive sweeps `make test` leaves out (marked slow): -ENOMEM at every allocation
# of every op on every configuration (tests/test_enomem_sweep.py).
test-slow: $(STAMP)
	$(VENV)/bin/pytest -n auto -m slow

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
