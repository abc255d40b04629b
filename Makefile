# Two commands for a fresh machine (Linux or macOS, Python 3.11-3.13):
#   make lab    set up .venv if needed, then open the workbook in JupyterLab
#   make test   set up .venv if needed, then run every test (unit tests + every notebook: full mode, except the
#               four that train, in fast mode)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8888
DEMO_PORT ?= 8866

.PHONY: setup lab test test-full test-unit test-notebooks strip benchmarks clean demo screenshot student slides stage-device

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 13), "Python 3.11-3.13 needed (the pinned scipy, keras, pillow and scikit-image need 3.11+, numpy 2.1 has wheels up to 3.13), found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# Messages up to 100 MiB pass, as in make demo: notebook 09's demo takes uploads up to 40 MB (Tornado's default
# limit, 10 MiB, would drop the connection).
lab: setup
	$(BIN)/jupyter lab --port=$(PORT) $(if $(filter 0,$(shell id -u)),--allow-root,) \
		'--ServerApp.tornado_settings={"websocket_max_message_size": 104857600}' notebooks/00_welcome.ipynb

# The slider demo of notebook 09 as a standalone web page (Voilà): open http://127.0.0.1:$(DEMO_PORT)/
# Kernels without a connection for 10 minutes (a closed tab, a reload) are shut down; messages up to 100 MiB pass
# (uploads; the page refuses files above 40 MB, upload_limit_mb = course_lib.demo.MAX_UPLOAD_MB, before sending
# them, with a message). The page makes no request to another host: the template apps/jupyter/voila/templates/course
# is Voilà's lab template without its Font Awesome stylesheets from a CDN (Voilà serves Font Awesome itself), plus
# that upload check. The same settings as benchmarks/demo_screenshot.py (tests/test_browser.py compares them).
demo: setup
	JUPYTER_PATH=$(CURDIR)/apps/jupyter$(if $(JUPYTER_PATH),:$(JUPYTER_PATH),) \
	$(BIN)/voila apps/slider_demo.ipynb --template=course '--VoilaConfiguration.resources={"upload_limit_mb": 40}' \
		--port=$(DEMO_PORT) --no-browser --Voila.ip=127.0.0.1 \
		--MappingKernelManager.cull_idle_timeout=600 --MappingKernelManager.cull_interval=60 \
		--MappingKernelManager.cull_connected=False \
		'--Voila.tornado_settings={"websocket_max_message_size": 104857600}'

# docs/img/slider_demo*.png for the README: the demo in headless Chromium (needs /usr/bin/chromium): one codec at
# JPEG's matched size, and compare mode (learned vs JPEG at the same size, with the wipe) at 1280x720 and 1920x1080.
screenshot: setup
	$(BIN)/python benchmarks/demo_screenshot.py --image kodim23.png --codec jpeg420 --match --level 1 --zoom 0.66 0.32
	$(BIN)/python benchmarks/demo_screenshot.py --image kodim23.png --compare --codec jpeg420 --level 1 --split 0.5 \
		--zoom 0.66 0.32 --size 1280x720 --page --out docs/img/slider_demo_compare_1280x720.png
	$(BIN)/python benchmarks/demo_screenshot.py --image kodim23.png --compare --codec jpeg420 --level 1 --split 0.5 \
		--zoom 0.66 0.32 --size 1920x1080 --page --out docs/img/slider_demo_compare_1920x1080.png

# Unit tests, then every notebook top to bottom in a fresh kernel (tests/test_notebooks.py): in full mode, the mode
# students use, except the notebooks that train (02, 06, 07, 08: fast mode); at each exercise the student copy's stub,
# wrong answers and the solution are run against the self-check. Cells check themselves with asserts; outputs are not
# compared. COURSE_FAST=1 is for the unit tests; the notebook runner sets each kernel's mode itself.
test: setup
	COURSE_FAST=1 TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python -m pytest tests -q

# The same with every notebook in full mode, the training ones included (long: real training runs).
test-full: setup
	COURSE_FAST=1 COURSE_NOTEBOOK_MODE=full TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python -m pytest tests -q

test-unit: setup
	COURSE_FAST=1 TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python -m pytest tests -q --ignore=tests/test_notebooks.py

# Every notebook in fast mode under nbval (no exercise protocol): the quickest whole-course smoke test.
test-notebooks: setup
	COURSE_FAST=1 TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python -m pytest notebooks --nbval-lax --nbval-current-env -q

