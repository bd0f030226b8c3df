"""Plugin loading through real entry points: isolation, strict mode, allow-list, clashes, the example plugin."""

from __future__ import annotations

import re
import sys
import textwrap
import types
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
    with pytest.warns(PluginLoadWarning, match="'zoo.builtin.fusion' and 'gla'; 'gla' was refused"):
        assert "glamor_net" in zoo.list_models()
    zoo.create("glamor_net", backbone_args={"channels": [4, 4, 4, 4, 4]})  # the built-in 'adaptive' is intact
    assert "RegistryClashError" in {i.name: i.error for i in zoo.plugin_infos()}["gla"]
    from zoo.registry.plugins import reset

    reset()
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="'zoo.builtin.fusion' and 'gla'"):
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


def test_hookimpl_is_public():
    """``zoo.hookimpl`` is the marker plugins use (the specifications are in ``zoo.registry.hookspecs``)."""
    from zoo.registry import hookspecs

    assert zoo.hookimpl is hookspecs.hookimpl and "hookimpl" in dir(zoo)


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


# --------------------------------------------------------------------------------------------- in-process plugins


def in_process_module(name: str, source: str) -> types.ModuleType:
    """A plugin module made from ``source`` in memory, never installed nor on sys.path."""
    module = types.ModuleType(name)
    exec(compile(textwrap.dedent(source), f"<{name}>", "exec"), module.__dict__)
    return module


class _HalfFusionPlugin:
    """An in-process plugin class: GOOD_PLUGIN's fusion, as ``half_in_process``."""

    register_fusions = staticmethod(in_process_module("half", GOOD_PLUGIN.format(name="half_in_process")).register_fusions)


def test_use_plugin_registers_for_the_block_only(fresh_plugins):
    from zoo.registry.plugins import use_plugin

    with use_plugin(_HalfFusionPlugin) as info:
        assert info.name == "_HalfFusionPlugin" and info.error is None and info.hooks == ["register_fusions"]
        assert "half_in_process" in zoo.list_components("fusion")["fusion"]
        assert info in zoo.plugin_infos()
        model = zoo.create("glamor_net", fusion="half_in_process", backbone_args={"channels": [4, 4, 4, 4, 4]},
                           data={"face_size": (32, 32), "context_size": (32, 32)})
        assert model.feature_dim == 8
    assert "half_in_process" not in zoo.list_components("fusion")["fusion"]
    assert "_HalfFusionPlugin" not in {i.name for i in zoo.plugin_infos()}


def test_use_plugin_raises_for_a_broken_plugin_and_leaves_nothing(fresh_plugins):
    from zoo.registry.plugins import use_plugin

    class Broken(_HalfFusionPlugin):
        @staticmethod
        @zoo.hookimpl
        def register_presets(register):
            raise RuntimeError("preset table is broken")

    with pytest.raises(PluginLoadError, match=r"plugin 'Broken' failed to load: RuntimeError: preset table is broken"):
        with use_plugin(Broken):
            pass
    assert "half_in_process" not in zoo.list_components("fusion")["fusion"]


def test_register_plugin_follows_the_isolation_policy_and_refuses_a_name_twice(fresh_plugins):
    from zoo.registry.plugins import register_plugin, unregister_plugin

    class Clash:
        @staticmethod
        @zoo.hookimpl
        def register_fusions(register):
            register("adaptive", lambda face_dim, context_dim: None)

    with pytest.warns(PluginLoadWarning, match=r"fusion 'adaptive' is registered by two plugins: "
                                               r"'zoo.builtin.fusion' and 'clash'; 'clash' was refused"):
        info = register_plugin(Clash, "clash")
    assert info.error.startswith("RegistryClashError")
    unregister_plugin("clash")

    first = register_plugin(_HalfFusionPlugin, "half")
    assert first.error is None
    with pytest.raises(PluginLoadError, match=r"named 'half' is registered already; call unregister_plugin\('half'\)"):
        register_plugin(_HalfFusionPlugin(), "half")
    with pytest.raises(PluginLoadError, match="registered already, as 'half'"):
        register_plugin(_HalfFusionPlugin, "half-again")
    assert "half_in_process" in zoo.list_components("fusion")["fusion"]  # the refusals left the first intact
    unregister_plugin("half")
    assert "half_in_process" not in zoo.list_components("fusion")["fusion"]


