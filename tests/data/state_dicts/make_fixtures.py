# Writes the state_dict fixtures of tests/unit/modeling/backbone_weights_test.cpp with PyTorch
# itself (a developer tool: run once with python3-torch; the files are committed, the tests
# need no Python). Values are position codes the test recomputes: tensor k of the list holds
# k + 0.001 * arange(numel) in its shape (BatchNorm's num_batches_tracked: k as int64).
import collections
import torch

# torchvision's ResNet names for a ResNet-18 of width 16 (our CPU recipe's), partial: the
# stem, the first unit of layer1, layer2's downsample, and fc (which has no counterpart).
torchvision_names = [
    ("conv1.weight", (16, 3, 7, 7)),
    ("bn1.weight", (16,)), ("bn1.bias", (16,)), ("bn1.running_mean", (16,)),
    ("bn1.running_var", (16,)), ("bn1.num_batches_tracked", ()),
    ("layer1.0.conv1.weight", (16, 16, 3, 3)),
    ("layer1.0.bn1.weight", (16,)), ("layer1.0.bn1.bias", (16,)),
    ("layer1.0.bn1.running_mean", (16,)), ("layer1.0.bn1.running_var", (16,)),
    ("layer1.0.conv2.weight", (16, 16, 3, 3)),
    ("layer2.0.downsample.0.weight", (32, 16, 1, 1)),
    ("layer2.0.downsample.1.weight", (32,)), ("layer2.0.downsample.1.running_var", (32,)),
    ("fc.weight", (10, 128)), ("fc.bias", (10,)),
]


def coded(names):
    state = collections.OrderedDict()
    for k, (name, shape) in enumerate(names):
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(k, dtype=torch.int64)
        else:
            n = 1
            for s in shape:
                n *= s
            state[name] = (k + 0.001 * torch.arange(n, dtype=torch.float32)).reshape(shape)
    return state


torch.save(coded(torchvision_names), "torchvision_resnet18_w16_partial.pth")
# CenterNet's checkpoint layout: {"epoch": ..., "state_dict": ...} with "module." and "base."
torch.save({"epoch": 70, "state_dict": coded([
    ("module.base.base_layer.0.weight", (16, 3, 7, 7)),
    ("module.base.level2.root.conv.weight", (64, 128, 1, 1)),
    ("module.base.level2.root.bn.running_mean", (64,)),
    ("module.hm.0.weight", (4, 64, 3, 3))])}, "centernet_dla34_partial.pth")
# PyTorch's legacy (pre-1.6) serialisation, which LibTorch's reader does not take.
torch.save(coded([("conv1.weight", (2, 3, 1, 1))]), "legacy_format.pth",
           _use_new_zipfile_serialization=False)
