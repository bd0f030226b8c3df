"""Built-in face detectors: ``register_face_detectors`` over lazy factory strings (:mod:`zoo.data.detection`)."""

from __future__ import annotations

from zoo.registry.entries import LazyFactory
from zoo.registry.hookspecs import hookimpl


@hookimpl
def register_face_detectors(register):
    register("mtcnn", LazyFactory("zoo.data.mtcnn:MTCNNFaceDetector"), "MTCNN cascade (Zhang et al. 2016); weights shipped in zoo/data/weights/mtcnn")
    register("haar", LazyFactory("zoo.data.detection:HaarFaceDetector"), "OpenCV frontal-face Haar cascade (ships with opencv-python-headless)")
