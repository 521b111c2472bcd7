"""``python -m d2lcnn train``: placeholder replaced by its issue's work."""


def add_parser(sub) -> None:
    pass
