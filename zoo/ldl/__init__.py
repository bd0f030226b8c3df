"""LDLVA: uncertainty-aware label distribution learning in valence-arousal space (Le et al., WACV 2023;
minhnhatvt/label-distribution-learning-fer-tf@a741b36).

* :mod:`zoo.ldl.knn` — exact K nearest neighbours in the auxiliary space (the official code's ``knn`` column);
* :mod:`zoo.ldl.auxiliary` — auxiliary-space providers: dataset VA, teacher pseudo-VA, teacher embeddings;
* :mod:`zoo.ldl.similarity` — local similarity s and the calibration net g (paper Eq. for c = ζ·s);
* :mod:`zoo.ldl.discriminative` — the discriminative loss L_D and the class-centre update;
* :mod:`zoo.ldl.target` — the ``ldl_va`` target builder (registered by :mod:`zoo.builtin.targets`);
* :mod:`zoo.ldl.noise` — synthetic label noise as in the LDLVA experiments;
* row gathers and the all-rank BatchNorm that keep DDP equal to one process live in :mod:`zoo.runtime`.
"""
