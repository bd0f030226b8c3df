"""Models: the emotion model, its components (backbones, attention, fusion, targets) and the built-in presets."""
