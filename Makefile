# The two commands of the README: `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CHROMIUM := /usr/lib/chromium/chromium

.PHONY: test demo setup browser lint clean install-check

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Re-installs only when pyproject.toml changed since the last install. torch==2.13.0 first:
# a CPU wheel of exactly this version is on local disk (pyproject accepts any torch 2.x from
# 2.3, but another spec can download a multi-GB CUDA build); [dev] pulls every extra.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium for the web page test (Playwright drives it; never `playwright install`).
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
		|| echo "warning: could not install chromium; browser tests will be skipped"; \
	fi

test: setup browser
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/mcsan demo --out runs/demo

lint: setup
	$(BIN)/ruff check .

# A fresh venv with only the [search] extra; train/index/search/serve outside the checkout.
install-check:
	.ci/install_check

clean:
	rm -rf $(VENV) runs .pytest_cache
