# l2o-scale: set-up and tests.
#
#   make test     create .venv/ if absent, install the pinned requirements,
#                 run the whole pytest suite (2 workers), then bazel test //...
#   make venv     only the virtual environment
#   make pytest   only the pytest suite (first installs Debian's
#                 dataset-fashion-mnist when missing; if that fails, the
#                 real-data tests skip)
#   make bazel    only bazel test //...

PYTHON ?= python3
VENV := .venv
VENV_BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.requirements-installed

.PHONY: test venv pytest bazel clean

test: pytest bazel

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $@

pytest: $(STAMP)
	scripts/ensure_fashion_mnist.sh
	$(VENV)/bin/python -m pytest -n 2 -q

bazel: $(STAMP)
	scripts/ensure_bazel.sh
	PATH="$(VENV_BIN):$$PATH" bazel test //...

clean:
	-bazel clean
	rm -rf $(VENV)
