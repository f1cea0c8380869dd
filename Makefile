# repalign: `make replicate` (every figure on embedded offline data) and `make test` (unit tests + nbval).
# Works from a plain venv (created on first use from requirements-lock.txt); conda users see environment.yml.
SHELL      := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON     ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.repalign-installed
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
# seconds a notebook cell may run: an hour at the replicate scale (a hung cell stops); none at the paper scale unless
# PAPER_TIMEOUT is set (09's fine-tuning cell runs for hours; its units are cached and print images/s and an ETA)
NB_TIMEOUT ?= 3600
PAPER_TIMEOUT ?=
# no MPLBACKEND here: kernels use Jupyter's inline backend, so executed notebooks carry their figures
export REPALIGN_DATA ?= $(CURDIR)/data
export REPALIGN_CACHE ?= $(CURDIR)/.cache/repalign
export PYTHONHASHSEED := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1

NOTEBOOKS := $(sort $(basename $(notdir $(wildcard notebooks/[0-9][0-9]_*.ipynb))))
SCALES    := replicate paper rehearsal
# the scales whose build keys a make run writes (make rehearsal names its own, under its own data root)
KEY_SCALES ?= replicate paper
# every module and data file of the library: what build/deps.mk (each notebook's own files) is made from
LIBRARY   := $(shell find repalign \( -name '*.py' -o -path 'repalign/resources/*' \) -type f 2>/dev/null)

.PHONY: help venv replicate paper paper-check rehearsal notebooks test lint bench notebook data clean store-outputs summary lab sweep
.DEFAULT_GOAL := help

help:
	@echo "make replicate   run every notebook at the replicate scale (embedded offline data, CPU minutes)"
	@echo "make test        every test + nbval of every notebook at the smoke scale (what CI runs; under 8 min on 2 cores)"
	@echo "make test-fast   the unit tests only, under a minute (no notebook kernel, torchrun, Dask or long training)"
	@echo "make paper       every notebook at the paper's scale (real data sets; meant for a GPU); checks first"
	@echo "make rehearsal   make paper's code paths end to end on generated data, tiny sizes (CPU; what CI runs after make test)"
	@echo "make paper-check what make paper needs that is missing (data sets, weights) and the device it will use"
	@echo "make notebook NB=03 P=\"depth=3 width=256\" [NAME=x]   one run with other parameters (NB: name, file or prefix),"
	@echo "                  written under figures/custom, results/custom, build/custom (only make replicate/paper publish)"
	@echo "make sweep GRID=sweeps/depth_width.yaml [WORKERS=2] [ARGS=--dry-run]   a parameter sweep on dask (docs/SWEEPS.md)"
	@echo "make lab         JupyterLab on notebooks/ (LAB_ARGS=\"--no-browser --port 8890\" passes options)"
	@echo "make data DATASETS=\"cifar10 ct_position\"   download data sets into \$$REPALIGN_DATA (default ./data)"
	@echo "make bench       benchmarks/ (prints measured ratios)"
	@echo "make lint        ruff"
	@echo ""
	@echo "notebooks ($(VENV)/bin/python -m repalign params NB shows one's parameters and defaults):"
	@printf '  %s\n' $(NOTEBOOKS)

venv: $(STAMP)

$(STAMP): requirements-lock.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned environment into $(VENV) (requirements-lock.txt)"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-lock.txt 2>&1 \
	  | { grep -v "^WARNING: Location" || true; }
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e . 2>&1 | { grep -v "^WARNING: Location" || true; }
	@touch $@

