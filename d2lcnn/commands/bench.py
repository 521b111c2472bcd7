"""``python -m d2lcnn bench``: placeholder replaced by its issue's work."""


def add_parser(sub) -> None:
    pass
