# Two commands do all the set-up they need on a fresh machine with Python 3.11 to 3.14:
#   make lab    open the notebooks in JupyterLab (prints the URL; opens a browser only where there is a screen)
#   make test   run the whole test suite: unit tests, the browser tests (explorer, book, slides), every notebook
#               under strict nbval, the course edition's hand-out -> grade pipeline
#   make book   the suite as a static HTML book (build/book/index.html), from the stored outputs
#   make slides one reveal.js slide deck per notebook (build/slides/), from the stored outputs
#               Both build the course edition, which a course may publish (no solution, no hidden test);
#               EDITION=self-study builds the edition with each solution folded (build/book-self-study/,
#               build/slides-self-study/). book/editions.py says what each shows.
#
# Every install uses constraints.txt: the exact versions that stored the notebooks' outputs, with platform
# markers (a universal lock). `make constraints` rewrites it from the versions in the venv; `make notebooks`
# re-executes and stores every notebook with this machine's own CPU kernels.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
# The set-up is one Python script, for every operating system (Windows without make runs it directly): it
# makes the venv, installs constraints.txt in two halves side by side, minicam (editable), and runs
# `pip check`; its docstring says how.
SETUP   = $(PYTHON) tools/setup_env.py --venv $(VENV)

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

.PHONY: lab install test unit chromium browser book slides nbval course student grade hub hub-modules hubtest explorer sandbox import grade-speed notebooks constraints bench clean

$(VENV)/.installed: pyproject.toml constraints.txt tools/setup_env.py
	$(SETUP) --rerun "$(strip make $(MAKECMDGOALS) PYTHON=python3.12)"
	touch $@

# The teaching lab without the course tooling: lab/ is a Jupyter config folder put first on the config path for
# this launch only. It turns off nbgrader's server extensions and its JupyterLab extension (menu, sidebars,
# Validate button), which the environment keeps on for a course hub's students. (JupyterLab has no command-line
# flag for a disabled extension, only labconfig/page_config.json.) tests/test_browser.py launches it the same way.
LAB_CONFIG = JUPYTER_CONFIG_PATH="$(CURDIR)/lab$(if $(JUPYTER_CONFIG_PATH),:$(JUPYTER_CONFIG_PATH))"

lab: $(VENV)/.installed
	$(LAB_CONFIG) $(VENV)/bin/jupyter lab notebooks/ --ServerApp.ip=127.0.0.1 $(LAB_FLAGS)

# The Python packages, Debian's Chromium (for the browser tests) and the npm packages install side by side.
install:
	$(MAKE) -j2 $(VENV)/.installed chromium sandbox $(NODE_MODULES) hub-modules

test: install
	$(MAKE) unit browser nbval course hubtest

unit: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(PYTEST) tests --ignore=tests/test_browser.py --ignore=tests/test_book.py --ignore=tests/test_book_editions.py --ignore=tests/test_course_pipeline.py \
	  --ignore=tests/test_hub.py --ignore=tests/test_k8s.py --ignore=tests/test_explorer_app.py \
	  --ignore=tests/test_grading_attacks.py

chromium:
	bash tests/setup_browser.sh

# Debian's bubblewrap, the graded kernels' sandbox (README, "Course edition"); as root, skipped when present.
sandbox: chromium
	bash tools/setup_sandbox.sh

# The explorer in JupyterLab and as the lecture-hall app (make explorer), then the book and a slide deck of both editions opened from files with the
# network refused, and searched for the answer key.
browser: $(VENV)/.installed chromium $(NODE_MODULES)
	$(MAKE) -j2 book slides
	$(MAKE) -j2 book slides EDITION=self-study
	$(PY) -m pytest -p no:cacheprovider tests/test_browser.py tests/test_explorer_app.py tests/test_book.py tests/test_book_editions.py

