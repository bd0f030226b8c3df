"""The built-in plugins, one module per kind, each registered exactly as a third-party plugin is.

llm keeps its built-ins as modules in one folder (``llm/default_plugins/``), each plugin named after its module;
so does this package: :data:`zoo.registry.plugins.DEFAULT_PLUGINS` is the tuple of these modules' names, and
``zoo-cli plugins`` lists them under those names. Every module holds one module-level ``@hookimpl`` whose
factories are :class:`~zoo.registry.entries.LazyFactory` strings, so loading the built-ins imports no torch;
building a component imports the module its string names. The loader marks every entry they register
``builtin=True``.

* :mod:`zoo.builtin.backbones`, :mod:`~zoo.builtin.attention`, :mod:`~zoo.builtin.fusion`,
  :mod:`~zoo.builtin.targets` — the model components (``ldl_va`` included);
* :mod:`zoo.builtin.presets` — the named models and their pretrained tags, one table per family;
* :mod:`zoo.builtin.datasets`, :mod:`zoo.builtin.detectors` — dataset readers and face detectors.

This package is layer 1 (with ``registry``): it imports nothing above it. Its lazy strings name the modules of
the layers above, and the architecture test checks each names an object that exists.
"""
