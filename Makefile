# Two commands do all the set-up they need on a fresh machine with Python 3.10+:
#   make lab    open the notebooks in JupyterLab
#   make test   run the whole test suite (unit tests, every notebook under nbval, the browser test)
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python

.PHONY: lab test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab notebooks/

test: $(VENV)/.installed
	bash tests/setup_browser.sh
	$(PY) -m pytest -p no:cacheprovider tests notebooks --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg

bench: $(VENV)/.installed
	$(PY) benchmarks/speed.py
	$(PY) benchmarks/explorer_latency.py
	$(PY) benchmarks/relevance_layers.py

clean:
	rm -rf $(VENV)
