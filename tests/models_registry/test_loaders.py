"""User models from files and callables load and return the right coordinates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stembench.endpoints.models.base import sha256_file
from stembench.endpoints.models.registry import load_model
from stembench.errors import ModelError


def sorted_xy(xy):
    return xy[np.lexsort((xy[:, 1], xy[:, 0]))]


def check_finds_blobs(model, blob_image, blob_xy, path: Path, framework: str) -> None:
    found = model.locate(blob_image, 0.1)
    np.testing.assert_allclose(sorted_xy(found), blob_xy, atol=1e-9)
    batch = model.locate_batch([blob_image, blob_image[:40, :50]], [0.1, 0.1])
    np.testing.assert_allclose(sorted_xy(batch[0]), blob_xy, atol=1e-9)
    # in the 50x40 crop, only the blobs at least 5 px inside the border remain
    inside = blob_xy[(blob_xy[:, 0] <= 44) & (blob_xy[:, 1] <= 34)]
    np.testing.assert_allclose(sorted_xy(batch[1]), inside, atol=1e-9)
    info = model.info
    assert info.framework == framework
    assert info.name == path.name
    assert info.weights_sha256 == sha256_file(path)


def test_torchscript_file(tmp_path, plugin_dir, blob_image, blob_xy):
    torch = pytest.importorskip("torch")
    nets = __import__("toy_torch_nets")
    net = nets.ScaledSigmoid()
    with torch.no_grad():
        net.conv.weight.fill_(40.0)
        net.conv.bias.fill_(-20.0)
    path = tmp_path / "blobs.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    model = load_model(str(path))
    check_finds_blobs(model, blob_image, blob_xy, path, "pytorch")


def test_state_dict_with_its_class(tmp_path, plugin_dir, blob_image, blob_xy):
    torch = pytest.importorskip("torch")
    nets = __import__("toy_torch_nets")
    net = nets.ScaledSigmoid()
    with torch.no_grad():
        net.conv.weight.fill_(40.0)
        net.conv.bias.fill_(-20.0)
    path = tmp_path / "blobs_state.pth"
    torch.save(net.state_dict(), str(path))
    model = load_model(str(path), model_class="toy_torch_nets:ScaledSigmoid")
    check_finds_blobs(model, blob_image, blob_xy, path, "pytorch")
    with pytest.raises(ModelError, match=r"not a TorchScript file.*model_class"):
        load_model(str(path))


def test_state_dict_of_another_network_names_both(tmp_path, plugin_dir):
    torch = pytest.importorskip("torch")
    path = tmp_path / "other.pth"
    torch.save(__import__("toy_torch_nets").TwoLayers().state_dict(), str(path))
    with pytest.raises(
        ModelError, match=r"weights file 'other.pth' does not match network "
                          r"'toy_torch_nets:ScaledSigmoid'.*Missing key"
    ):
        load_model(str(path), model_class="toy_torch_nets:ScaledSigmoid")


def test_onnx_file(tmp_path, blob_image, blob_xy):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Sub", ["image", "half"], ["centred"]),
            helper.make_node("Mul", ["centred", "gain"], ["logits"]),
            helper.make_node("Sigmoid", ["logits"], ["prob"]),
        ],
        "blobs",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        initializer=[
            helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
            helper.make_tensor("gain", TensorProto.FLOAT, [], [40.0]),
        ],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    path = tmp_path / "blobs.onnx"
    onnx.save(proto, str(path))
    model = load_model(str(path), pad_multiple=16)
    assert model.layout == "nchw"
    check_finds_blobs(model, blob_image, blob_xy, path, "onnx")


def test_keras_file(tmp_path, blob_image, blob_xy):
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    net = keras.Sequential([
        keras.Input((None, None, 1)),
        keras.layers.Conv2D(1, 1, activation="sigmoid", kernel_initializer=keras.initializers
                            .Constant(40.0), bias_initializer=keras.initializers.Constant(-20.0)),
    ])
    path = tmp_path / "blobs.keras"
    net.save(str(path))
    model = load_model(str(path))
    check_finds_blobs(model, blob_image, blob_xy, path, "tensorflow")


def test_module_function(plugin_dir, blob_image):
    model = load_model("toy_plugin:brightest_pixel")
    image = blob_image.copy()
    image[40, 41] += 1.0
    found = model.locate(image, 0.1)
    np.testing.assert_array_equal(found, [[41.0, 40.0]])
    info = model.info
    assert info.name == "toy_plugin:brightest_pixel" and info.framework == "python"
    assert info.weights_sha256 == sha256_file(plugin_dir / "toy_plugin.py")


def test_module_model_class_takes_options(plugin_dir):
    model = load_model("toy_plugin:ToyModel", factor=2.0)
    np.testing.assert_array_equal(model.locate(np.zeros((8, 8)), 0.1), [[2.0, 4.0], [6.0, 8.0]])


def test_file_errors(tmp_path):
    with pytest.raises(ModelError, match=r"model file .*missing\.onnx' does not exist"):
        load_model(str(tmp_path / "missing.onnx"))
    with pytest.raises(ModelError, match="cannot import module 'no_such_module_xyz'"):
        load_model("no_such_module_xyz:run")
