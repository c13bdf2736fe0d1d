"""Data sets and the tf.data input pipeline."""

from cifar.data.cifar10 import CIFAR10_CLASSES, load_cifar10
from cifar.data.dataset import ImageData
from cifar.data.folder import load_image_folder
from cifar.data.sources import detect_dataset, load_dataset
from cifar.data.split import stratified_split

__all__ = [
    "CIFAR10_CLASSES",
    "ImageData",
    "detect_dataset",
    "load_cifar10",
    "load_dataset",
    "load_image_folder",
    "stratified_split",
]
