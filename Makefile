# Two entry points that do all set-up on a fresh Debian machine with the Swift toolchain:
#   make demo   installs what is missing, builds in release, inspects the committed Fashion-MNIST model
#   make test   installs what is missing, runs every test (release build with testability)
SWIFT ?= swift
APT_PACKAGES := libopenblas-dev libpng-dev libjpeg-dev zlib1g-dev pkg-config dataset-fashion-mnist
# for the checks: headless Chromium renders the HTML reports
TEST_APT_PACKAGES := chromium
PIP_PACKAGES := numpy safetensors tensorboard
FASHION := /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN := .build/release/deconvnet
RELEASE_TEST_FLAGS := -c release -Xswiftc -enable-testing

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

python-deps:
	@python3 -c "import numpy, safetensors, tensorboard" 2>/dev/null || python3 -m pip install -q $(PIP_PACKAGES)

build: deps
	$(SWIFT) build -c release

# The committed Fashion-MNIST LeNet5 looks at three test images (the third one it gets wrong) and shows
# the test images that excite conv2's first 16 channels most.
CHECKPOINT := checkpoints/lenet5-fashion-mnist.safetensors
DEMO_IMAGES := 0 1 23

demo: build
	rm -rf runs/demo
	@for i in $(DEMO_IMAGES); do $(BIN) inspect --checkpoint $(CHECKPOINT) --data $(FASHION) --index $$i --out runs/demo/test-$$i || exit 1; done
	$(BIN) top --checkpoint $(CHECKPOINT) --data $(FASHION) --split test --layer conv2 --channels 0-15 --k 9 --out runs/demo/top-conv2
	@echo; echo "report: $(CURDIR)/runs/demo/test-0/index.html"
	@echo "also:   $(foreach i,$(wordlist 2,9,$(DEMO_IMAGES)),$(CURDIR)/runs/demo/test-$(i)/index.html) $(CURDIR)/runs/demo/top-conv2/overview.png"

test: test-deps python-deps
	$(SWIFT) build $(RELEASE_TEST_FLAGS) --build-tests
	$(SWIFT) test $(RELEASE_TEST_FLAGS) --skip-build
	@$(MAKE) --no-print-directory test-checked

bench: build
	$(BIN) bench train --model lenet5 --json
	$(BIN) bench train --model lenet5-classic --steps 200 --json

clean:
	rm -rf .build .build-checked .build-fuzz runs

# Fuzzing: libFuzzer targets in Fuzz/ (swiftc -sanitize=fuzzer,address), each run FUZZ_SECONDS from its
# seed corpus Fuzz/corpus/TARGET; findings go to .build-fuzz/corpus and .build-fuzz/crashes.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) SWIFTC="$(SWIFT)c" scripts/fuzz.sh

# Checked build: the release build compiles Net with -Ounchecked, which drops its preconditions and
# integer-overflow traps; DECONVNET_CHECKED=1 compiles it with -O instead (Package.swift), and the whole
# suite runs on that build too, in its own build folder.
CHECKED_TEST_FLAGS := $(RELEASE_TEST_FLAGS) --build-path .build-checked
.PHONY: test-checked
test-checked: test-deps python-deps
	DECONVNET_CHECKED=1 $(SWIFT) build $(CHECKED_TEST_FLAGS) --build-tests
	DECONVNET_CHECKED=1 $(SWIFT) test $(CHECKED_TEST_FLAGS) --skip-build
