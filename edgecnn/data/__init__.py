"""Dataset loaders. Each returns a Dataset of uint8 NHWC images, integer labels and class names."""

from edgecnn.data.dataset import Dataset
from edgecnn.data.registry import DATASETS, load_dataset

__all__ = ["DATASETS", "Dataset", "load_dataset"]
