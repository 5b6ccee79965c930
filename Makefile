# Two commands do all the set-up they need on a fresh machine with Python 3.11+:
#   make lab    open the notebooks in JupyterLab (prints the URL; opens a browser only where there is a screen)
#   make test   run the whole test suite: unit tests, the browser tests (explorer, book, slides), every notebook
#               under strict nbval, the course edition's hand-out -> grade pipeline
#   make book   the suite as a static HTML book (build/book/index.html), from the stored outputs
#   make slides one reveal.js slide deck per notebook (build/slides/), from the stored outputs
#
# Every install uses constraints.txt: the exact versions that stored the notebooks' outputs.
# `make constraints` rewrites it from the current environment; `make notebooks` re-executes and stores
# every notebook with this machine's own CPU kernels.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip install --quiet --constraint constraints.txt
# constraints.txt pins every package of the venv, so the set-up installs it as two disjoint halves side by
# side with --no-deps (torch and its CUDA wheels, which are mostly unpacking, beside everything else, which is
# mostly compiling to bytecode), then `pip check` proves the whole set consistent: half the time of one pip
# run. (pip compiles every module it installs; torch's are compiled after its unpacking, and compileall, like
# pip, skips the few files of torch's test helpers written for newer Pythons.)
HEAVY   = ^(torch|triton|nvidia-.*|cuda-.*)==

# The notebooks are checked under a CPU configuration other than the one that stored them, so every
# run of the suite is a cross-machine check (README, "Reproducibility"). NB_CPU=native checks them with
# this machine's default kernels instead. One thread per worker: two workers use both cores.
NB_CPU ?= alternate
CPU_native    = OMP_NUM_THREADS=1
CPU_alternate = OMP_NUM_THREADS=1 ONEDNN_MAX_CPU_ISA=AVX ATEN_CPU_CAPABILITY=default
NB_ENV = $(or $(CPU_$(NB_CPU)),$(error NB_CPU must be 'alternate' or 'native', not '$(NB_CPU)'))
PYTEST = $(PY) -m pytest -p no:cacheprovider -n 2
NPM    ?= npm
# MathJax and reveal.js for the book and the slides, as book/package-lock.json pins them.
NODE_MODULES = book/node_modules/.package-lock.json

# JupyterLab refuses to run as root without --allow-root (containers, cloud VMs, course images), and
# opening a browser on a machine without a screen would start a text browser or fail: print the URL.
LAB_FLAGS = $(if $(filter 0,$(shell id -u)),--allow-root) \
            $(if $(or $(DISPLAY),$(WAYLAND_DISPLAY),$(filter Darwin,$(shell uname -s))),,--no-browser)

.PHONY: lab install test unit chromium browser book slides nbval course student grade notebooks constraints bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "minicam needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)."; \
	  echo "Install one and run: make $(MAKECMDGOALS) PYTHON=python3.11"; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
	  echo "'$(PYTHON) -m venv' is not available here, and the set-up needs it to make $(VENV)/."; \
	  echo "Debian/Ubuntu: apt-get install python3-venv (or python3.11-venv); Fedora: dnf install python3; then run make again."; \
	  exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	grep -iE '$(HEAVY)' constraints.txt > $(VENV)/heavy.txt
	grep -viE '$(HEAVY)|^pip==|^\#' constraints.txt > $(VENV)/rest.txt
	{ $(PIP) --no-deps --no-compile -r $(VENV)/heavy.txt && \
	  { $(PY) -m compileall -q $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/torch >/dev/null || true; }; } & \
	heavy=$$!; $(PIP) --no-deps -r $(VENV)/rest.txt; rest=$$?; wait $$heavy && exit $$rest
	$(PIP) --no-deps -e .
	$(PY) -m pip check
	touch $@

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab notebooks/ --ServerApp.ip=127.0.0.1 $(LAB_FLAGS)

