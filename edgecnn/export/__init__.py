"""Export: a Keras model (zoo, .keras, .h5, SavedModel) to a checked ONNX file with edgecnn's
metadata."""
