# The two commands of the README. Each sets everything up first (idempotent, see tools/setup.sh).
PY := .venv/bin/python

.PHONY: lab test book slides

# JupyterLab with jupyterlab-rise (from the dev extra): Alt+R presents the lesson as slides, widgets live.
lab:
	bash tools/setup.sh
	$(PY) -m jupyter lab chapters $(if $(filter 0,$(shell id -u)),--allow-root)

# The course's static site in build/book/ (Jupyter Book: every lesson executed at its CPU setting,
# cached: a second build without changes executes nothing). D2LCNN_QUICK=1: quick mode, build/quick/book/.
book:
	bash tools/setup.sh
	PYTHONPATH=$(CURDIR) $(PY) book/build.py book

# Static reveal.js decks of the lessons the book executed, in build/slides/ (reveal.js served from there).
slides: book
	PYTHONPATH=$(CURDIR) $(PY) book/build.py slides

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