# The Python packages, Debian's Chromium (for the browser tests) and the npm packages install side by side.
install:
	$(MAKE) -j2 $(VENV)/.installed chromium $(NODE_MODULES)

test: install
	$(MAKE) unit browser nbval course

unit: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(PYTEST) tests --ignore=tests/test_browser.py --ignore=tests/test_book.py --ignore=tests/test_course_pipeline.py

chromium:
	bash tests/setup_browser.sh

# The explorer in JupyterLab, then the book and a slide deck opened from files with the network refused.
browser: $(VENV)/.installed chromium $(NODE_MODULES)
	$(MAKE) -j2 book slides
	$(PY) -m pytest -p no:cacheprovider tests/test_browser.py tests/test_book.py

$(NODE_MODULES): book/package.json book/package-lock.json
	@command -v $(NPM) >/dev/null 2>&1 || { \
	  echo "npm not found: the book and the slides need Node.js 18 or newer with npm"; \
	  echo "(Debian/Ubuntu: apt-get install npm; or https://nodejs.org), then run make again."; exit 1; }
	cd book && $(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

# Never executes a notebook: both read the stored outputs (book/build.py says how).
book: $(VENV)/.installed $(NODE_MODULES)
	$(PY) book/build.py book

slides: $(VENV)/.installed $(NODE_MODULES)
	$(PY) book/build.py slides

# One notebook per worker at a time, the slowest first (as `--durations` measured them under nbval), so that
# neither worker is left with a long notebook at the end; every other notebook follows in name order.
NB_SLOWEST = 07_relevance_cam 08b_sanity_checks 08_evaluation 10_summary 02_cam 01_gradients
NB_ORDER  := $(patsubst %,notebooks/%.ipynb,$(NB_SLOWEST))
NB_ORDER  += $(filter-out $(NB_ORDER),$(sort $(wildcard notebooks/*.ipynb)))

nbval: $(VENV)/.installed
	env $(NB_ENV) $(PYTEST) --dist loadfile $(NB_ORDER) --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg

# The course edition (README, "Course edition"). `make student` writes student/NN_topic.ipynb; `make grade
# SUBMISSIONS=dir` grades dir/<student>/<NN_topic>.ipynb into $(GRADES)/: grades.csv, totals.csv, feedback/ (to
# hand back) and logs/, all readable by their owner only; `make course` tests both on one notebook (one process,
# no xdist: the grader forks one process per submission).
GRADES           ?= grades
CELL_TIMEOUT     ?= 60
NOTEBOOK_TIMEOUT ?= 600
JOBS             ?= 2

course: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(PY) -m pytest -p no:cacheprovider tests/test_course_pipeline.py

student: $(VENV)/.installed
	$(PY) -m course.student --out student

ifneq ($(filter grade,$(MAKECMDGOALS)),)
ifeq ($(SUBMISSIONS),)
$(error make grade needs SUBMISSIONS=dir, a folder laid out as dir/<student>/<NN_topic>.ipynb)
endif
endif

grade: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(PY) -m course.grade "$(SUBMISSIONS)" --out "$(GRADES)" --cell-timeout $(CELL_TIMEOUT) \
	  --notebook-timeout $(NOTEBOOK_TIMEOUT) --jobs $(JOBS) $(if $(SAME_USER),--same-user)

notebooks: $(VENV)/.installed
	ls notebooks/*.ipynb | xargs -P 2 -n 1 $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace

constraints: $(VENV)/.installed
	{ echo "# The exact versions that stored the notebooks' outputs; 'make constraints' rewrites this file."; \
	  $(PY) -m pip freeze --all --exclude-editable; } > constraints.txt

bench: $(VENV)/.installed
	$(PY) benchmarks/speed.py
	$(PY) benchmarks/explain_speed.py
	$(PY) benchmarks/explorer_latency.py
	$(PY) benchmarks/relevance_layers.py

clean:
	rm -rf $(VENV) book/node_modules build/book build/book-src build/slides