def test_the_in_process_plugin_functions_are_exported_at_the_root(fresh_plugins):
    from zoo.registry import plugins

    assert zoo.register_plugin is plugins.register_plugin and zoo.unregister_plugin is plugins.unregister_plugin
    assert zoo.use_plugin is plugins.use_plugin
    assert {"register_plugin", "unregister_plugin", "use_plugin"} <= set(dir(zoo))


# --------------------------------------------------------------------------------------------- a reader plugin


TOY_CLASSES = ("calm", "excited")


def toy_reader(path, split="train", **options):
    """A plugin's reader on the public base: ``<root>/<split>/<calm|excited>/*.png``, whole images as faces."""
    from zoo.data.reader_kit import (
        SPLIT_ALIASES,
        SPLIT_OPTIONS,
        ClassMap,
        ReaderCall,
        dataset_root,
        find_split_dir,
        scan_class_folders,
        whole_image_samples,
    )

    root = dataset_root(path, "toy", "/data/toy")
    call = ReaderCall("toy", split, options, SPLIT_OPTIONS)
    split_dir = find_split_dir(root, call.source_split, SPLIT_ALIASES)
    items = scan_class_folders(split_dir, ClassMap(TOY_CLASSES), call.on_error, call.report)
    return call.finish(call.carve(whole_image_samples(items)), TOY_CLASSES)


class _ToyReaderPlugin:
    @staticmethod
    @zoo.hookimpl
    def register_datasets(register):
        from zoo.data.reader_kit import class_folder_dataset

        register("toy", toy_reader, "toy class folders (test plugin)")
        register("toy_folders", lambda path, split="train", **options: class_folder_dataset(
            "toy_folders", path, split, options, TOY_CLASSES, {"relaxed": "calm"}, "/data/toy"))


def _toy_tree(root: Path, counts: dict[str, dict[str, int]]) -> Path:
    from PIL import Image

    for split, per_class in counts.items():
        for name, count in per_class.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (12, 10), (40 * i % 255, 90, 200)).save(folder / f"{i:02d}.png")
    return root


def test_a_plugin_reader_on_the_reader_kit_through_the_dataset_spec(fresh_plugins, tmp_path):
    from zoo.config import DataConfig
    from zoo.data import DataError, open_dataset
    from zoo.registry.plugins import use_plugin

    root = _toy_tree(tmp_path / "toy", {"Train": {"calm": 6, "excited": 4}, "test": {"calm": 2, "excited": 1}})
    small = DataConfig(face_size=(8, 8), context_size=(8, 8), context_resize=(10, 10))
    with use_plugin(_ToyReaderPlugin):
        train = open_dataset(f"toy:{root}", "train", data_config=small)
        assert len(train) == 10 and train.label_names == TOY_CLASSES and train.labels.tolist() == [0] * 6 + [1] * 4
        assert train.name == "toy[train]" and train.train and train[0]["face"].shape == (3, 8, 8)
        test = open_dataset(f"toy:{root}", "test", data_config=small)
        assert len(test) == 3 and not test.train

        carved = {split: open_dataset(f"toy:{root}", split, data_config=small, val_fraction=0.3, split_seed=1)
                  for split in ("train", "val")}
        assert (len(carved["train"]), len(carved["val"])) == (7, 3)  # round(0.3 × 10) held out
        paths = {split: {s.path for s in ds.samples} for split, ds in carved.items()}
        assert not paths["train"] & paths["val"] and paths["train"] | paths["val"] == {s.path for s in train.samples}
        again = open_dataset(f"toy:{root}", "val", data_config=small, val_fraction=0.3, split_seed=1)
        assert {s.path for s in again.samples} == paths["val"]  # seeded
        other = open_dataset(f"toy:{root}", "val", data_config=small, val_fraction=0.3, split_seed=2)
        assert {s.path for s in other.samples} != paths["val"]

        with pytest.raises(DataError, match=r"toy: unknown option\(s\) boxes; this reader accepts .*split_seed.*"
                                             r"val_fraction"):
            open_dataset(f"toy:{root}", "train", boxes="detect")
        with pytest.raises(DataError, match=r"Dataset 'toy' needs a path: write toy:/data/toy"):
            open_dataset("toy", "train")
        (root / "Train" / "bored").mkdir()
        (root / "Train" / "bored" / "x.png").write_bytes((root / "Train" / "calm" / "00.png").read_bytes())
        with pytest.raises(DataError, match=r"unknown class folder\(s\) 'bored'"):
            open_dataset(f"toy:{root}", "train")
        with pytest.warns(UserWarning, match="skipped=1"):
            skipped = open_dataset(f"toy:{root}", "train", data_config=small, on_error="skip")
        assert len(skipped) == 10 and skipped.report.counts["skipped"] == 1


