"""Emotion class names and their order per dataset family (CAER-S / GLAMOR-Net ``class_names``, AffectNet / LDLVA, FER2013).

Orders are the ones each family's official code and annotation files use; data readers map folder names
and label codes onto these explicitly, never by guessing.
"""

from __future__ import annotations

#: CAER / CAER-S / NCAER-S (CAER-Net-S port and GLAMOR-Net code): alphabetical.
CAER = ("Anger", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")
#: AffectNet expression codes 0-6 (LDLVA code; RAF-DB is remapped onto it).
AFFECTNET7 = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger")
#: AffectNet-8 adds Contempt as code 7.
AFFECTNET8 = (*AFFECTNET7, "Contempt")
#: FER2013 Kaggle label codes 0-6.
FER2013 = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
