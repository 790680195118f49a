# The two commands a fresh machine needs: `make demo` and `make test`. Both install first.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
STAMP := .ocrlab/.installed

.PHONY: install demo test bench soak package lab clean-local

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

soak: install
	$(PYTHON) -m benchmarks.soak

# The Lambda artefact (build/ocrlab-lambda.zip) and the template's table, for `sam deploy` (README, "Deploy to AWS").
package:
	$(PYTHON) -m deploy.table
	$(PYTHON) -m deploy.package

clean-local:
	-$(PYTHON) -m ocrlab db stop
	rm -rf .ocrlab
