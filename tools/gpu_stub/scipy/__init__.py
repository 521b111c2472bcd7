"""A stand-in for scipy, used only by tools/gpu_evidence.sh on a machine without scipy.

d2l's ``d2l/torch.py`` imports ``scipy.spatial.distance_matrix`` at the top (for a chapter far
from ours); the book's training loop never calls it, and the scipy wheel would not fit in what
the script may carry to a GPU machine. The script puts this folder on the path only when
``import scipy.spatial`` fails.
"""
