"""convolutionalize: the fully convolutional network computes the classifier's numbers."""

import pytest
import torch
from torch import nn

from upsample.blocks import convolutionalize


def small_classifier() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3),  # no padding: windows of a larger input see the same pixels
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 5, 16),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(16, 3),
    ).eval()


def test_native_size_gives_the_same_scores() -> None:
    classifier = small_classifier()
    fcn = convolutionalize(classifier, (2, 10, 12)).eval()
    assert not any(isinstance(m, (nn.Linear, nn.Flatten)) for m in fcn.modules())
    assert isinstance(fcn[3], nn.Conv2d) and fcn[3].kernel_size == (4, 5)
    assert isinstance(fcn[6], nn.Conv2d) and fcn[6].kernel_size == (1, 1)
    x = torch.randn(4, 2, 10, 12)
    out = fcn(x)
    assert out.shape == (4, 3, 1, 1)
    torch.testing.assert_close(out.flatten(1), classifier(x))


def test_larger_input_gives_the_classifier_on_every_window() -> None:
    classifier = small_classifier()
    fcn = convolutionalize(classifier, (2, 10, 12)).eval()
    x = torch.randn(2, 2, 15, 19)
    out = fcn(x)
    # The spatial part has stride 2: output (i, j) sees the window starting at (2i, 2j).
    assert out.shape == (2, 3, (13 // 2) - 4 + 1, (17 // 2) - 5 + 1)
    for i in range(out.shape[-2]):
        for j in range(out.shape[-1]):
            window = x[..., 2 * i : 2 * i + 10, 2 * j : 2 * j + 12]
            torch.testing.assert_close(out[..., i, j], classifier(window))


def test_mlp_with_batchnorm_and_nested_sequentials() -> None:
    torch.manual_seed(1)
    classifier = nn.Sequential(
        nn.Sequential(nn.AdaptiveAvgPool2d((6, 6))),  # identity at 6x6: dropped
        nn.Flatten(),
        nn.Sequential(nn.Linear(36, 8), nn.BatchNorm1d(8), nn.ReLU()),
        nn.Linear(8, 2),
    )
    classifier[2][1].running_mean.uniform_(-1, 1)
    classifier[2][1].running_var.uniform_(0.5, 2)
    classifier.eval()
    fcn = convolutionalize(classifier, (1, 6, 6)).eval()
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d) for m in fcn.modules())
    x = torch.randn(3, 1, 6, 6)
    torch.testing.assert_close(fcn(x).flatten(1), classifier(x))
    wide = torch.randn(1, 1, 6, 9)
    out = fcn(wide)
    assert out.shape == (1, 2, 1, 4)
    torch.testing.assert_close(out[..., 0, 3], classifier(wide[..., 3:9]))


def test_original_is_untouched_and_mode_is_kept() -> None:
    classifier = small_classifier().train()
    before = {k: v.clone() for k, v in classifier.state_dict().items()}
    fcn = convolutionalize(classifier, (2, 10, 12))
    assert fcn.training
    for key, value in classifier.state_dict().items():
        assert torch.equal(value, before[key])


def test_clear_errors() -> None:
    with pytest.raises(ValueError, match="expects 80 features"):
        convolutionalize(small_classifier(), (2, 10, 14))
    with pytest.raises(TypeError, match="nn.Sequential"):
        convolutionalize(nn.Linear(3, 3), (3, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no nn.Linear"):
        convolutionalize(nn.Sequential(nn.Conv2d(1, 1, 1)), (1, 4, 4))