$(NODE_MODULES): book/package.json book/package-lock.json
	@command -v $(NPM) >/dev/null 2>&1 || { \
	  echo "npm not found: the book and the slides need Node.js 18 or newer with npm"; \
	  echo "(Debian/Ubuntu: apt-get install npm; or https://nodejs.org), then run make again."; exit 1; }
	cd book && $(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

# Never executes a notebook: both read the stored outputs (book/build.py says how).
EDITION ?= course
book: $(VENV)/.installed $(NODE_MODULES)
	$(PY) book/build.py book --edition $(EDITION)

slides: $(VENV)/.installed $(NODE_MODULES)
	$(PY) book/build.py slides --edition $(EDITION)

# One notebook per worker at a time, the slowest first (as `--durations` measured them under nbval), so that
# neither worker is left with a long notebook at the end; every other notebook follows in name order.
NB_SLOWEST = 08b_sanity_checks 07_relevance_cam 08a_evaluation_on_shapes 02_cam 03_gradcam 01_gradients 03b_finding_bias
NB_ORDER  := $(patsubst %,notebooks/%.ipynb,$(NB_SLOWEST))
NB_ORDER  += $(filter-out $(NB_ORDER),$(sort $(wildcard notebooks/*.ipynb)))

nbval: $(VENV)/.installed
	env $(NB_ENV) $(PYTEST) --dist loadfile $(NB_ORDER) --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg

# The course edition (README, "Course edition"). `make student` writes student/NN_topic.ipynb; `make grade
# SUBMISSIONS=dir` grades dir/<student>/<NN_topic>.ipynb into $(GRADES)/: grades.csv, totals.csv, feedback/ (to
# hand back), logs/ and records/ (what a rerun skips), all readable by their owner only. `make course` tests both
# on notebook 00, the sandbox against attack submissions on a small notebook of its own, and the resume after
# SIGKILL: the two files side by side (one worker each; most of their time is kernels waiting on limits).
GRADES           ?= grades
CELL_TIMEOUT     ?= 60
NOTEBOOK_TIMEOUT ?= 600
JOBS             ?= 2

course: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(PY) -m pytest -p no:cacheprovider -n 2 --dist loadfile tests/test_course_pipeline.py tests/test_grading_attacks.py

# Beside the notebooks, minicam's wheel and constraints.txt: students install the package without the repository.
student: $(VENV)/.installed
	$(PY) -m course.student --out student

ifneq ($(filter grade,$(MAKECMDGOALS)),)
ifeq ($(SUBMISSIONS),)
$(error make grade needs SUBMISSIONS=dir, a folder laid out as dir/<student>/<NN_topic>.ipynb)
endif
endif

grade: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(PY) -m course.grade "$(SUBMISSIONS)" --out "$(GRADES)" --cell-timeout $(CELL_TIMEOUT) \
	  --notebook-timeout $(NOTEBOOK_TIMEOUT) --jobs $(JOBS) $(if $(SAME_USER),--same-user) \
	  $(if $(UNSANDBOXED),--unsandboxed) $(if $(MEMORY),--memory $(MEMORY))

# A folder of LMS downloads (flat names, "(1)" copies, zip files) into the submissions layout.
ifneq ($(filter import,$(MAKECMDGOALS)),)
ifeq ($(DOWNLOADS),)
$(error make import needs DOWNLOADS=dir, the folder of the LMS's downloads)
endif
endif

import: $(VENV)/.installed
	$(PY) -m course.lms_import "$(DOWNLOADS)" --out "$(or $(SUBMISSIONS),submissions)"

# The grader's time per notebook against nbgrader's own autograde of the same submissions (no isolation).
grade-speed: $(VENV)/.installed
	$(PY) benchmarks/grade_speed.py

# A class's JupyterHub on 127.0.0.1, as root (README, "A class on JupyterHub"): after `python -m hub.roster add
# ROSTER.csv --lecturer ID`, it serves the class in CLASS (default /srv/minicam) on HUB_PORT or the next free port,
# prints its URL, and Ctrl-C stops it with every server it started. configurable-http-proxy 5 (hub/package-lock.json)
# needs Node 20 or newer.
HUB_MODULES = hub/node_modules/.package-lock.json
HUB_PORT   ?= 8000

hub: $(VENV)/.installed $(HUB_MODULES)
	$(PY) -m hub.serve --port $(HUB_PORT) $(if $(CLASS),--class-dir "$(CLASS)")

$(HUB_MODULES): hub/package.json hub/package-lock.json
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null || { \
	  echo "make hub needs Node.js 20 or newer with npm (configurable-http-proxy 5); this machine has $$(node --version 2>/dev/null || echo none)"; \
	  echo "(a newer Node: https://nodejs.org, or NodeSource's Debian packages), then run make hub again."; exit 1; }
	cd hub && $(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

# The explorer as a lecture-hall app (README, "The explorer in a lecture hall"): Voila serves lecture/explorer.ipynb
# (minicam.suite.lecture: the explorer of every shipped model, large controls, no code) on 127.0.0.1, at
# EXPLORER_PORT or the next free port; it prints the URL, Ctrl-C stops it. No browser is opened (a lecture-hall
# machine opens the URL full-screen itself, F11).
EXPLORER_PORT ?= 8866

explorer: $(VENV)/.installed
	$(VENV)/bin/voila lecture/explorer.ipynb --no-browser --Voila.ip=127.0.0.1 --port=$(EXPLORER_PORT) \
	  --Voila.port_retries=50 --strip_sources=True --theme=light

# configurable-http-proxy for make hub, where this machine's Node can run it (20 or newer); elsewhere the
# install goes on without it and tests/test_hub.py skips, saying why.
hub-modules:
	@if node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null; then \
	  $(MAKE) --no-print-directory $(HUB_MODULES); \
	else echo "hub/node_modules not installed: make hub needs Node.js 20 or newer (this machine: $$(node --version 2>/dev/null || echo none))"; fi

# A student and a lecturer through a real hub (accounts, release, fetch, submit, collect, grade, feedback), and the
# Kubernetes image's pinned set resolved for its platform; one process (the hub test makes Linux accounts).
hubtest: $(VENV)/.installed
	$(PY) -m pytest -p no:cacheprovider tests/test_hub.py tests/test_k8s.py

notebooks: $(VENV)/.installed
	ls notebooks/*.ipynb | xargs -P 2 -n 1 $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace

# The universal lock (every platform, every supported Python), each package held to the version in the venv.
constraints: $(VENV)/.installed
	$(SETUP) --lock

bench: $(VENV)/.installed
	$(PY) benchmarks/speed.py
	$(PY) benchmarks/explain_speed.py
	$(PY) benchmarks/explorer_latency.py
	$(PY) benchmarks/relevance_layers.py

clean:
	rm -rf $(VENV) book/node_modules build/book build/book-src build/slides build/book-self-study \
	  build/book-self-study-src build/slides-self-study
