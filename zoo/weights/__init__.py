"""Weights: the model-directory format, Hub downloads, name resolution, backbone weights and conversion."""