# ------------------------------------------------------------------------------------------------ notebooks
# build/<scale>/<notebook>.ipynb is re-run only when the notebook, its parameters or a file of its code closure
# change: the repalign modules its code cells import, transitively, the data files they declare, and the runner
# ($(RUNNER), which pins the numerical code paths: repalign/core/numerics.py). build/deps.mk lists those files per
# notebook (repalign/core/closure.py, standard library only, run by $(PYTHON)); it is remade when a library file or a
# notebook changes, and read only when a notebook is a goal, so that make help stays instant.
# docs/ARCHITECTURE.md: "Results are keyed by the code they depend on".
# build/<scale>/<notebook>.key holds what a build depends on beyond that: its resolved parameters, the pinned
# numerical settings, the data root and the size and time of the data files and checkpoints its parameters name.
# It is rewritten (by the venv's python, when a notebook is a goal and the venv exists) only when that changes, so
# that make paper after new checkpoints or data re-runs the notebooks that use them.
# Only these rules pass --scale-dirs: every other run writes under figures/custom, results/custom, build/custom.
RUNNER := repalign.run.notebook
ifneq ($(filter notebooks build/%.ipynb,$(MAKECMDGOALS)),)
include build/deps.mk
ifneq ($(wildcard $(PY)),)
KEYS := $(shell $(PY) -m $(RUNNER) keys --build build $(addprefix --scale ,$(KEY_SCALES)) 2>&1 || echo FAILED)
ifneq ($(filter FAILED,$(KEYS)),)
$(error the build keys could not be written: $(KEYS))
endif
endif
endif

define NOTEBOOK_RULE
build/$(1)/%.ipynb: notebooks/%.ipynb notebooks/params/$(1)/%.yaml $(if $(KEYS),build/$(1)/%.key) | $(STAMP)
	@echo "[$(1)] $$* starting"
	@$(PY) -m repalign run $$* --scale $(1) --scale-dirs --output $$@ $(if $(filter paper,$(1)),$(if $(PAPER_TIMEOUT),--timeout $(PAPER_TIMEOUT)),--timeout $(NB_TIMEOUT))
endef
$(foreach scale,$(SCALES),$(eval $(call NOTEBOOK_RULE,$(scale))))

build/deps.mk: $(LIBRARY) $(addprefix notebooks/,$(addsuffix .ipynb,$(NOTEBOOKS)))
	@mkdir -p $(@D)
	@$(PYTHON) -I repalign/core/closure.py --make $@ $(foreach scale,$(SCALES),--target 'build/$(scale)/{stem}.ipynb') \
	  --with $(RUNNER) $(filter %.ipynb,$^)

SCALE ?= replicate
notebooks: $(addprefix build/$(SCALE)/,$(addsuffix .ipynb,$(NOTEBOOKS)))

# the replicate scale's summary also rewrites the answer table between README.md's answer markers
summary: | $(STAMP)
	$(PY) -m repalign.run.claims summarize --results results/$(if $(filter paper rehearsal,$(SCALE)),$(SCALE)/,)claims \
	  --out results/$(if $(filter paper rehearsal,$(SCALE)),$(SCALE)/,)SUMMARY.md \
	  $(if $(filter paper rehearsal,$(SCALE)),,--readme README.md)

# Notebooks run in parallel, each on one BLAS/torch thread (the runner pins it), so that -j uses every core.
replicate: $(STAMP)
	$(MAKE) --no-print-directory -j$(JOBS) notebooks SCALE=replicate
	$(MAKE) --no-print-directory summary SCALE=replicate
	@cat results/SUMMARY.md

paper-check: $(STAMP)
	@$(PY) -m repalign paper-check

paper: $(STAMP)
	@$(PY) -m repalign paper-check
	$(MAKE) --no-print-directory notebooks SCALE=paper
	$(MAKE) --no-print-directory summary SCALE=paper
	@cat results/paper/SUMMARY.md

# make rehearsal: every notebook through its paper-scale code path (the same rule, scale `rehearsal`:
# notebooks/params/rehearsal, the paper yamls with sizes only made small) on generated data in the paper data sets'
# on-disk formats, random weight files with the real keys and 09's four checkpoints made by the commands paper-check
# prints (tiny, one under a 2-process gloo torchrun); repalign/run/rehearsal.py. Everything it writes stays under
# build/rehearsal (data/, torch/ = its TORCH_HOME, cache/, the executed notebooks), results/rehearsal and
# figures/rehearsal; its claim files say "rehearsal on generated data". Measured: 10-11 minutes from scratch on
# 2 cores shared with other jobs (09's checkpoints ~3 min, 11 ~4.5 min, 08 ~2.5 min); a re-run redoes only what changed.
REHEARSAL         := build/rehearsal
REHEARSAL_TIMEOUT ?= 900
# the longest jobs start first (make -j takes goals in order): 09's checkpoints, 11 and 08
REHEARSAL_FIRST   := $(REHEARSAL)/checkpoints.done $(addprefix build/rehearsal/,11_transferability_scores.ipynb 08_pretrained_features.ipynb)
REHEARSAL_ENV     := REPALIGN_DATA=$(CURDIR)/$(REHEARSAL)/data TORCH_HOME=$(CURDIR)/$(REHEARSAL)/torch \
                     REPALIGN_CACHE=$(CURDIR)/$(REHEARSAL)/cache HF_HUB_OFFLINE=1