# The measurements quoted in the README, on the Kodak folder (KODAK_DIR): both learned codecs' RD curves and
# BD-rates against the classical codecs, their speed ratio, float32 vs bfloat16 training on TRAIN_DIR (never
# Kodak), the restoration gains, the slider demo's latency, and 20,000 damaged and crafted .rcz files against both
# decoders. (benchmarks/model_size.py
# needs training runs first; docs/results/model_size_*_steps.json hold its commands.)
KODAK_DIR ?= ../shared/kodak
TRAIN_DIR ?= ../shared/train
benchmarks: setup
	$(BIN)/python -m course_lib evaluate --data $(KODAK_DIR) --json docs/results/kodak_rd.json --plot docs/img/rd_kodak.png
	$(BIN)/python -m course_lib evaluate --data $(KODAK_DIR) --weights learned_hyperprior \
		--json docs/results/kodak_rd_hyperprior.json --plot docs/img/rd_kodak_hyperprior.png
	$(BIN)/python -m course_lib evaluate --data $(KODAK_DIR) --weights learned_hyperprior_wide \
		--json docs/results/kodak_rd_hyperprior_wide.json --plot docs/img/rd_kodak_hyperprior_wide.png
	KODAK_DIR=$(KODAK_DIR) $(BIN)/python benchmarks/codec_speed.py --models learned_codec learned_hyperprior \
		learned_hyperprior_wide --json docs/results/codec_speed.json
	$(BIN)/python benchmarks/transform_ceiling.py --data $(KODAK_DIR) --models learned_codec learned_hyperprior learned_hyperprior_wide \
		--json docs/results/transform_ceiling.json
	$(BIN)/python benchmarks/training_speed.py --data $(TRAIN_DIR) --steps 300 --json docs/results/training_speed.json
	$(BIN)/python benchmarks/training_speed.py --data $(TRAIN_DIR) --init learned_hyperprior --steps 400 --learning-rate 1e-5 \
		--json docs/results/training_speed_from_shipped.json
	$(BIN)/python benchmarks/gradient_noise.py --data $(TRAIN_DIR) --init learned_hyperprior_wide --batches 24 \
		--json docs/results/gradient_noise.json
	$(BIN)/python -m course_lib evaluate --restoration --data $(KODAK_DIR) --json docs/results/restoration_kodak.json
	KODAK_DIR=$(KODAK_DIR) $(BIN)/python benchmarks/slider_latency.py --json docs/results/slider_latency.json
	$(BIN)/python benchmarks/fuzz_bitstream.py --n 20000 --json docs/results/fuzz_bitstream.json

# Remove outputs before committing notebooks (keeps diffs reviewable).
strip: setup
	$(BIN)/nbstripout --keep-id notebooks/*.ipynb

# Student copies: every solution replaced by `raise NotImplementedError`, outputs removed (student/, git-ignored).
student: setup
	$(BIN)/python tools/student_copies.py --out student

# Slides (reveal.js HTML, one per notebook) in slides/ (git-ignored). Slide metadata comes from the headings
# (tools/slides.py). Without outputs by default; SLIDES_EXECUTE=1 runs each notebook first (full mode: as long as
# the notebooks take). Viewing them needs the internet: reveal.js from unpkg.com, MathJax, jQuery, require.js and
# mermaid from cdnjs.cloudflare.com (tools/slides.py, ONLINE_ASSETS); offline, use JupyterLab's presentation mode.
slides: setup
	$(BIN)/python tools/slides.py
	$(BIN)/jupyter nbconvert --to slides --output-dir slides --SlidesExporter.reveal_scroll=True \
		$(if $(SLIDES_EXECUTE),--execute,) notebooks/*.ipynb
	@echo "Viewing these slides needs the internet (reveal.js, MathJax); offline, use JupyterLab's presentation mode."

clean:
	rm -rf $(VENV) build *.egg-info

# .device/ (ignored) for a training run on a lent GPU machine (docs/gpu_training.md): wheels, config, photos, init.
# make stage-device DEVICE_CONFIG=/work/runs/RUN/config.json [DEVICE_INIT=/work/runs/RUN/codec.weights.h5]
stage-device: setup
	$(BIN)/python tools/stage_device.py --config $(DEVICE_CONFIG) $(if $(DEVICE_INIT),--init $(DEVICE_INIT),)
