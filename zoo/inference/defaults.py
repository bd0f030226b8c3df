"""The model used when none is named, in a module free of torch so that ``zoo-cli predict --help`` reads it."""

#: the model ``zoo.predict`` and ``zoo-cli predict`` use when none is named: the bundled face + context model,
#: which reads faces in web photos better than the FER2013 face model. ``fer_cnn.expw`` reads them better still
#: but has lost FER2013, so it is not the default; for 48×48 face crops use ``fer_cnn.fer2013``. The numbers
#: behind the choice: docs/real-photos.md.
DEFAULT_MODEL = "glamor_fer_cnn.expw"