rehearsal: $(STAMP)
	@$(PY) -m repalign.run.rehearsal check
	@env $(REHEARSAL_ENV) $(PY) -m repalign.run.rehearsal prepare --root $(REHEARSAL) --steps data,weights
	env $(REHEARSAL_ENV) $(MAKE) --no-print-directory -k -j$(JOBS) $(REHEARSAL_FIRST) notebooks SCALE=rehearsal \
	  KEY_SCALES=rehearsal NB_TIMEOUT=$(REHEARSAL_TIMEOUT)
	$(MAKE) --no-print-directory summary SCALE=rehearsal
	@cat results/rehearsal/SUMMARY.md

# 09's checkpoints are made while the other notebooks run (make -j); only 09 waits for them
build/rehearsal/09_task_similarity.ipynb: $(REHEARSAL)/checkpoints.done
$(REHEARSAL)/checkpoints.done: notebooks/params/rehearsal/09_task_similarity.yaml | $(STAMP)
	@env $(REHEARSAL_ENV) $(PY) -m repalign.run.rehearsal prepare --root $(REHEARSAL) --steps checkpoints
	@touch $@

# make notebook NB=03 P="depth=3 width=256 seeds=[0,1]" [SCALE=replicate] [NAME=wide]: the parameters are checked
# before a kernel starts (`python -m repalign run`); at any scale the executed copy goes to build/custom/<run name>,
# figures and verdicts to figures/custom/<run name> and results/custom/<run name> (<notebook>-<scale>-<hash>, or NAME)
notebook: $(STAMP)
	@test -n "$(NB)" || { echo "usage: make notebook NB=<name> P=\"key=value ...\"  (make help lists the notebooks)"; exit 2; }
	@$(PY) -m repalign run "$(NB)" $(P) --scale $(SCALE) $(if $(NAME),--name "$(NAME)",)

# make sweep GRID=sweeps/depth_width.yaml [NB=03_architectures] [WORKERS=n] [ARGS="--dry-run"]; see docs/SWEEPS.md
sweep: $(STAMP)
	@test -n "$(GRID)" || { echo "usage: make sweep GRID=sweeps/<grid>.yaml [NB=<notebook>] [WORKERS=n] [ARGS=...]"; exit 2; }
	$(PY) -m repalign sweep $(GRID) $(if $(NB),--notebook $(NB),) $(if $(WORKERS),--workers $(WORKERS),) $(ARGS)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks $(LAB_ARGS)

data: $(STAMP)
	$(PY) -m repalign.data download $(DATASETS)

# ------------------------------------------------------------------------------------------------ checks
# Two tiers, by the markers of pyproject.toml (tests/conftest.py): `test` runs every test and nbval of every
# notebook (.ci/run calls it; --durations shows where the time goes); `test-fast` leaves out the tests marked slow,
# notebook or distributed: the unit tests, under a minute on 2 cores. PYTEST_ARGS="-x -k scores" passes options.
# One BLAS/torch thread: the tests' models are tiny, where a second thread costs more than it gives.
.PHONY: test-fast
TEST_ENV := MPLBACKEND=Agg HF_HUB_OFFLINE=1 OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1}
FAST_TIER := not slow and not notebook and not distributed

test: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider --durations=25 $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest tests -m "$(FAST_TIER)" -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check repalign tests benchmarks scripts notebooks
	$(PY) -m ruff format --check repalign tests benchmarks scripts

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b; done

# Re-execute every notebook in place at its smoke defaults, refreshing the outputs nbval compares against.
store-outputs: $(STAMP)
	$(PY) scripts/store_outputs.py notebooks/[0-9][0-9]_*.ipynb

# what no make rule publishes: executed copies and keys (build/, the rehearsal's data too), smoke, custom, sweep and
# rehearsal outputs
clean:
	rm -rf build results/smoke figures/smoke results/custom figures/custom results/sweeps results/rehearsal figures/rehearsal
