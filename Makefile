# The two commands a fresh machine needs: `make demo` and `make test`. Both install first.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
STAMP := .ocrlab/.installed

.PHONY: install demo test bench lab clean-local

$(STAMP): pyproject.toml
	$(PIP) install --quiet --disable-pip-version-check -e '.[dev]'
	$(PYTHON) -m ocrlab db install
	@mkdir -p .ocrlab && touch $(STAMP)

install: $(STAMP)

demo: install
	$(PYTHON) -m ocrlab demo

test: install
	$(PYTHON) -m pytest -q

lab: install
	$(PYTHON) -m ocrlab lab

bench: install
	$(PYTHON) -m benchmarks.run

clean-local:
	-$(PYTHON) -m ocrlab db stop
	rm -rf .ocrlab
