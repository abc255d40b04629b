# Two commands for a fresh machine (Linux or macOS, Python 3.10+):
#   make lab    set up .venv if needed, then open the workbook in JupyterLab
#   make test   set up .venv if needed, then run every test (unit tests + every notebook, fast mode)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8888

.PHONY: setup lab test test-unit test-notebooks strip benchmarks clean

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ needed, found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(BIN)/jupyter lab --port=$(PORT) $(if $(filter 0,$(shell id -u)),--allow-root,) notebooks/00_welcome.ipynb

# Every notebook runs top to bottom in a fresh kernel (nbval) in fast mode; cells check
# themselves with asserts, so outputs are not compared (--nbval-lax).
test: setup
	COURSE_FAST=1 TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env -q

test-unit: setup
	COURSE_FAST=1 TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python -m pytest tests -q

test-notebooks: setup
	COURSE_FAST=1 TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python -m pytest notebooks --nbval-lax --nbval-current-env -q

# Remove outputs before committing notebooks (keeps diffs reviewable).
strip: setup
	$(BIN)/nbstripout --keep-id notebooks/*.ipynb

clean:
	rm -rf $(VENV) build *.egg-info
