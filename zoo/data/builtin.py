"""Built-in dataset readers, registered through the ``register_datasets`` hook like any plugin's.

The factories are :class:`~zoo.registry.entries.LazyFactory` references: registering them imports no reader
(and no torch).
"""

from __future__ import annotations

from zoo.registry.entries import LazyFactory
from zoo.registry.hookspecs import hookimpl


def _reader(name: str) -> LazyFactory:
    return LazyFactory(f"zoo.data.readers:{name}")


@hookimpl
def register_datasets(register):
    register("caer_s", _reader("caer_s"), "CAER-S: {train,test}/<Class>/*.png + face boxes (list or crop files)")
    register("ncaer_s", _reader("caer_s"), "NCAER-S: images/<split>/<Class>/*.jpg + crop/<split>/<Class>/*.txt")
    register("affectnet", _reader("affectnet"), "AffectNet training.csv / validation.csv (bbox, expression, V/A)")
    register("rafdb", _reader("rafdb"), "RAF-DB basic: list_patition_label.txt + Image/aligned (AffectNet-7 order)")
    register("sfew", _reader("sfew"), "SFEW 2.0 class folders {Train,Val}/<Class>/ (AffectNet-7 order)")
    register("fer2013", _reader("fer2013"), "FER2013: Kaggle class folders or fer2013.csv pixels")
    register("ferplus", _reader("ferplus"), "FER+: fer2013new.csv votes (majority label + vote distribution)")
    register("expw", _reader("expw"), "ExpW: label.lst + Images/ (faces in their photos; val carved by photo)")
    register("folder", _reader("folder"), "generic <split>/<Class>/* folders (whole image or detected faces)")
    register("csv", _reader("csv_reader"), "generic CSV: path,label[,x1,y1,x2,y2][,split]")
    register("synth_caer", LazyFactory("zoo.data.synth:synth_caer"),
             "synthetic context-emotion scenes generated from a seed")
