# The two commands of the README. Each sets everything up first (idempotent, see tools/setup.sh).
PY := .venv/bin/python

.PHONY: lab test

lab:
	bash tools/setup.sh
	$(PY) -m jupyter lab chapters

# The package's tests, every notebook through nbval in quick mode, then the browser test.
test:
	bash tools/setup.sh --test
	$(PY) -m pytest tests -n 2
	D2LCNN_QUICK=1 $(PY) -m pytest --nbval-lax --nbval-current-env chapters -n 2 --dist loadfile
	$(PY) -m pytest tests -m browser
