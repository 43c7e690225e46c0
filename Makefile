# Two entry points that do all set-up on a fresh Debian machine with the Swift toolchain:
#   make demo   installs what is missing, builds in release, inspects the committed Fashion-MNIST model
#   make test   installs what is missing, runs every test (release build with testability) with the
#               Python reference packages in .venv/, so that no cross-check against them skips, and the
#               Slurm sweep's on a single-node cluster that scripts/local-slurm starts for them and stops after
SWIFT ?= swift
APT_PACKAGES := libopenblas-dev libpng-dev libjpeg-dev zlib1g-dev pkg-config dataset-fashion-mnist \
	libfreetype-dev libfontconfig-dev fonts-dejavu-core fonts-wqy-microhei
# for the checks: headless Chromium renders the HTML reports and the SVG figures; Slurm and munge run
# `sweep --slurm`'s tests; libonnx-testdata holds ONNX's per-operator models that `import` must pass
TEST_APT_PACKAGES := chromium slurmctld slurmd slurm-client munge libonnx-testdata
# The reference packages the tests cross-check against, installed into $(VENV). torch is pinned to the
# CPU build that the local wheel folder pip is configured with holds (`pip config list`: find-links), so
# that a fresh machine never downloads the multi-GB CUDA build from PyPI.
PIP_PACKAGES := numpy safetensors tensorboard torch==2.13.0+cpu captum onnx onnxruntime onnxscript torchvision playwright pillow
VENV := .venv
PYTHON := $(VENV)/bin/python
FASHION := /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN := .build/release/deconvnet
RELEASE_TEST_FLAGS := -c release -Xswiftc -enable-testing
# Checked build: the release build compiles the kernels (NetKernels) with -Ounchecked, which drops their
# preconditions and integer-overflow traps, and the rest of Net with -O; DECONVNET_CHECKED=1 compiles the
# kernels with -O too (Package.swift), and `make test` runs the whole suite on that build as well, in its own
# build folder, so that the kernels' own checks (bounds of boxes and buffers, worker counts) are tested.
CHECKED_TEST_FLAGS := $(RELEASE_TEST_FLAGS) --build-path .build-checked
RUN_TESTS = DECONVNET_PYTHON=$(CURDIR)/$(PYTHON) $(SWIFT) test

.PHONY: demo test deps test-deps apt python-deps build bench clean

deps:
	@$(MAKE) --no-print-directory apt PACKAGES="$(APT_PACKAGES)"

test-deps:
	@$(MAKE) --no-print-directory apt PACKAGES="$(APT_PACKAGES) $(TEST_APT_PACKAGES)"

apt:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

# The stamp is remade when the Makefile changes (say, a package added to PIP_PACKAGES).
python-deps: $(VENV)/installed

$(VENV)/installed: Makefile
	@[ -x $(PYTHON) ] || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q $(PIP_PACKAGES)
	@echo "$(PIP_PACKAGES)" > $@

build: deps
	$(SWIFT) build -c release

# The committed Fashion-MNIST LeNet5 looks at three test images (the third one it gets wrong) and shows
# the test images that excite conv2's first 16 channels most.
CHECKPOINT := checkpoints/lenet5-fashion-mnist.safetensors
DEMO_IMAGES := 0 1 23
# Then the zfnet trained on all of CIFAR-10 looks at one CIFAR-10 test image, taken out of the course's
# archive at demo time (the data is never committed); without the archive that step says so and is skipped.
ZFNET := checkpoints/zfnet-cifar10.safetensors
CIFAR_ARCHIVE ?= ../shared/data/cifar10-jpg.tar.gz
CIFAR_IMAGE := cifar10-jpg/test/cat/0000.jpg

demo: build
	rm -rf runs/demo
	@for i in $(DEMO_IMAGES); do $(BIN) inspect --checkpoint $(CHECKPOINT) --data $(FASHION) --index $$i --out runs/demo/test-$$i || exit 1; done
	$(BIN) top --checkpoint $(CHECKPOINT) --data $(FASHION) --split test --layer conv2 --channels 0-15 --k 9 --out runs/demo/top-conv2
	@if [ -f $(CIFAR_ARCHIVE) ]; then \
	  tar -xzf $(CIFAR_ARCHIVE) -C runs/demo $(CIFAR_IMAGE) && \
	  $(BIN) inspect --checkpoint $(ZFNET) --image runs/demo/$(CIFAR_IMAGE) --scale 4 --out runs/demo/zfnet-cat || exit 1; \
	  echo "zfnet:  $(CURDIR)/runs/demo/zfnet-cat/index.html"; \
	else echo "no $(CIFAR_ARCHIVE): the zfnet step is skipped (CIFAR_ARCHIVE=path/to/cifar10-jpg.tar.gz make demo)"; fi
	@echo; echo "report: $(CURDIR)/runs/demo/test-0/index.html"
	@echo "also:   $(foreach i,$(wordlist 2,9,$(DEMO_IMAGES)),$(CURDIR)/runs/demo/test-$(i)/index.html) $(CURDIR)/runs/demo/top-conv2/overview.png"

test: test-deps python-deps
	$(SWIFT) build $(RELEASE_TEST_FLAGS) --build-tests
	DECONVNET_CHECKED=1 $(SWIFT) build $(CHECKED_TEST_FLAGS) --build-tests
	@cluster=$$($(SUDO) scripts/local-slurm start) && eval "$$cluster" && echo "$$cluster" && \
	{ $(RUN_TESTS) $(RELEASE_TEST_FLAGS) --skip-build && DECONVNET_CHECKED=1 $(RUN_TESTS) $(CHECKED_TEST_FLAGS) --skip-build; \
	  status=$$?; $(SUDO) scripts/local-slurm stop || status=1; exit $$status; }

bench: build
	$(BIN) bench train --model lenet5 --json
	$(BIN) bench train --model lenet5-classic --steps 200 --json

clean:
	rm -rf .build .build-checked .build-fuzz runs $(VENV)

# Fuzzing: libFuzzer targets in Fuzz/ (swiftc -sanitize=fuzzer,address), each run FUZZ_SECONDS from its
# seed corpus Fuzz/corpus/TARGET; findings go to .build-fuzz/corpus and .build-fuzz/crashes.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) SWIFTC="$(SWIFT)c" scripts/fuzz.sh

