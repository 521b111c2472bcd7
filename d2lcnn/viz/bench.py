"""How long the feature-map widget takes to redraw after a slider move (a benchmark, not a test).

    python -m d2lcnn.viz.bench [--layer 3] [--moves 10]

Builds the book's AlexNet (224x224 input), opens the feature-map widget on a layer with 256
channels, and times, from setting a control's value in Python to the new PNG in the Output:
moving the channel slider and changing the layer (redraws from the cached activations), and
moving the image slider (a forward pass for the new image, then the redraw). The browser's
own drawing of the PNG is not included.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def bench_redraw(layer: str = "3", moves: int = 10, model=None, size: int = 224) -> dict:
    """Median seconds per redraw of ``viz.feature_maps`` (default: AlexNet at 224x224, layer 3).

    Returns ``{"channel_s", "layer_s", "new_image_s", "channels", "layer", ...}``.
    """
    import matplotlib

    from .. import data, models
    from .maps import feature_maps

    matplotlib.use("Agg")
    net = model if model is not None else models.build("alexnet")
    fm = data.FashionMNIST(device="cpu", resize=size, test_subset=max(1, moves // 10 + 1))
    widget = feature_maps(net, fm, layer=layer, n_images=moves)
    other = next(n for n in widget.layer.options if n != layer)
    channels = widget.channel.max + 1
    times: dict[str, list[float]] = {"channel_s": [], "layer_s": [], "new_image_s": []}

    def timed(key, control, value):
        start = time.perf_counter()
        control.value = value
        times[key].append(time.perf_counter() - start)

    for i in range(1, moves):
        timed("channel_s", widget.channel, i % channels)
    timed("layer_s", widget.layer, other)                 # both images' activations are cached:
    timed("layer_s", widget.layer, layer)                 # a layer change only redraws
    for i in range(1, moves):
        timed("new_image_s", widget.image, i)
    return {"layer": layer, "channels": channels, "input": f"{size}x{size}", "moves": moves,
            **{key: round(statistics.median(values), 3) for key, values in times.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layer", default="3", help="AlexNet layer (default 3: 256 channels of 26x26)")
    parser.add_argument("--moves", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(bench_redraw(args.layer, args.moves)))


if __name__ == "__main__":
    main()