def test_class_folder_dataset_is_a_whole_reader_for_a_plugin(fresh_plugins, tmp_path):
    from zoo.data import open_dataset
    from zoo.registry.plugins import use_plugin

    root = _toy_tree(tmp_path / "toy", {"train": {"relaxed": 3, "EXCITED": 5}})
    with use_plugin(_ToyReaderPlugin):
        train = open_dataset(f"toy_folders:{root}", "train")
        val = open_dataset(f"toy_folders:{root}", "val", val_fraction=0.25)
    assert train.label_names == TOY_CLASSES and train.labels.tolist() == [1] * 5 + [0] * 3  # EXCITED/ < relaxed/
    assert (len(val), val.name) == (2, "toy_folders[val]")


# --------------------------------------------------------------------------------------------- plugin commands


class _CommandPlugin:
    """Adds ``zoo-cli greet NAME`` and a sub-app ``toy-tools`` with ``count``."""

    @staticmethod
    @zoo.hookimpl
    def register_commands(app):
        import typer

        @app.command()
        def greet(name: str, shout: bool = typer.Option(False, help="upper case")) -> None:
            """Say hello (test plugin)."""
            text = f"hello {name}"
            typer.echo(text.upper() if shout else text)

        tools = typer.Typer(help="toy tools (test plugin)")

        @tools.command()
        def count(n: int) -> None:
            typer.echo(" ".join(str(i) for i in range(n)))

        app.add_typer(tools, name="toy-tools")


def test_a_plugin_adds_zoo_cli_commands(fresh_plugins):
    from typer.testing import CliRunner

    from zoo.cli import build_app
    from zoo.registry.plugins import use_plugin

    runner = CliRunner()
    with use_plugin(_CommandPlugin) as info:
        assert info.hooks == ["register_commands"]
        app = build_app()
        help_text = runner.invoke(app, ["--help"]).output
        assert "greet" in help_text and "Say hello (test plugin)." in help_text and "toy-tools" in help_text
        assert "train" in help_text  # the built-in commands are all there
        result = runner.invoke(app, ["greet", "zoo", "--shout"])
        assert result.exit_code == 0 and result.output == "HELLO ZOO\n"
        assert runner.invoke(app, ["toy-tools", "count", "3"]).output == "0 1 2\n"
        assert runner.invoke(app, ["list", "glamor_net*"]).exit_code == 0
    assert "greet" not in runner.invoke(build_app(), ["--help"]).output


def test_a_plugin_command_named_like_a_builtin_is_refused(fresh_plugins):
    from typer.testing import CliRunner

    from zoo.cli import build_app
    from zoo.registry.plugins import register_plugin, unregister_plugin

    class Shadow(_HalfFusionPlugin):
        @staticmethod
        @zoo.hookimpl
        def register_commands(app):
            @app.command("friendly")
            def friendly() -> None:
                pass

            @app.command("list")
            def shadow_list() -> None:
                print("not the zoo's list")

    register_plugin(Shadow, "shadow")
    assert "half_in_process" in zoo.list_components("fusion")["fusion"]
    with pytest.warns(PluginLoadWarning, match=r"'shadow' failed to load.*zoo-cli command 'list' is registered by "
                                               r"two plugins: 'zoo.cli' and 'shadow'; 'shadow' was refused"):
        app = build_app()
    result = CliRunner().invoke(app, ["list", "glamor_net"])
    assert result.exit_code == 0 and "not the zoo's list" not in result.output and "glamor_net" in result.output
    assert "friendly" not in CliRunner().invoke(app, ["--help"]).output  # nothing of the plugin's commands
    assert "half_in_process" not in zoo.list_components("fusion")["fusion"]  # nor of its components
    assert "RegistryClashError" in {i.name: i.error for i in zoo.plugin_infos()}["shadow"]
    unregister_plugin("shadow")


