"""Class names per dataset family and the folder / code aliases each reader accepts (CAER-S folders; AffectNet and
RAF-DB codes in LDLVA's order, minhnhatvt/label-distribution-learning-fer-tf@a741b36:cfg_files/config_*.py ``class_names``)."""

from __future__ import annotations

from zoo import labels

#: CAER / CAER-S / NCAER-S folders; larrylu's annotations use ``Angry`` for train and ``Anger`` for test.
CAER_ALIASES = {"Angry": "Anger"}
#: SFEW 2.0 / FER2013 Kaggle folder spellings mapped onto AffectNet-7 names (LDLVA's class order).
AFFECTNET_ALIASES = {
    "Angry": "Anger",
    "Happiness": "Happy",
    "Sadness": "Sad",
    "Surprised": "Surprise",
    "Fearful": "Fear",
    "Disgusted": "Disgust",
}
FER2013_ALIASES = {"Anger": "Angry", "Happiness": "Happy", "Sadness": "Sad"}
#: RAF-DB ``list_patition_label.txt`` codes 1..7 (Li et al., CVPR 2017) -> AffectNet-7 index (LDLVA's class order).
RAFDB_TO_AFFECTNET = {1: 3, 2: 4, 3: 5, 4: 1, 5: 2, 6: 6, 7: 0}
#: FER+ ``fer2013new.csv`` vote columns, in file order; the first 8 are the classes.
FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
FERPLUS = ("Neutral", "Happiness", "Surprise", "Sadness", "Anger", "Disgust", "Fear", "Contempt")

#: The zoo's split names in each dataset's own words (FER2013's ``Usage`` column; FER+ reuses FER2013's images).
FER2013_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
OFFICIAL_SPLITS = {"fer2013": ("FER2013", FER2013_USAGE), "ferplus": ("FER+", FER2013_USAGE)}

CAER = labels.CAER
AFFECTNET7 = labels.AFFECTNET7
AFFECTNET8 = labels.AFFECTNET8
FER2013 = labels.FER2013
