"""AtomNet networks: published layer structure, pre-processing, saving and loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stembench.endpoints.models.atomnet import (
    AtomNet,
    build_atomnet,
    load_atomnet_weights,
    pad_to_multiple,
    scale_min_max,
)
from stembench.errors import InputError, ModelError

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def networks() -> dict[str, Any]:
    return {variant: build_atomnet(variant) for variant in ("cubic", "hexagonal")}


@pytest.fixture(scope="module")
def saved(networks: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("atomnet")
    paths = {}
    for variant, network in networks.items():
        paths[variant] = folder / f"{variant}.keras"
        network.save(paths[variant])
    paths["cubic-h5"] = folder / "cubic.weights.h5"
    networks["cubic"].save_weights(paths["cubic-h5"])
    return paths


def _layers_of(network: Any, kind: str) -> list[Any]:
    return [layer for layer in network.layers if type(layer).__name__ == kind]


@pytest.mark.parametrize(
    ("variant", "published", "expected"),
    # Parameter counts of the PyTorch originals (resatomsegnet_s2 and atomsegnet, 32 filters),
    # computed by hand from their layer list; the task's ~1.0 M / ~2.4 M within 15 %.
    [("cubic", 1.0e6, 958_433), ("hexagonal", 2.4e6, 2_367_585)],
)
def test_parameter_count(
    networks: dict[str, Any], variant: str, published: float, expected: int
) -> None:
    count = networks[variant].count_params()
    assert count == expected
    assert abs(count - published) / published < 0.15


def test_cubic_structure(networks: dict[str, Any]) -> None:
    net = networks["cubic"]
    assert len(_layers_of(net, "MaxPooling2D")) == 2
    assert len(_layers_of(net, "Dropout")) == 0
    assert len(_layers_of(net, "Add")) == 6  # three residual modules of two blocks
    assert {layer.negative_slope for layer in _layers_of(net, "LeakyReLU")} == {0.01}
    ups = _layers_of(net, "UpSampling2D")
    assert [u.interpolation for u in ups] == ["bilinear", "bilinear"]
    convs = {layer.name: layer for layer in _layers_of(net, "Conv2D")}
    assert convs["c2_block1_conv1x1"].kernel_size == (1, 1)
    assert convs["c2_block1_conv3x3a"].kernel_size == (3, 3)
    assert convs["bn_block2_conv3x3b"].filters == 128
    assert convs["up1_conv1x1"].filters == 64 and convs["up2_conv1x1"].filters == 32
    assert net.layers[-1].get_config()["activation"] == "sigmoid"


def test_hexagonal_structure(networks: dict[str, Any]) -> None:
    net = networks["hexagonal"]
    assert len(_layers_of(net, "MaxPooling2D")) == 3
    dilated = [c for c in _layers_of(net, "Conv2D") if c.dilation_rate != (1, 1)]
    assert [c.dilation_rate for c in dilated] == [(2, 2), (4, 4), (6, 6)]
    assert [c.filters for c in dilated] == [256, 256, 256]
    # every sub-layer of the dilated stage is summed: 3 x (conv, dropout, LeakyReLU)
    summed = [t.name.split("/")[0] for t in net.get_layer("bn_sum").input]
    assert len(summed) == 9
    rates = {layer.name: layer.rate for layer in _layers_of(net, "Dropout")}
    assert sorted(r for n, r in rates.items() if n.startswith("bn_")) == [0.5, 0.5, 0.5]
    assert sorted(n.split("_")[0] for n, r in rates.items() if r == 0.3) == [
        "c3a",
        "c3b",
        "c4a",
        "c4b",
    ]
    assert {layer.negative_slope for layer in _layers_of(net, "LeakyReLU")} == {0.01}
    assert [u.interpolation for u in _layers_of(net, "UpSampling2D")] == ["bilinear"] * 3
    assert net.layers[-1].get_config()["activation"] == "sigmoid"


def test_pad_to_multiple_and_scale() -> None:
    image = np.arange(130 * 97, dtype=np.float64).reshape(130, 97)
    assert pad_to_multiple(image, 8).shape == (136, 104)
    assert pad_to_multiple(image, 4).shape == (132, 100)
    padded = pad_to_multiple(image, 8)
    np.testing.assert_array_equal(padded[:130, :97], image)
    assert not padded[130:].any() and not padded[:, 97:].any()
    scaled = scale_min_max(np.array([[2.0, 4.0], [6.0, 10.0]]))
    np.testing.assert_allclose(scaled, [[0.0, 0.25], [0.5, 1.0]])
    assert not scale_min_max(np.full((3, 3), 7.0)).any()


@pytest.mark.parametrize("variant", ["cubic", "hexagonal"])
def test_saved_and_reloaded_gives_identical_output(
    networks: dict[str, Any], saved: dict[str, Path], variant: str
) -> None:
    rng = np.random.default_rng(3)
    image = rng.normal(5.0, 2.0, size=(61, 75))  # neither side a multiple of 4 or 8
    model = AtomNet(variant, saved[variant])
    (prob,) = model.probability([image])
    assert prob.shape == image.shape
    multiple = 4 if variant == "cubic" else 8
    # published order: zero padding, then min-max over the padded image
    batch = scale_min_max(pad_to_multiple(image, multiple))[np.newaxis, ..., np.newaxis]
    # Same graph-mode forward pass on the in-memory network (eager mode sums in another order).
    tf = pytest.importorskip("tensorflow")
    forward = tf.function(lambda t: networks[variant](t, training=False))
    direct = np.asarray(forward(batch.astype(np.float32)))[0, :61, :75, 0]
    np.testing.assert_allclose(prob, direct, rtol=0, atol=1e-6)
    reloaded = load_atomnet_weights(variant, saved[variant])
    for a, b in zip(reloaded.get_weights(), networks[variant].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.info.name == f"atomnet-{variant}"
    assert model.info.framework == "tensorflow"
    assert len(model.info.weights_sha256 or "") == 64


def test_weights_h5_and_batching(networks: dict[str, Any], saved: dict[str, Path]) -> None:
    model = AtomNet("cubic", saved["cubic-h5"], batch_size=2)
    for a, b in zip(model.network.get_weights(), networks["cubic"].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(4)
    images = [rng.random((40, 44)) for _ in range(3)] + [rng.random((36, 36))]
    together = model.probability(images)
    for image, prob in zip(images, together, strict=True):
        np.testing.assert_allclose(prob, model.probability([image])[0], atol=1e-6)
        assert prob.shape == image.shape
    assert len(model.locate_batch(images, [0.1] * 4)) == 4


def test_mismatched_file_names_file_and_architecture(saved: dict[str, Path]) -> None:
    with pytest.raises(ModelError, match=r"cubic\.keras.*AtomNet 'hexagonal'.*weight array"):
        AtomNet("hexagonal", saved["cubic"])
    with pytest.raises(ModelError, match=r"cubic\.weights\.h5.*AtomNet 'hexagonal'"):
        AtomNet("hexagonal", saved["cubic-h5"])
    with pytest.raises(ModelError, match="does not exist"):
        AtomNet("cubic", saved["cubic"].with_name("absent.keras"))


def test_file_of_an_earlier_network_with_equal_shapes_is_refused(
    networks: dict[str, Any], tmp_path: Path
) -> None:
    # The hexagonal network's dilated stage summed only its three LeakyReLU outputs before
    # 03f6a96; such a file (the previous shipped weights) has the same weight shapes, so it
    # loaded silently into today's nine-output sum and found no column on any WS2 image.
    config = networks["hexagonal"].get_config()
    for layer in config["layers"]:
        if layer["name"] == "bn_sum":
            (tensors,) = layer["inbound_nodes"][0]["args"]
            kept = [t for t in tensors if t["config"]["keras_history"][0].endswith("_lrelu")]
            assert len(kept) == 3
            layer["inbound_nodes"][0]["args"] = [kept]
    earlier = keras.Model.from_config(config)
    earlier.set_weights(networks["hexagonal"].get_weights())
    path = tmp_path / "earlier.keras"
    earlier.save(path)
    with pytest.raises(ModelError, match=r"earlier\.keras.*different network.*layer bn_sum takes "
                       r"\[bn_dilated2_lrelu, bn_dilated4_lrelu, bn_dilated6_lrelu\] in the file"):
        AtomNet("hexagonal", path)


def test_bad_input_raises(saved: dict[str, Path]) -> None:
    model = AtomNet("cubic", saved["cubic"])
    with pytest.raises(InputError, match="2D"):
        model.locate(np.zeros((4, 4, 3)), 0.1)
    with pytest.raises(InputError, match="NaN"):
        model.locate(np.full((16, 16), np.nan), 0.1)
    with pytest.raises(InputError, match="variant"):
        AtomNet("square", saved["cubic"])  # type: ignore[arg-type]


def test_network_traced_once_per_padded_shape_and_batch_size(saved: dict[str, Path]) -> None:
    """Shards of any length reuse the compiled forward passes: batch sizes 1, 2 and 4 only."""
    model = AtomNet("cubic", saved["cubic"], batch_size=4)
    rng = np.random.default_rng(7)
    for count in (1, 3, 4, 5, 2, 9, 7, 6):  # batches of 1..4 images of one shape
        model.locate_batch([rng.random((40, 44)) for _ in range(count)], [0.1] * count)
    assert model._forward.experimental_get_tracing_count() == 3  # batches of 1, 2 and 4
    model.probability([rng.random((60, 60))])  # another padded shape: one more trace
    assert model._forward.experimental_get_tracing_count() == 4