def test_a_plugin_whose_register_commands_raises_is_refused_or_raises_when_strict(fresh_plugins, monkeypatch):
    from typer.testing import CliRunner

    from zoo.cli import build_app
    from zoo.registry.plugins import register_plugin

    class Raises:
        @staticmethod
        @zoo.hookimpl
        def register_commands(app):
            @app.command()
            def half_added() -> None:
                pass

            raise RuntimeError("command table is broken")

    register_plugin(Raises, "raises")
    with pytest.warns(PluginLoadWarning, match=r"plugin 'raises' failed to load.*command table is broken"):
        app = build_app()
    assert "half-added" not in CliRunner().invoke(app, ["--help"]).output
    fresh_plugins.reset()
    register_plugin(Raises, "raises")
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="'raises' failed to load: RuntimeError: command table is broken"):
        build_app()


def test_plugin_commands_through_an_entry_point_in_zoo_cli(site, monkeypatch, capsys):
    """Installed (an entry point), the plugin's command is in a real ``zoo-cli`` process's app."""
    source = '''
import typer
from zoo import hookimpl

@hookimpl
def register_commands(app):
    @app.command()
    def ping() -> None:
        """Answer pong."""
        typer.echo("pong")
'''
    make_distribution(site, "zp-ping", {"ping": "zp_ping"}, {"zp_ping": source})
    monkeypatch.setattr(sys, "argv", ["zoo-cli", "ping"])
    from zoo.cli import main

    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 0 and capsys.readouterr().out == "pong\n"


# --------------------------------------------------------------------------------------------- attention contract


def _attention_plugin(make_forward):
    """A plugin whose attention ``bad`` returns what ``make_forward(context_map, face_vector)`` returns."""
    from torch import nn

    class Bad(nn.Module):
        def __init__(self, context_channels, face_channels, **_):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, context_map, face_vector=None):
            return make_forward(context_map * self.scale, face_vector)

    class Plugin:
        @staticmethod
        @zoo.hookimpl
        def register_attentions(register):
            register("bad", Bad, "a broken attention (test plugin)")

    return Plugin


SMALL_GLAMOR = {"backbone_args": {"channels": [4, 4, 4, 4, 4]}, "data": {"face_size": (32, 32), "context_size": (32, 32)}}


@pytest.mark.parametrize(("forward", "got"), [
    (lambda m, f: (torch.cat([m.mean((2, 3)), m.mean((2, 3))], 1), m.mean(1)), r"returned \(\(2, 8\), \(2, 3, 4\)\)"),
    (lambda m, f: (m.mean((2, 3)), m.mean(1).transpose(1, 2)), r"returned \(\(2, 4\), \(2, 4, 3\)\)"),
    (lambda m, f: m.mean((2, 3)), r"returned a Tensor of shape \(2, 4\)"),
    (lambda m, f: (m.mean((2, 3)), None), r"returned a tuple;"),
])
def test_a_plugin_attention_that_breaks_the_contract_names_itself_when_the_model_is_built(fresh_plugins, forward, got):
    from zoo.errors import ComponentBuildError, ZooError
    from zoo.registry.plugins import use_plugin

    with use_plugin(_attention_plugin(forward), "broken-attention"):
        with pytest.raises(ComponentBuildError) as error:
            zoo.create("glamor_net", attention="bad", **SMALL_GLAMOR)
    message = str(error.value)
    assert isinstance(error.value, ZooError)
    assert "attention 'bad' (from plugin 'broken-attention')" in message and "2×4×3×4 context map" in message
    assert "expects (context vector (2, 4), attention map (2, 3, 4))" in message
    assert re.search(got, message), message


