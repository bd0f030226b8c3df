"""Class names per dataset family and the folder / code aliases each reader accepts (CAER-S folders; AffectNet and
RAF-DB codes in LDLVA's order, minhnhatvt/label-distribution-learning-fer-tf@a741b36:cfg_files/config_*.py ``class_names``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from zoo import labels
from zoo.errors import DataError

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

#: Emotion synonyms across datasets (FER2013 / FER+ / CAER / AffectNet / CK+ spellings), compared casefolded:
#: one tuple per emotion. Used to map a dataset's classes onto a model's by name (:func:`match_class_names`).
EMOTION_SYNONYMS = (
    ("anger", "angry"),
    ("disgust", "disgusted"),
    ("fear", "fearful"),
    ("happy", "happiness"),
    ("sad", "sadness"),
    ("surprise", "surprised"),
    ("neutral",),
    ("contempt",),
)
_EMOTION_OF = {spelling: group[0] for group in EMOTION_SYNONYMS for spelling in group}


def class_key(name: str) -> str:
    """How class names are compared: ignoring case and surrounding spaces."""
    return name.strip().casefold()


@dataclass(frozen=True)
class ClassMatch:
    """How each dataset class maps onto a model class: ``targets[i]`` is the model index of dataset class ``i``,
    or None when it is dropped (an emotion the model lacks, or mapped to None explicitly); ``unmatched`` are the
    dataset classes that could not be matched at all, ``unmatched_model`` the model classes that are neither the
    target of a dataset class nor a known emotion (``class_3``, ``calm``): nothing says what they would be."""

    dataset_names: tuple[str, ...]
    model_names: tuple[str, ...]
    targets: tuple[int | None, ...]
    unmatched: tuple[str, ...]
    unmatched_model: tuple[str, ...]

    @property
    def mapping(self) -> dict[str, str | None]:
        """Dataset class name -> model class name (None: dropped); unmatched classes are left out."""
        return {name: (None if target is None else self.model_names[target])
                for name, target in zip(self.dataset_names, self.targets, strict=True) if name not in self.unmatched}

    @property
    def dropped(self) -> tuple[str, ...]:
        return tuple(n for n, t in zip(self.dataset_names, self.targets, strict=True)
                     if t is None and n not in self.unmatched)

    @property
    def is_identity(self) -> bool:
        return self.targets == tuple(range(len(self.model_names))) and len(self.dataset_names) == len(self.model_names)


def match_class_names(dataset_names: Sequence[str], model_names: Sequence[str],
                      explicit: Mapping[str, str | None] | None = None) -> ClassMatch:
    """Map each dataset class onto a model class by name, casefolded: first ``explicit`` (dataset name -> model
    name, or None to drop the class), then the same name, then a synonym (:data:`EMOTION_SYNONYMS`: Anger/Angry,
    Happiness/Happy, ...). A dataset class that is a known emotion the model lacks (FER+'s Contempt for a 7-class
    model) is dropped; one that is neither a model class nor a known emotion is ``unmatched``. Model classes the
    data lacks are fine when they are known emotions (recall is undefined for them). A bad ``explicit`` entry (no
    such dataset or model class) is a :class:`DataError`."""
    dataset_names, model_names = tuple(dataset_names), tuple(model_names)
    by_name = {class_key(n): i for i, n in enumerate(model_names)}
    by_emotion: dict[str, list[int]] = {}
    for i, name in enumerate(model_names):
        if class_key(name) in _EMOTION_OF:
            by_emotion.setdefault(_EMOTION_OF[class_key(name)], []).append(i)
    rules = _explicit_targets(explicit or {}, dataset_names, model_names, by_name)
    targets: list[int | None] = []
    unmatched = []
    for name in dataset_names:
        key = class_key(name)
        if key in rules:
            targets.append(rules[key])
        elif key in by_name:
            targets.append(by_name[key])
        elif key in _EMOTION_OF and len(by_emotion.get(_EMOTION_OF[key], ())) == 1:
            targets.append(by_emotion[_EMOTION_OF[key]][0])
        elif key in _EMOTION_OF and _EMOTION_OF[key] not in by_emotion:
            targets.append(None)  # an emotion this model has no class for
        else:
            targets.append(None)  # not an emotion we know, or two model classes of that emotion: cannot choose
            unmatched.append(name)
    unmatched_model = tuple(n for i, n in enumerate(model_names) if i not in targets and class_key(n) not in _EMOTION_OF)
    return ClassMatch(dataset_names, model_names, tuple(targets), tuple(unmatched), unmatched_model)


def _explicit_targets(explicit: Mapping[str, str | None], dataset_names: tuple[str, ...],
                      model_names: tuple[str, ...], by_name: dict[str, int]) -> dict[str, int | None]:
    """``{dataset name: model name or None}`` checked against both name lists -> ``{folded dataset name: index}``."""
    if not isinstance(explicit, Mapping):
        raise DataError(f"class_map must map dataset class names to model class names (or null), got {explicit!r}.")
    folded_data = {class_key(n) for n in dataset_names}
    rules: dict[str, int | None] = {}
    for key, value in explicit.items():
        if not isinstance(key, str) or class_key(key) not in folded_data:
            raise DataError(f"class_map: {key!r} is not a class of the dataset; its classes are "
                            f"{', '.join(dataset_names)}.")
        if value is not None and (not isinstance(value, str) or class_key(value) not in by_name):
            raise DataError(f"class_map: {key!r} maps to {value!r}, which is not a class of the model; its classes "
                            f"are {', '.join(model_names)} (or null to leave {key!r} out).")
        rules[class_key(key)] = None if value is None else by_name[class_key(value)]
    return rules
