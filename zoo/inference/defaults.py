"""The model used when none is named, in a module free of torch so that ``zoo-cli predict --help`` reads it."""

#: the model ``zoo.predict`` and ``zoo-cli predict`` use when none is named: the bundled face model trained on every
#: face here at once (FER2013 with FER+ votes and ExpW's web faces in every batch, aligned on the eyes,
#: calibrated). The rule: the bundled model with the best mean of the three dev accuracies (ExpW val, FER2013
#: PublicTest, FER+ majority), and a face + context model only where it beats its own face-only variant by more
#: than the seed spread, which none does yet. Numbers: docs/one-model.md.
DEFAULT_MODEL = "fer_cnn.fer2013_expw"