def test_a_plugin_attention_whose_forward_raises_is_named(fresh_plugins):
    from zoo.errors import ComponentBuildError
    from zoo.registry.plugins import use_plugin

    def forward(context_map, face_vector):
        raise RuntimeError("needs a 7×7 map")

    with use_plugin(_attention_plugin(forward), "fixed-size"):
        with pytest.raises(ComponentBuildError, match=r"attention 'bad' \(from plugin 'fixed-size'\), run on a "
                                                      r"2×4×3×4 context map and a 2×4 face vector, raised RuntimeError: "
                                                      r"needs a 7×7 map. Its forward must take any map size"):
            zoo.create("glamor_net", attention="bad", **SMALL_GLAMOR)


def test_a_plugin_attention_returning_nan_is_refused_when_the_model_is_built(fresh_plugins):
    from zoo.errors import ComponentBuildError
    from zoo.registry.plugins import use_plugin

    def forward(context_map, face_vector):
        return context_map.mean((2, 3)) * float("nan"), context_map.mean(1)

    with use_plugin(_attention_plugin(forward), "nan-attention"):
        with pytest.raises(ComponentBuildError, match=r"attention 'bad' \(from plugin 'nan-attention'\).*returned NaN "
                                                      r"or infinite values in its context vector;"):
            zoo.create("glamor_net", attention="bad", **SMALL_GLAMOR)


def test_the_attention_probe_changes_no_random_state_nor_mode(fresh_plugins):
    """A plugin attention that keeps the contract: the model built is the one built without the probe."""
    from zoo.registry.plugins import use_plugin

    def forward(context_map, face_vector):
        torch.rand(3)  # a forward that draws random numbers must not move the seeded initialisation
        return context_map.mean((2, 3)), torch.softmax(context_map.mean(1).flatten(1), 1).reshape(
            context_map.shape[0], *context_map.shape[2:])

    with use_plugin(_attention_plugin(forward), "good-attention"):
        torch.manual_seed(0)
        probed = zoo.create("glamor_net", attention="bad", **SMALL_GLAMOR)
    torch.manual_seed(0)
    plain = zoo.create("glamor_net", attention="none", **SMALL_GLAMOR)
    assert probed.attention.training
    for part in ("fusion", "classifier"):  # built after the attention: the same draws from the same seed
        for key, value in getattr(plain, part).state_dict().items():
            torch.testing.assert_close(getattr(probed, part).state_dict()[key], value)


def test_the_example_plugin_in_process_as_its_readme_shows(fresh_plugins, monkeypatch):
    import importlib

    from zoo.registry.plugins import use_plugin

    monkeypatch.syspath_prepend(str(REPO / "plugins" / "emotion-zoo-dotattn" / "src"))
    zoo_dotattn = importlib.import_module("zoo_dotattn")
    try:
        with use_plugin(zoo_dotattn) as info:
            assert info.name == "zoo_dotattn" and info.hooks == ["register_attentions", "register_presets"]
            model = zoo.create("glamor_dot", data={"face_size": (32, 32), "context_size": (48, 48)})
            assert model(torch.randn(1, 3, 32, 32), torch.randn(1, 3, 48, 48)).attention.shape == (1, 3, 3)
        assert "glamor_dot" not in zoo.list_models()
    finally:
        sys.modules.pop("zoo_dotattn", None)


def make_plugin(site: Path, name: str, source: str) -> None:
    """The distribution ``zh-NAME`` whose one plugin NAME is the module ``zh_NAME`` holding ``source``."""
    make_distribution(site, f"zh-{name}", {name: f"zh_{name}"}, {f"zh_{name}": source})


HOOK = "from zoo.registry.hookspecs import hookimpl\nimport sys\n"


@pytest.mark.parametrize("source", [
    "import sys\nsys.exit(0)\n",
    HOOK + "@hookimpl\ndef register_fusions(register):\n    sys.exit(3)\n",
])
def test_a_plugin_that_exits_is_a_plugin_failure(site, monkeypatch, run_cli, source):
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


def test_a_preset_with_a_dot_is_refused_and_list_keeps_working(site, run_cli):
    make_plugin(site, "dotted", HOOK + "@hookimpl\ndef register_presets(register):\n"
                "    register('my.model', {'backbone': 'caer_cnn'})\n")
    with pytest.warns(PluginLoadWarning, match=r"preset name 'my\.model' is not allowed"):
        code, out, err = run_cli(["list"])
    assert code == 0 and "glamor_net" in out and "my.model" not in out


