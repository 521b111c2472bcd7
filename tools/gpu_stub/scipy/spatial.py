"""The one name ``d2l.torch`` imports from scipy; calling it says what this is."""


def distance_matrix(*args, **kwargs):
    raise NotImplementedError("this is tools/gpu_stub's stand-in for scipy, made for the book's training loop "
                              "only; install scipy for distance_matrix")
