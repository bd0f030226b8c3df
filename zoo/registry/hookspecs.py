"""Plugin hook specifications (llm-style: the registration hooks receive a ``register`` callback).

A plugin is any module or object with ``@hookimpl``-decorated functions named like the specs below.
Built-in components are registered through exactly these hooks (the modules of :mod:`zoo.builtin`);
third-party packages expose a module under the entry-point group ``emotion_zoo``. ``register_commands`` is
called later, when ``zoo-cli`` builds its app, and receives the app itself.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("emotion_zoo")
hookimpl = pluggy.HookimplMarker("emotion_zoo")


@hookspec
def register_backbones(register):
    """Register feature extractors: ``register(name, factory, description=..., prefix=False)``.

    ``factory(**args) -> nn.Module`` returns a module mapping ``B×3×H×W`` to a ``B×C×h×w`` feature map and
    exposing ``out_channels``. With ``prefix=True`` the name is a family such as ``"timm:"`` and the factory
    receives the rest of the requested name as its first argument.
    """


@hookspec
def register_attentions(register):
    """Register context pooling heads: ``factory(context_channels, face_channels, **args) -> nn.Module``.

    The module's ``forward(context_map B×C×h×w, face_vector B×D or None)`` returns ``(context_vector B×C,
    attention B×h×w)`` for any map size h×w; ``face_channels`` (D) is None for a model without a face stream.
    A plugin's attention is checked against this when a model is built (one forward on a small probe map).
    """


@hookspec
def register_fusions(register):
    """Register stream fusions: ``factory(face_dim, context_dim, **args) -> nn.Module``.

    The module exposes ``out_dim``; ``forward(v_f, v_c)`` returns ``(fused B×out_dim, weights B×2 or None)``.
    """


@hookspec
def register_targets(register):
    """Register label-target builders: ``factory(num_classes, feature_dim, num_samples=None, **args)``.

    The returned module turns a batch's labels into the training target and loss (``zoo.models.components.targets``).
    """


@hookspec
def register_presets(register):
    """Register named models: ``register(name, model_args, description=..., pretrained=..., without_weights=...)``.

    ``pretrained`` is a sequence of :class:`~zoo.registry.entries.PretrainedCfg` (or dicts of its fields), the
    first the default tag; ``without_weights`` says, for a preset without weights, what to use or run instead.
    """


@hookspec
def register_datasets(register):
    """Register dataset readers: ``factory(path, split="train", **options) -> Dataset``.

    Named by a spec ``"name:path"`` or ``"name"`` (see :func:`zoo.data.open_dataset`). ``path`` is the text
    after the first ``:`` (None when absent). Build the reader on :mod:`zoo.data.reader_kit` to take the options,
    raise the errors and return the dataset every built-in reader does.
    """


@hookspec
def register_face_detectors(register):
    """Register face detectors: ``factory(**args) -> detector``, ``detector(image) -> list[FaceBox]``.

    ``image`` is an RGB ``PIL.Image``; every face found is returned as a :class:`zoo.data.FaceBox` with a score
    (see :mod:`zoo.data.detection`).
    """


@hookspec
def register_commands(app):
    """Add ``zoo-cli`` commands: ``app`` is a ``typer.Typer``; use ``@app.command()`` or ``app.add_typer(sub,
    name=...)``. Called when ``zoo-cli`` builds its app (:func:`zoo.cli.build_app`), after the built-in
    commands; a command named like an existing one refuses the plugin (a warning naming both).
    """
