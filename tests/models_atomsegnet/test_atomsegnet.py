"""AtomSegNet: published layout, weight loading, pre-processing, batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stembench.endpoints.models.atomsegnet import (  # noqa: E402
    ARCHITECTURE,
    AtomSegNet,
    build_network,
    pad_to_multiple,
    scale_to_8bit,
)
from stembench.errors import InputError, ModelError  # noqa: E402

# (module name, weight shape) of every convolution and batch norm of the published
# model_structure/unet_sigmoid.py; each BN carries weight, bias, running_mean, running_var
# and num_batches_tracked.
PUBLISHED_CONVS = {
    "conv1_1": (64, 1, 3, 3), "conv1_2": (64, 64, 3, 3),
    "conv2_1": (128, 64, 3, 3), "conv2_2": (128, 128, 3, 3),
    "conv4_1": (256, 128, 3, 3), "conv4_2": (256, 256, 3, 3), "upconv4": (128, 256, 1, 1),
    "conv7_1": (128, 256, 3, 3), "conv7_2": (128, 128, 3, 3), "upconv7": (64, 128, 1, 1),
    "conv9_1": (64, 128, 3, 3), "conv9_2": (64, 64, 3, 3), "conv9_3": (1, 64, 1, 1),
}  # fmt: skip
PUBLISHED_BNS = {
    "bn1_1": 64, "bn1_2": 64, "bn2_1": 128, "bn2_2": 128, "bn4": 128, "bn4_1": 256,
    "bn4_2": 256, "bn4_out": 256, "bn7": 64, "bn7_1": 128, "bn7_2": 128, "bn7_out": 128,
    "bn9_1": 64, "bn9_2": 64, "bn9_3": 1, "bn9": 1,
}  # fmt: skip


def _published_layout() -> dict[str, tuple[int, ...]]:
    layout: dict[str, tuple[int, ...]] = {}
    for name, shape in PUBLISHED_CONVS.items():
        layout[f"{name}.weight"] = shape
        layout[f"{name}.bias"] = (shape[0],)
    for name, channels in PUBLISHED_BNS.items():
        for field in ("weight", "bias", "running_mean", "running_var"):
            layout[f"{name}.{field}"] = (channels,)
        layout[f"{name}.num_batches_tracked"] = ()
    return layout


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    network = build_network()
    with torch.no_grad():  # non-trivial running statistics, so eval mode is exercised
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("weights") / "random.pt"
    torch.save(network.state_dict(), path)
    return path


def test_parameter_count_and_state_dict_layout_match_the_published_network() -> None:
    network = build_network()
    assert sum(p.numel() for p in network.parameters()) == 1_742_533
    layout = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    assert layout == _published_layout()
    assert layout["conv1_1.weight"] == (64, 1, 3, 3)
    assert layout["upconv4.weight"] == (128, 256, 1, 1)
    assert layout["bn9_3.running_var"] == (1,)


def test_forward_keeps_shape_and_gives_probabilities() -> None:
    network = build_network().eval()
    with torch.no_grad():
        out = network(torch.rand(2, 1, 24, 36))
    assert out.shape == (2, 1, 24, 36)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_strict_load_of_saved_state_dict_and_checkpoint(weights_file: Path, tmp_path: Path) -> None:
    model = AtomSegNet(weights_file, device="cpu")
    reference = build_network()
    reference.load_state_dict(torch.load(weights_file, weights_only=True), strict=True)
    reference.eval()
    image = np.random.default_rng(1).random((40, 44)).astype(np.float32)
    expected = reference(torch.from_numpy(scale_to_8bit(image))[None, None]).detach().numpy()
    np.testing.assert_allclose(model.probability_maps([image])[0], expected[0, 0], atol=1e-5)
    assert model.info.framework == "pytorch"
    assert model.info.name == "atomsegnet"
    assert model.info.weights_sha256 is not None and len(model.info.weights_sha256) == 64

    state = torch.load(weights_file, weights_only=True)
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "step": 3}, checkpoint)
    again = AtomSegNet(checkpoint, device="cpu")
    np.testing.assert_allclose(again.probability_maps([image])[0], expected[0, 0], atol=1e-5)


def test_mismatched_state_dict_names_file_architecture_and_keys(
    weights_file: Path, tmp_path: Path
) -> None:
    state = torch.load(weights_file, weights_only=True)
    del state["conv9_3.bias"]
    state["conv1_1.weight"] = torch.zeros(32, 1, 3, 3)
    state["extra.weight"] = torch.zeros(3)
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(ModelError) as info:
        AtomSegNet(bad, device="cpu")
    message = str(info.value)
    assert str(bad) in message and ARCHITECTURE in message
    assert "missing keys: conv9_3.bias" in message
    assert "unexpected keys: extra.weight" in message
    assert "conv1_1.weight: expected (64, 1, 3, 3), got (32, 1, 3, 3)" in message


def test_missing_weights_file_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        AtomSegNet(tmp_path / "absent.pt")


def test_scale_to_8bit_levels() -> None:
    image = np.array([[2.0, 4.0], [3.0, 2.5]])
    scaled = scale_to_8bit(image)
    # 127.5 and 63.75 truncated, as the published astype('uint8') / astype('int8') does
    np.testing.assert_allclose(scaled * 255, [[0, 255], [127, 63]])
    assert scaled.dtype == np.float32
    assert not scale_to_8bit(np.full((3, 3), 7.0)).any()


def test_pad_to_multiple_of_four_centred_and_crop_back() -> None:
    image = np.arange(10 * 13, dtype=np.float32).reshape(10, 13)
    padded, (top, left) = pad_to_multiple(image)
    assert padded.shape == (12, 16)
    assert (top, left) == (1, 1)
    np.testing.assert_array_equal(padded[top : top + 10, left : left + 13], image)
    assert padded[0].sum() == 0 and padded[:, -2:].sum() == 0
    same, offset = pad_to_multiple(np.ones((8, 12), np.float32))
    assert same.shape == (8, 12) and offset == (0, 0)


def test_maps_are_cropped_back_and_batching_matches_single_runs(weights_file: Path) -> None:
    model = AtomSegNet(weights_file, device="cpu", batch_size=2)
    rng = np.random.default_rng(2)
    shapes = [(30, 33), (30, 33), (21, 40), (30, 33)]
    images = [rng.random(shape) for shape in shapes]
    maps = model.probability_maps(images)
    assert [m.shape for m in maps] == shapes
    for image, batched in zip(images, maps, strict=True):
        np.testing.assert_allclose(model.probability_maps([image])[0], batched, atol=1e-5)
    located = model.locate_batch(images, [0.1] * 4)
    assert all(p.ndim == 2 and p.shape[1] == 2 for p in located)


def test_batch_size_is_one_on_the_cpu_unless_asked(weights_file: Path) -> None:
    assert AtomSegNet(weights_file, device="cpu").batch_size == 1
    assert AtomSegNet(weights_file, device="cpu", batch_size=3).batch_size == 3
    with pytest.raises(InputError, match="batch_size must be >= 1, got 0"):
        AtomSegNet(weights_file, device="cpu", batch_size=0)


def test_bad_images_raise_input_error(weights_file: Path) -> None:
    model = AtomSegNet(weights_file, device="cpu")
    with pytest.raises(InputError, match="2D image"):
        model.locate(np.zeros((2, 3, 4)), 0.1)
    with pytest.raises(InputError, match="NaN"):
        model.locate(np.full((8, 8), np.nan), 0.1)
    with pytest.raises(InputError, match="pixel size"):
        model.locate(np.zeros((8, 8)), 0.0)


def test_batchnorm_folding_keeps_the_published_arithmetic(weights_file: Path) -> None:
    """The folded network used for inference equals the unfolded one to float32 rounding."""
    reference = build_network()
    reference.load_state_dict(torch.load(weights_file, weights_only=True))
    reference.eval()
    rng = np.random.default_rng(3)
    image = rng.random((52, 68))
    model = AtomSegNet(weights_file, device="cpu")
    prepared, (top, left) = pad_to_multiple(scale_to_8bit(image))
    with torch.inference_mode():
        expected = reference(torch.from_numpy(prepared)[None, None])[0, 0].numpy()
    got = model.probability_maps([image])[0]
    np.testing.assert_allclose(got, expected[top : top + 52, left : left + 68], atol=1e-5)
    folded = [name for name, module in model._network.named_children()
              if isinstance(module, torch.nn.Identity)]
    assert len(folded) == 12
    assert not np.allclose(got, 0.5, atol=1e-3)  # the random weights give a non-trivial map
