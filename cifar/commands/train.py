"""Train an experiment (a name in experiments/ or a TOML file), or resume an interrupted run."""

from __future__ import annotations

import argparse

# What `cifar train` runs when no experiment is named, by the kind of data it is given.
PHOTO_RECIPE = "photos"
REFERENCE_RECIPE = "mobilenetv2_finetune"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar train``."""
    parser.add_argument(
        "experiment",
        nargs="?",
        help="experiment name (e.g. smoke) or .toml path; default: the photo recipe "
        f"({PHOTO_RECIPE}) for an image folder, the reference recipe ({REFERENCE_RECIPE}) "
        "for CIFAR-10",
    )
    add_config_arguments(parser, "e.g. --set phases.1.epochs=5")
    parser.add_argument(
        "--strategy",
        metavar="NAME",
        # Checked with the rest of the configuration (importing it here would load Keras).
        help="default: one device; mirrored: every GPU of this machine; multiworker: one "
        "process per machine, cluster from TF_CONFIG, worker 0 writes the run (sets strategy)",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run (multiworker: every worker names the chief's run)",
    )
    parser.add_argument("--run-dir", help="write into this folder instead of runs/<name>-<time>")
    parser.add_argument("--list", action="store_true", help="list the shipped experiments")


def add_config_arguments(parser: argparse.ArgumentParser, set_example: str) -> None:
    """``--data-dir``/``--folder`` and ``--set``, shared by ``cifar train`` and ``compare``."""
    parser.add_argument(
        "--data-dir",
        "--folder",
        help="a cifar-10-batches-py folder or an image folder of your own photos, recognised "
        "by its layout (sets data.data_dir)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config value with a dotted key, {set_example}",
    )


def config_overrides(args: argparse.Namespace) -> list[str]:
    """The ``--set`` items plus ``data.data_dir`` from ``--data-dir``."""
    overrides = list(args.overrides)
    if args.data_dir:
        overrides.append(f"data.data_dir={_toml_string(args.data_dir)}")
    return overrides


def run(args: argparse.Namespace) -> int:
    """Validate the configuration, then train, evaluate and report."""
    from cifar.errors import ConfigError
    from experiments import list_experiments

    if args.list:
        print("\n".join(list_experiments()))
        return 0
    from cifar.config import load_config
    from cifar.trainer import Trainer, resume_trainer

    if args.resume:
        if args.experiment or args.overrides or args.data_dir:
            raise ConfigError(
                "--resume takes the configuration from the run directory; "
                "do not combine it with an experiment, --set or --data-dir"
            )
        trainer = resume_trainer(args.resume, args.strategy)
    else:
        experiment = args.experiment or default_experiment(args.data_dir)
        overrides = config_overrides(args)
        if args.strategy:
            overrides.append(f"strategy={_toml_string(args.strategy)}")
        config = load_config(experiment, overrides)
        trainer = Trainer(config, run_dir=args.run_dir)
    # The Trainer built the strategy before anything else ran TensorFlow operations, as
    # MultiWorkerMirroredStrategy requires; nothing above may run one.
    print(f"{trainer.role.prefix}run directory: {trainer.shared_run_dir}", flush=True)
    try:
        trainer.fit()
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: cifar train --resume {trainer.shared_run_dir}")
        return 130
    return 0


def default_experiment(data_dir: str | None) -> str:
    """The recipe for ``cifar train`` without an experiment: photos or CIFAR-10's reference."""
    from cifar.data.sources import detect_dataset

    kind = detect_dataset(data_dir) if data_dir else "cifar10"
    name = PHOTO_RECIPE if kind == "folder" else REFERENCE_RECIPE
    what = "an image folder" if kind == "folder" else "CIFAR-10"
    print(f"experiment: {name} (the default for {what}; name another to change it)", flush=True)
    return name


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
