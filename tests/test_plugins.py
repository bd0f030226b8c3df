"""Plugin loading through real entry points: isolation, strict mode, allow-list, clashes, the example plugin."""

from __future__ import annotations

import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import tomllib
import torch

import zoo
import zoo.registry.hookspecs
from zoo.errors import UnknownComponentError
from zoo.registry.plugins import PluginLoadError, PluginLoadWarning

REPO = Path(__file__).resolve().parents[1]

GOOD_PLUGIN = '''
from torch import nn
from zoo import hookimpl

class Half(nn.Module):
    def __init__(self, face_dim, context_dim):
        super().__init__()
        self.out_dim = face_dim + context_dim
    def forward(self, v_f, v_c):
        import torch
        return torch.cat([v_f, v_c], 1) * 0.5, None

@hookimpl
def register_fusions(register):
    register("{name}", Half, "halves both vectors")
'''


def make_distribution(site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """A minimal installed distribution: ``<dist>-0.1.dist-info`` with entry points, plus its modules."""
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[emotion_zoo]\n{lines}\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


def test_a_good_plugin_adds_a_component(site):
    make_distribution(site, "zp-good", {"good": "zp_good"}, {"zp_good": GOOD_PLUGIN.format(name="half")})
    assert "half" in zoo.list_components("fusion")["fusion"]
    model = zoo.create("glamor_net", fusion="half", data={"face_size": (32, 32), "context_size": (32, 32)})
    assert model(torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)).logits.shape == (2, 7)
    info = {i.name: i for i in zoo.plugin_infos()}["good"]
    assert info.version == "0.1" and info.distribution == "zp-good" and info.hooks == ["register_fusions"]
    assert info.error is None


def test_a_broken_plugin_warns_and_everything_else_works(site):
    make_distribution(site, "zp-broken", {"broken": "zp_broken"}, {"zp_broken": "import not_a_module_anywhere\n"})
    make_distribution(site, "zp-good", {"good": "zp_good"}, {"zp_good": GOOD_PLUGIN.format(name="half")})
    with pytest.warns(PluginLoadWarning, match=r"plugin 'broken' \(distribution zp-broken 0.1\) failed to load.*"
                                               r"ModuleNotFoundError.*not_a_module_anywhere"):
        names = zoo.list_components("fusion")["fusion"]
    assert "half" in names and "adaptive" in names
    zoo.create("glamor_net")
    info = {i.name: i for i in zoo.plugin_infos()}
    assert "ModuleNotFoundError" in info["broken"].error and info["good"].error is None


def test_a_plugin_whose_hook_raises_leaves_nothing_behind(site):
    source = GOOD_PLUGIN.format(name="half") + '''
@hookimpl
def register_presets(register):
    raise RuntimeError("preset table is broken")
'''
    make_distribution(site, "zp-half", {"half": "zp_half"}, {"zp_half": source})
    with pytest.warns(PluginLoadWarning, match="preset table is broken"):
        fusions = zoo.list_components("fusion")["fusion"]
    assert "half" not in fusions  # its fusion was registered before the failure and was rolled back


def test_a_misspelt_hook_is_reported(site):
    source = "from zoo.registry.hookspecs import hookimpl\n@hookimpl\ndef register_backbone(register):\n    pass\n"
    make_distribution(site, "zp-typo", {"typo": "zp_typo"}, {"zp_typo": source})
    with pytest.warns(PluginLoadWarning, match="register_backbone"):
        zoo.list_models()


def test_strict_mode_raises(site, monkeypatch):
    make_distribution(site, "zp-broken", {"broken": "zp_broken"}, {"zp_broken": "raise ImportError('boom')\n"})
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="'broken'.*boom"):
        zoo.list_models()


def test_a_clash_between_two_plugins_names_both(site):
    """The plugin that registers a taken name is refused (a warning naming both); the rest keeps working."""
    make_distribution(site, "zp-one", {"one": "zp_one"}, {"zp_one": GOOD_PLUGIN.format(name="half")})
    make_distribution(site, "zp-two", {"two": "zp_two"}, {"zp_two": GOOD_PLUGIN.format(name="half")})
    with pytest.warns(PluginLoadWarning, match=r"fusion 'half' is registered by two plugins: '(one|two)' and "
                                               r"'(one|two)'; '(one|two)' was refused"):
        fusions = zoo.list_components("fusion")["fusion"]
    assert "half" in fusions and "adaptive" in fusions
    errors = {i.name: i.error for i in zoo.plugin_infos() if i.name in ("one", "two")}
    assert sorted(e is None for e in errors.values()) == [False, True]


