"""AtomSegNet against a forward pass written from the published equations, to 1e-5.

The reference below uses only ``torch.nn.functional`` on a state dict with the published keys
of ``model_structure/unet_sigmoid.py`` (xinhuolin/AtomSegNet): every ``convA_B`` followed by
its batch norm (inference statistics) and ReLU, 2x2 max pooling, ``nn.UpsamplingBilinear2d``
(bilinear, ``align_corners=True``) then a 1x1 convolution and batch norm, the skip
concatenated *first*, a batch norm of the concatenation, and the head
``sigmoid(bn9(relu(conv9_3(x))))``. A random state dict in that layout (non-trivial batch norm
statistics) is saved as a ``.pt`` file, loaded by :class:`AtomSegNet` by path, and both
probability maps are compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stembench.endpoints.models.atomsegnet import (  # noqa: E402
    AtomSegNet,
    build_network,
    pad_to_multiple,
    scale_to_8bit,
)

F = torch.nn.functional


def _conv(state: dict[str, Any], name: str, x: Any) -> Any:
    weight = state[f"{name}.weight"]
    return F.conv2d(x, weight, state[f"{name}.bias"], padding=weight.shape[-1] // 2)


def _bn(state: dict[str, Any], name: str, x: Any) -> Any:
    return F.batch_norm(x, state[f"{name}.running_mean"], state[f"{name}.running_var"],
                        state[f"{name}.weight"], state[f"{name}.bias"], training=False, eps=1e-5)


def _reference(state: dict[str, Any], x: Any) -> Any:
    def double(x: Any, a: str, b: str, na: str, nb: str) -> Any:
        x = F.relu(_bn(state, na, _conv(state, a, x)))
        return F.relu(_bn(state, nb, _conv(state, b, x)))

    def up(x: Any, conv: str, bn: str) -> Any:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return _bn(state, bn, _conv(state, conv, x))

    x1 = double(x, "conv1_1", "conv1_2", "bn1_1", "bn1_2")
    x2 = double(F.max_pool2d(x1, 2), "conv2_1", "conv2_2", "bn2_1", "bn2_2")
    deep = double(F.max_pool2d(x2, 2), "conv4_1", "conv4_2", "bn4_1", "bn4_2")
    u = _bn(state, "bn4_out", torch.cat((x2, up(deep, "upconv4", "bn4")), 1))
    u = double(u, "conv7_1", "conv7_2", "bn7_1", "bn7_2")
    u = _bn(state, "bn7_out", torch.cat((x1, up(u, "upconv7", "bn7")), 1))
    u = double(u, "conv9_1", "conv9_2", "bn9_1", "bn9_2")
    return torch.sigmoid(_bn(state, "bn9", F.relu(_conv(state, "conv9_3", u))))


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    torch.manual_seed(21)
    state = build_network().state_dict()
    with torch.no_grad():
        for name, tensor in state.items():
            if name.endswith("running_mean"):
                tensor.uniform_(-0.2, 0.2)
            elif name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif name.startswith("bn") and name.endswith((".weight", ".bias")):
                tensor.uniform_(0.6, 1.4) if name.endswith("weight") else tensor.uniform_(-.2, .2)
        state["bn9.weight"].fill_(40.0)  # spread the one-channel head over the sigmoid's range
    path = tmp_path_factory.mktemp("gaussianMask") / "gaussianMask+.pth"
    torch.save(state, path)
    return state, path


def test_state_dict_keys_are_the_published_ones(published: tuple[dict[str, Any], Path]) -> None:
    state, _ = published
    convs = {k.rsplit(".", 1)[0] for k in state if k.startswith(("conv", "upconv"))}
    assert convs == {"conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv4_1", "conv4_2", "upconv4",
                     "conv7_1", "conv7_2", "upconv7", "conv9_1", "conv9_2", "conv9_3"}
    norms = {k.rsplit(".", 1)[0] for k in state if k.startswith("bn")}
    assert norms == {"bn1_1", "bn1_2", "bn2_1", "bn2_2", "bn4", "bn4_1", "bn4_2", "bn4_out",
                     "bn7", "bn7_1", "bn7_2", "bn7_out", "bn9_1", "bn9_2", "bn9_3", "bn9"}


def test_loaded_by_path_gives_the_reference_map(published: tuple[dict[str, Any], Path]) -> None:
    state, path = published
    model = AtomSegNet(path, device="cpu")
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:46, 0:59]  # neither side a multiple of 4: centred padding
    image = 1e3 + 50 * np.cos(0.8 * xx) * np.cos(0.8 * yy) + 5 * rng.normal(size=xx.shape)
    (prob,) = model.probability_maps([image])
    padded, (top, left) = pad_to_multiple(scale_to_8bit(image))
    with torch.no_grad():
        expected = _reference(state, torch.from_numpy(padded[None, None]))[0, 0].numpy()
    expected = expected[top : top + 46, left : left + 59]
    assert float(expected.std()) > 1e-3
    np.testing.assert_allclose(prob, expected, rtol=0, atol=1e-5)
