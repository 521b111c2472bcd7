"""How long the feature-map widget takes to redraw after a slider move (a benchmark, not a test).

    python -m d2lcnn.viz.bench [--layer 3] [--moves 10]

Builds the book's AlexNet (224x224 input), opens the feature-map widget on a layer with 256
channels, and times moving the channel slider (a redraw from cached activations) and the image
slider (a forward pass for a new image, then the redraw).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import matplotlib

from .. import data, models
from .maps import feature_maps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layer", default="3", help="AlexNet layer (default 3: 256 channels of 27x27)")
    parser.add_argument("--moves", type=int, default=10)
    args = parser.parse_args()
    matplotlib.use("Agg")
    net = models.build("alexnet")
    fm = data.FashionMNIST(device="cpu", resize=224, test_subset=args.moves)
    widget = feature_maps(net, fm, layer=args.layer, n_images=args.moves)
    channels = widget.channel.max + 1
    redraw, new_image = [], []
    for i in range(1, args.moves):
        start = time.perf_counter()
        widget.channel.value = i % channels
        redraw.append(time.perf_counter() - start)
        start = time.perf_counter()
        widget.image.value = i
        new_image.append(time.perf_counter() - start)
    print(json.dumps({"layer": args.layer, "channels": channels,
                      "redraw_median_s": round(statistics.median(redraw), 3),
                      "new_image_median_s": round(statistics.median(new_image), 3)}))


if __name__ == "__main__":
    main()
