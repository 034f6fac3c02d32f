"""Recommenders behind one protocol, their data, and the run registry (DESIGN §4).

Importing this package is cheap: model classes are imported on first use by name
(:func:`get_model_class`), so TensorFlow loads only when a Keras model is built or loaded.
"""

from ltrec.models.base import (
    MODELS,
    Contributions,
    ModelConfig,
    Recommender,
    get_model_class,
    load_model,
    make_config,
    make_model,
    model_names,
    register_model,
)
from ltrec.models.data import InteractionData

__all__ = [
    "MODELS",
    "Contributions",
    "InteractionData",
    "ModelConfig",
    "Recommender",
    "get_model_class",
    "load_model",
    "make_config",
    "make_model",
    "model_names",
    "register_model",
]
