"""Convolution and upsampling building blocks shared by the segmentation and generation models.

Plain ``torch.nn``; every public name is importable from ``upsample.blocks``.
"""

from upsample.blocks.context import ASPP, ASPPConv, ASPPPooling, DilatedStack
from upsample.blocks.conv import ConvNormAct, discriminator_unit
from upsample.blocks.convolutionalize import convolutionalize
from upsample.blocks.encoders import (
    ENCODER_NAMES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TIMM_PREFIX,
    VGG16_DEPTHS,
    VGG16_WIDTHS,
    BasicBlock,
    Bottleneck,
    MultiScaleEncoder,
    ResNetEncoder,
    TimmEncoder,
    TorchvisionResNetEncoder,
    TorchvisionVGG16Encoder,
    VGGEncoder,
    build_encoder,
    encoder_strides,
    vgg_stage,
)
from upsample.blocks.fcn_decoder import FCN_VARIANTS, FCNDecoder, FCNVariant
from upsample.blocks.fcn_discriminator import FCNDiscriminator
from upsample.blocks.generator import STAGES_FOR_SIZE, GeneratorUpStack, ImageSize
from upsample.blocks.geometry import (
    conv_output_size,
    conv_transpose_output_size,
    effective_kernel_size,
    pool_output_size,
)
from upsample.blocks.init import bilinear_init_, bilinear_kernel, dcgan_init_, icnr_
from upsample.blocks.patchgan import PatchDiscriminator, patch_sizes
from upsample.blocks.receptive_field import (
    Branches,
    Chain,
    Layer,
    ReceptiveFieldRow,
    ReceptiveFieldTable,
    receptive_field,
    register_receptive_field,
)
from upsample.blocks.reference import conv2d_im2col, conv_transpose2d_by_zero_insertion
from upsample.blocks.spade import SPADE, SPADEResBlock
from upsample.blocks.spade_generator import SPADEGenerator
from upsample.blocks.unet import NoiseDropout, UNetGenerator, UNetLevel
from upsample.blocks.unet_discriminator import ResidualDiscriminatorBlock, UNetDiscriminator
from upsample.blocks.upsample import (
    UPSAMPLER_KINDS,
    PixelShuffleUp,
    ResizeConv,
    UpConv,
    UpsamplerKind,
    check_upsampler,
    make_upsampler,
    upconv_geometry,
)

__all__ = [
    "ASPP",
    "ENCODER_NAMES",
    "FCN_VARIANTS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SPADE",
    "STAGES_FOR_SIZE",
    "TIMM_PREFIX",
    "UPSAMPLER_KINDS",
    "VGG16_DEPTHS",
    "VGG16_WIDTHS",
    "ASPPConv",
    "ASPPPooling",
    "BasicBlock",
    "Bottleneck",
    "Branches",
    "Chain",
    "ConvNormAct",
    "DilatedStack",
    "FCNDecoder",
    "FCNDiscriminator",
    "FCNVariant",
    "GeneratorUpStack",
    "ImageSize",
    "Layer",
    "MultiScaleEncoder",
    "NoiseDropout",
    "PatchDiscriminator",
    "PixelShuffleUp",
    "ReceptiveFieldRow",
    "ReceptiveFieldTable",
    "ResNetEncoder",
    "ResidualDiscriminatorBlock",
    "ResizeConv",
    "SPADEGenerator",
    "SPADEResBlock",
    "TimmEncoder",
    "TorchvisionResNetEncoder",
    "TorchvisionVGG16Encoder",
    "UNetDiscriminator",
    "UNetGenerator",
    "UNetLevel",
    "UpConv",
    "UpsamplerKind",
    "VGGEncoder",
    "bilinear_init_",
    "bilinear_kernel",
    "build_encoder",
    "check_upsampler",
    "conv2d_im2col",
    "conv_output_size",
    "conv_transpose2d_by_zero_insertion",
    "conv_transpose_output_size",
    "convolutionalize",
    "dcgan_init_",
    "discriminator_unit",
    "effective_kernel_size",
    "encoder_strides",
    "icnr_",
    "make_upsampler",
    "patch_sizes",
    "pool_output_size",
    "receptive_field",
    "register_receptive_field",
    "upconv_geometry",
    "vgg_stage",
]