def test_a_clash_with_a_builtin_leaves_every_registry_and_plugins_command_working(site, run_cli):
    make_plugin(site, "clash", HOOK + "from zoo.models.components.fusion import ConcatFusion\n@hookimpl\n"
                "def register_fusions(register):\n    register('adaptive', ConcatFusion)\n"
                "    register('extra_fusion', ConcatFusion)\n")
    with pytest.warns(PluginLoadWarning, match=r"fusion 'adaptive' is registered by two plugins: "
                                               r"'zoo.builtin.fusion' and 'clash'; 'clash' was refused"):
        code, out, err = run_cli(["plugins"])
    assert code == 0 and "clash" in out and "RegistryClashError" in out
    fusions = zoo.list_components("fusion")["fusion"]
    assert "adaptive" in fusions and "extra_fusion" not in fusions and len(zoo.list_models()) >= 8


def test_a_plugin_registering_a_name_twice_is_named_once(site):
    make_plugin(site, "twice", HOOK + "from zoo.models.components.fusion import ConcatFusion\n@hookimpl\n"
                "def register_fusions(register):\n    register('dup', ConcatFusion)\n    register('dup', ConcatFusion)\n")
    with pytest.warns(PluginLoadWarning, match=r"plugin 'twice' registers fusion 'dup' twice"):
        assert "dup" not in zoo.list_components("fusion")["fusion"]


@pytest.mark.parametrize("factory, match", [
    ("def factory(**kw):\n    raise RuntimeError('exploded')\n", r"RuntimeError: exploded"),
    ("def factory(**kw):\n    return None\n", r"returned NoneType, not a torch.nn.Module"),
])
def test_a_component_factory_that_raises_or_returns_none_is_a_clean_error(site, factory, match):
    from zoo.errors import ComponentBuildError

    make_plugin(site, "bad", HOOK + factory + "@hookimpl\ndef register_backbones(register):\n"
                "    register('bad_net', factory)\n")
    with pytest.raises(ComponentBuildError, match=rf"backbone 'bad_net' \(from plugin 'bad'\).*{match}"):
        zoo.create("caer_net_s", backbone="bad_net")


def test_keyboard_interrupt_in_a_plugin_hook_is_one_error_line(site, run_cli):
    make_plugin(site, "interrupting", HOOK + "@hookimpl\ndef register_commands(app):\n    raise KeyboardInterrupt\n")
    code, out, err = run_cli(["list"])
    assert code == 130 and err.strip() == "error: interrupted (KeyboardInterrupt)." and "Traceback" not in err


def test_family_tables_generate_presets_with_their_tags_in_order():
    """The built-in presets' tables (timm's generate_default_cfgs): ``"preset"`` keys are models, ``"preset.tag"``
    keys their weights in order (the first the default); a bundled tag's folder follows from its key."""
    from zoo.builtin.presets import PRESETS, bundled, generate_presets, hub, preset

    table = {
        "tiny": preset("a tiny model", {"streams": "face"}),
        "tiny.v1": bundled(dataset="fer2013", metrics={"accuracy": 0.5}),
        "tiny.v2": hub("org/tiny", "a" * 40, license="MIT"),
        "bare": preset("no weights", {"streams": "face"}, without_weights="train it: zoo-cli train bare"),
    }
    generated = generate_presets(table)
    assert generated["tiny"]["pretrained"] == [
        {"tag": "v1", "file": "pretrained/tiny.v1", "dataset": "fer2013", "metrics": {"accuracy": 0.5}},
        {"tag": "v2", "hf_hub_id": "org/tiny", "revision": "a" * 40, "license": "MIT"}]
    assert generated["bare"] == {"description": "no weights", "model_args": {"streams": "face"},
                                 "without_weights": "train it: zoo-cli train bare", "pretrained": []}
    with pytest.raises(ValueError, match="define the preset 'late' before its tags"):
        generate_presets({"late.v1": bundled()})
    with pytest.raises(ValueError, match="'tiny' is defined twice"):
        generate_presets(table, {"tiny": preset("again", {})})
    assert [c["tag"] for c in PRESETS["fer_cnn"]["pretrained"]] == ["fer2013", "expw", "fer2013_expw"]
    assert zoo.get_preset("fer_cnn").pretrained[0].tag == "fer2013"  # the first tag is the default
