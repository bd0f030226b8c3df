"""Built-in dataset readers: ``register_datasets`` over lazy factory strings (registering them imports no reader
and no torch)."""

from __future__ import annotations

from zoo.registry.entries import LazyFactory
from zoo.registry.hookspecs import hookimpl


@hookimpl
def register_datasets(register):
    register("caer_s", LazyFactory("zoo.data.readers:caer_s"), "CAER-S: {train,test}/<Class>/*.png + face boxes (list or crop files)")
    register("ncaer_s", LazyFactory("zoo.data.readers:caer_s"), "NCAER-S: images/<split>/<Class>/*.jpg + crop/<split>/<Class>/*.txt")
    register("affectnet", LazyFactory("zoo.data.readers:affectnet"), "AffectNet training.csv / validation.csv (bbox, expression, V/A)")
    register("rafdb", LazyFactory("zoo.data.readers:rafdb"), "RAF-DB basic: list_patition_label.txt + Image/aligned (AffectNet-7 order)")
    register("sfew", LazyFactory("zoo.data.readers:sfew"), "SFEW 2.0 class folders {Train,Val}/<Class>/ (AffectNet-7 order)")
    register("fer2013", LazyFactory("zoo.data.readers:fer2013"), "FER2013: Kaggle class folders or fer2013.csv pixels")
    register("ferplus", LazyFactory("zoo.data.readers:ferplus"), "FER+: fer2013new.csv votes (majority label + vote distribution)")
    register("expw", LazyFactory("zoo.data.readers:expw"), "ExpW: label.lst + Images/ (faces in their photos; val carved by photo)")
    register("folder", LazyFactory("zoo.data.readers:folder"), "generic <split>/<Class>/* folders (whole image or detected faces)")
    register("csv", LazyFactory("zoo.data.readers:csv_reader"), "generic CSV: path,label[,x1,y1,x2,y2][,split]")
    register("synth_caer", LazyFactory("zoo.data.synth:synth_caer"), "synthetic context-emotion scenes generated from a seed")