def test_a_clash_with_a_builtin_names_both(site, monkeypatch):
    make_distribution(site, "zp-gla", {"gla": "zp_gla"}, {"zp_gla": GOOD_PLUGIN.format(name="adaptive")})
    with pytest.warns(PluginLoadWarning, match="'zoo.models.components.fusion' and 'gla'; 'gla' was refused"):
        assert "glamor_net" in zoo.list_models()
    zoo.create("glamor_net", backbone_args={"channels": [4, 4, 4, 4, 4]})  # the built-in 'adaptive' is intact
    assert "RegistryClashError" in {i.name: i.error for i in zoo.plugin_infos()}["gla"]
    from zoo.registry.plugins import reset

    reset()
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="'zoo.models.components.fusion' and 'gla'"):
        zoo.list_models()


def test_allow_list_loads_only_the_named_plugins(site, monkeypatch):
    make_distribution(site, "zp-one", {"one": "zp_one"}, {"zp_one": GOOD_PLUGIN.format(name="one_fusion")})
    make_distribution(site, "zp-two", {"two": "zp_two"}, {"zp_two": GOOD_PLUGIN.format(name="two_fusion")})
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "zp-two")  # a distribution name works as well as an entry point name
    fusions = zoo.list_components("fusion")["fusion"]
    assert "two_fusion" in fusions and "one_fusion" not in fusions


def test_empty_allow_list_loads_no_third_party_plugin(site, monkeypatch):
    make_distribution(site, "zp-one", {"one": "zp_one"}, {"zp_one": GOOD_PLUGIN.format(name="one_fusion")})
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "")
    assert "one_fusion" not in zoo.list_components("fusion")["fusion"]
    assert all(i.builtin for i in zoo.plugin_infos())


def test_allow_list_warns_about_unknown_names(site, monkeypatch):
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "nothing-installed")
    with pytest.warns(PluginLoadWarning, match="'nothing-installed'"):
        zoo.list_models()


def test_the_example_plugin_through_its_entry_point(site, monkeypatch):
    """plugins/emotion-zoo-dotattn, discovered through the entry point its own pyproject.toml declares."""
    plugin_dir = REPO / "plugins" / "emotion-zoo-dotattn"
    project = tomllib.loads((plugin_dir / "pyproject.toml").read_text())["project"]
    make_distribution(site, project["name"], project["entry-points"]["emotion_zoo"], {})
    monkeypatch.syspath_prepend(str(plugin_dir / "src"))
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "dotattn")
    assert "dot" in zoo.list_components("attention")["attention"]
    assert "glamor_dot" in zoo.list_models()
    model = zoo.create("glamor_dot", data={"face_size": (32, 32), "context_size": (48, 48)})
    out = model(torch.randn(2, 3, 32, 32), torch.randn(2, 3, 48, 48))
    assert out.attention.shape == (2, 3, 3)
    torch.testing.assert_close(out.attention.sum(dim=(1, 2)), torch.ones(2))
    info = {i.name: i for i in zoo.plugin_infos()}["dotattn"]
    assert info.hooks == ["register_attentions", "register_presets"] and info.distribution == "emotion-zoo-dotattn"
    sys.modules.pop("zoo_dotattn", None)


def test_in_process_plugin_registration(fresh_plugins):
    from zoo.registry.plugins import register_plugin, unregister_plugin

    class TestPlugin:
        @staticmethod
        @zoo.registry.hookspecs.hookimpl
        def register_presets(register):
            register("tiny_face", {"streams": "face", "backbone": "caer_cnn", "num_classes": 2})

    register_plugin(TestPlugin(), "undo-test")
    assert "tiny_face" in zoo.list_models()
    unregister_plugin("undo-test")
    assert "tiny_face" not in zoo.list_models()
    with pytest.raises(UnknownComponentError):
        zoo.create("tiny_face")


def test_no_warning_without_plugins(fresh_plugins):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zoo.list_models()


def test_hookimpl_is_public_and_the_old_module_is_a_deprecated_alias():
    """``zoo.hookimpl`` is the marker plugins use; ``zoo.hookspecs`` (the pre-package path) still works, with a
    DeprecationWarning that says what to import instead."""
    import importlib

    from zoo.registry import hookspecs

    assert zoo.hookimpl is hookspecs.hookimpl and "hookimpl" in dir(zoo)
    sys.modules.pop("zoo.hookspecs", None)
    with pytest.warns(DeprecationWarning, match=r"from zoo import hookimpl"):
        old = importlib.import_module("zoo.hookspecs")
    assert old.hookimpl is hookspecs.hookimpl and old.register_presets is hookspecs.register_presets


