"""The reference convnets of the Keras tutorials edgecnn grew from."""

from edgecnn.zoo.registry import ModelSpec, Recipe, create_model, get_spec, list_models

__all__ = ["ModelSpec", "Recipe", "create_model", "get_spec", "list_models"]
