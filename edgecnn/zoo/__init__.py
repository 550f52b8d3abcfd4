"""The reference convnets of the Keras tutorials edgecnn grew from.

Importing a family module runs its ``@register_model`` decorators, so the families are imported
here, after the registry (timm's layout): the registry never imports them back.
"""

from edgecnn.zoo import catsdogs, doit, fashion, mnist, shapes  # noqa: F401  (registers them)
from edgecnn.zoo.registry import ModelSpec, Recipe, create_model, get_spec, list_models

__all__ = ["ModelSpec", "Recipe", "create_model", "get_spec", "list_models"]