def test_the_example_plugin_uses_only_the_public_plugin_surface():
    """Its zoo imports are ``zoo`` itself and ``zoo.hookimpl``: nothing from zoo's internal modules."""
    import ast

    source = (REPO / "plugins" / "emotion-zoo-dotattn" / "src" / "zoo_dotattn" / "__init__.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {f"{node.module}.{a.name}" for a in node.names}
    assert {name for name in imported if name.startswith("zoo")} == {"zoo", "zoo.hookimpl"}


def make_plugin(site: Path, name: str, source: str) -> None:
    """The distribution ``zh-NAME`` whose one plugin NAME is the module ``zh_NAME`` holding ``source``."""
    make_distribution(site, f"zh-{name}", {name: f"zh_{name}"}, {f"zh_{name}": source})


HOOK = "from zoo.registry.hookspecs import hookimpl\nimport sys\n"


@pytest.mark.parametrize("source", [
    "import sys\nsys.exit(0)\n",
    HOOK + "@hookimpl\ndef register_fusions(register):\n    sys.exit(3)\n",
])
def test_8_a_plugin_that_exits_is_a_plugin_failure(site, monkeypatch, run_cli, source):
    from zoo.registry.plugins import reset

    make_plugin(site, "quitter", source)
    with pytest.warns(PluginLoadWarning, match=r"'quitter'.*failed to load and was skipped: SystemExit"):
        assert "glamor_net" in zoo.list_models()
    assert "SystemExit" in {i.name: i.error for i in zoo.plugin_infos()}["quitter"]
    reset()
    with pytest.warns(PluginLoadWarning, match="quitter"):
        code, out, err = run_cli(["list"])
    assert code == 0 and "glamor_net" in out
    reset()
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="'quitter' .*failed to load: SystemExit") as info:
        zoo.list_models()
    assert "skipped" not in str(info.value) and "keeps working" not in str(info.value)


def test_11_a_preset_with_a_dot_is_refused_and_list_keeps_working(site, run_cli):
    make_plugin(site, "dotted", HOOK + "@hookimpl\ndef register_presets(register):\n"
                "    register('my.model', {'backbone': 'caer_cnn'})\n")
    with pytest.warns(PluginLoadWarning, match=r"preset name 'my\.model' is not allowed"):
        code, out, err = run_cli(["list"])
    assert code == 0 and "glamor_net" in out and "my.model" not in out


def test_11_a_clash_with_a_builtin_leaves_every_registry_and_plugins_command_working(site, run_cli):
    make_plugin(site, "clash", HOOK + "from zoo.models.components.fusion import ConcatFusion\n@hookimpl\n"
                "def register_fusions(register):\n    register('adaptive', ConcatFusion)\n"
                "    register('extra_fusion', ConcatFusion)\n")
    with pytest.warns(PluginLoadWarning, match=r"fusion 'adaptive' is registered by two plugins: "
                                               r"'zoo.models.components.fusion' and 'clash'; 'clash' was refused"):
        code, out, err = run_cli(["plugins"])
    assert code == 0 and "clash" in out and "RegistryClashError" in out
    fusions = zoo.list_components("fusion")["fusion"]
    assert "adaptive" in fusions and "extra_fusion" not in fusions and len(zoo.list_models()) >= 8


def test_11_a_plugin_registering_a_name_twice_is_named_once(site):
    make_plugin(site, "twice", HOOK + "from zoo.models.components.fusion import ConcatFusion\n@hookimpl\n"
                "def register_fusions(register):\n    register('dup', ConcatFusion)\n    register('dup', ConcatFusion)\n")
    with pytest.warns(PluginLoadWarning, match=r"plugin 'twice' registers fusion 'dup' twice"):
        assert "dup" not in zoo.list_components("fusion")["fusion"]


@pytest.mark.parametrize("factory, match", [
    ("def factory(**kw):\n    raise RuntimeError('exploded')\n", r"RuntimeError: exploded"),
    ("def factory(**kw):\n    return None\n", r"returned NoneType, not a torch.nn.Module"),
])
def test_15_a_component_factory_that_raises_or_returns_none_is_a_clean_error(site, factory, match):
    from zoo.errors import ComponentBuildError

    make_plugin(site, "bad", HOOK + factory + "@hookimpl\ndef register_backbones(register):\n"
                "    register('bad_net', factory)\n")
    with pytest.raises(ComponentBuildError, match=rf"backbone 'bad_net' \(from plugin 'bad'\).*{match}"):
        zoo.create("caer_net_s", backbone="bad_net")
