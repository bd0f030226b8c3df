"""Inference: ``zoo.predict`` on images and videos, face tracking, fast paths and export."""
