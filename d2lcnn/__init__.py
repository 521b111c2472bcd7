"""d2lcnn: the helper package of the notebooks on convolutional networks, LeNet to ConvNeXt.

Modules, one concern each:

* ``data``: Fashion-MNIST, found offline first, checked, and served from the training device;
* ``models``: the architectures, built from named blocks, in a registry by name and configuration;
* ``train``: the Trainer (fit, evaluate, history, checkpoints, mixed precision, quick mode);
* ``recipe``: how to train (the Recipe, its learning-rate schedule, optimizer and initialisation);
* ``watch``: what the Trainer checks while it trains (divergence, chance level, a long run, ...);
* ``progress``: what a fit shows while it runs (progress bar and live curves, or terminal lines);
* ``checkpoint``: the checkpoint file, written atomically and read strictly, all or nothing;
* ``curves``: training curves of one run or several;
* ``inspect``: layer tables, model comparisons, and explanations of shape mismatches;
* ``viz``: the pictures and widgets (filters, feature maps, mistakes, where a network looks);
* ``exercises``: self-checks for the notebooks' exercises;
* ``book``: the book's reported results, beside ours;
* ``benchmark``: every network measured the same way (``bench --all``), and the committed results;
* ``lesson``: showing the package's real source in a lesson;
* ``display``: putting a figure into a widget's output, the same on ipywidgets 7 and 8;
* ``runtime``: the device helper and quick mode;
* ``commands``: ``python -m d2lcnn ...``.
"""

__version__ = "0.1.0"
