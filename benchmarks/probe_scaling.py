"""Linear probe: how much the input scaling of frozen MobileNetV2 features matters.

Usage: python benchmarks/probe_scaling.py [--data-dir DIR] [--weights FILE] [--train 5000]
       [--test 2000] [--write]

MobileNetV2's ImageNet weights expect pixels in [-1, 1]; the reference write-up fed [0, 1].
This extracts frozen 160x160 pooled features of a stratified CIFAR-10 subset both ways and
fits the same logistic-regression probe (scikit-learn) on each.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> None:
    """Extract features with both scalings, fit the probes, print test accuracies."""
    from benchlog import bench_parser

    parser = bench_parser(__doc__, data_dir=True)
    parser.add_argument("--weights", default="imagenet")
    parser.add_argument("--train", type=int, default=5000)
    parser.add_argument("--test", type=int, default=2000)
    args = parser.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from benchlog import machine_line, write_section
    from cifar.data import load_cifar10
    from cifar.data.pipeline import make_dataset
    from cifar.models.backbones import BACKBONES, build_backbone

    data = load_cifar10(args.data_dir).subset(train=args.train, test=args.test, seed=0)
    base = build_backbone(BACKBONES["mobilenet_v2"], 160, args.weights)
    scalings = {"[-1, 1]": (1 / 127.5, -1.0), "[0, 1]": (1 / 255, 0.0)}

    def features(images: np.ndarray, scale: float, offset: float) -> np.ndarray:
        step = tf.function(
            lambda x: keras.ops.mean(base(x * scale + offset, training=False), axis=(1, 2))
        )
        ds = make_dataset(images, np.zeros(len(images), np.int64), 1, 160, 64, one_hot=False)
        return np.concatenate([step(x).numpy() for x, _ in ds])

    lines = [
        f"machine: {machine_line()}",
        f"data: CIFAR-10 from {data.source}, {len(data.y_train)} train / {len(data.y_test)} "
        "test images (stratified); frozen MobileNetV2 160x160 pooled features; "
        "logistic regression probe",
    ]
    print("\n".join(lines), flush=True)
    for name, (scale, offset) in scalings.items():
        f_train = features(data.x_train, scale, offset)
        f_test = features(data.x_test, scale, offset)
        scaler = StandardScaler().fit(f_train)
        probe = LogisticRegression(max_iter=2000, C=0.1)
        probe.fit(scaler.transform(f_train), data.y_train)
        acc = probe.score(scaler.transform(f_test), data.y_test)
        lines.append(f"inputs scaled to {name}: linear-probe test accuracy {100 * acc:.1f}%")
        print(lines[-1], flush=True)
    if args.write:
        write_section("probe_scaling", "Input scaling of MobileNetV2: linear probe", lines)


if __name__ == "__main__":
    from benchlog import run

    run(main)
