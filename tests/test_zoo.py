"""The zoo registry: every model builds with the tutorial's parameter count."""

import pytest

from edgecnn.errors import EdgeCNNError
from edgecnn.zoo import create_model, get_spec, list_models

EXPECTED = {
    "mnist-convnet": 65_642,
    "mnist-functional": 104_202,
    "fashion-cnn": 333_526,
    "doit-cnn": 197_210,
    "doit-cnn-dropout": 197_210,
    "shapes-toy": 178,
    "catsdogs-aug": 991_041,
}


def test_registry_lists_the_tutorial_models():
    assert set(list_models()) == set(EXPECTED)
    assert list_models("mnist-*") == ["mnist-convnet", "mnist-functional"]


@pytest.mark.parametrize("name", list_models())
def test_parameter_counts_match_the_tutorials(name):
    spec = get_spec(name)
    model = create_model(name)
    assert name in EXPECTED, f"{name}: add the parameter count its tutorial gives"
    assert model.count_params() == spec.params == EXPECTED[name]
    assert tuple(model.input_shape[1:]) == spec.input_shape


def test_unknown_model_suggests_a_name():
    with pytest.raises(EdgeCNNError, match="Did you mean 'fashion-cnn'"):
        get_spec("fashon-cnn")
