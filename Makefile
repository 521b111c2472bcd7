# The two commands of the README. Each sets everything up first (idempotent, see tools/setup.sh).
PY := .venv/bin/python

.PHONY: lab test

lab:
	bash tools/setup.sh
	$(PY) -m jupyter lab chapters $(if $(filter 0,$(shell id -u)),--allow-root)

# The package's tests (the widgets also under Colab's ipywidgets 7.7.1), every notebook through
# nbval in quick mode, then the browser test.
# Two test processes on two cores: one thread each (two each would make every step wait on the other).
test:
	bash tools/setup.sh --test
	OMP_NUM_THREADS=1 $(PY) -m pytest tests -n 2
	PYTHONPATH=build/ipywidgets7 $(PY) -c "import ipywidgets; assert ipywidgets.__version__ == '7.7.1'"
	PYTHONPATH=build/ipywidgets7 MPLBACKEND=Agg $(PY) -m pytest tests/test_viz.py -p no:cacheprovider
	OMP_NUM_THREADS=1 D2LCNN_QUICK=1 $(PY) -m pytest --nbval-lax --nbval-current-env chapters -n 2 --dist loadfile
	timeout 900 $(PY) -m pytest tests -m browser -o faulthandler_timeout=600
