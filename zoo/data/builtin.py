"""Built-in dataset readers, registered through the ``register_datasets`` hook like any plugin's."""

from __future__ import annotations

from zoo.registry.hookspecs import hookimpl


@hookimpl
def register_datasets(register):
    from zoo.data import readers, synth

    register("caer_s", readers.caer_s, "CAER-S: {train,test}/<Class>/*.png + face boxes (list or crop files)")
    register("ncaer_s", readers.caer_s, "NCAER-S: images/<split>/<Class>/*.jpg + crop/<split>/<Class>/*.txt")
    register("affectnet", readers.affectnet, "AffectNet training.csv / validation.csv (bbox, expression, V/A)")
    register("rafdb", readers.rafdb, "RAF-DB basic: list_patition_label.txt + Image/aligned (AffectNet-7 order)")
    register("sfew", readers.sfew, "SFEW 2.0 class folders {Train,Val}/<Class>/ (AffectNet-7 order)")
    register("fer2013", readers.fer2013, "FER2013: Kaggle class folders or fer2013.csv pixels")
    register("ferplus", readers.ferplus, "FER+: fer2013new.csv votes (majority label + vote distribution)")
    register("folder", readers.folder, "generic <split>/<Class>/* folders (whole image or detected faces)")
    register("csv", readers.csv_reader, "generic CSV: path,label[,x1,y1,x2,y2][,split]")
    register("synth_caer", synth.synth_caer, "synthetic context-emotion scenes generated from a seed")
