"""The rules tract_hub ships: torchvision's model families (which carry no ``first_conv``), the timm models
whose ``pretrained_cfg["first_conv"]`` does not name their first layers, and the families :mod:`tract_hub.models`
builds outside timm (the paper's Faster R-CNN on VGG features).

Each entry transcribes the model's source (the module that first receives the image). A rule names its classes
by their qualified names, so this floor imports none of the model code it describes. ``tract_hub.locate(model,
verify=True)`` and the tests check every rule against the trace.
"""

from __future__ import annotations

from .rules import Rule, register_builtin

_TV = "torchvision.models"
_DETECTION = (
    f"{_TV}.detection.generalized_rcnn.GeneralizedRCNN",
    f"{_TV}.detection.retinanet.RetinaNet",
    f"{_TV}.detection.fcos.FCOS",
)
_SEGMENTATION = (f"{_TV}.segmentation._utils._SimpleSegmentationModel", f"{_TV}.segmentation.lraspp.LRASPP")
_VIDEO_CLIP = ((1, 3, 16, 224, 224),)

_RULES = (
    # torchvision classification (the quantizable variants subclass these classes)
    Rule("torchvision.alexnet", (f"{_TV}.alexnet.AlexNet",), ("features.0",), description="AlexNet: features[0]"),
    Rule("torchvision.vgg", (f"{_TV}.vgg.VGG",), ("features.0",), description="VGG: features[0]"),
    Rule("torchvision.squeezenet", (f"{_TV}.squeezenet.SqueezeNet",), ("features.0",)),
    Rule("torchvision.resnet", (f"{_TV}.resnet.ResNet",), ("conv1",), description="ResNet/ResNeXt/Wide ResNet"),
    Rule("torchvision.densenet", (f"{_TV}.densenet.DenseNet",), ("features.conv0",)),
    Rule("torchvision.googlenet", (f"{_TV}.googlenet.GoogLeNet",), ("conv1.conv",)),
    Rule("torchvision.inception_v3", (f"{_TV}.inception.Inception3",), ("Conv2d_1a_3x3.conv",)),
    Rule("torchvision.mobilenet_v2", (f"{_TV}.mobilenetv2.MobileNetV2",), ("features.0.0",)),
    Rule("torchvision.mobilenet_v3", (f"{_TV}.mobilenetv3.MobileNetV3",), ("features.0.0",)),
    Rule("torchvision.efficientnet", (f"{_TV}.efficientnet.EfficientNet",), ("features.0.0",)),
    Rule("torchvision.convnext", (f"{_TV}.convnext.ConvNeXt",), ("features.0.0",), description="4x4 patchify stem"),
    Rule("torchvision.swin", (f"{_TV}.swin_transformer.SwinTransformer",), ("features.0.0",)),
    Rule("torchvision.maxvit", (f"{_TV}.maxvit.MaxVit",), ("stem.0.0",)),
    Rule("torchvision.mnasnet", (f"{_TV}.mnasnet.MNASNet",), ("layers.0",)),
    Rule("torchvision.regnet", (f"{_TV}.regnet.RegNet",), ("stem.0",)),
    Rule("torchvision.shufflenet_v2", (f"{_TV}.shufflenetv2.ShuffleNetV2",), ("conv1.0",)),
    Rule("torchvision.vit", (f"{_TV}.vision_transformer.VisionTransformer",), ("conv_proj",)),
    # torchvision video (Conv3d stems; clips of 16 frames)
    Rule("torchvision.video_resnet", (f"{_TV}.video.resnet.VideoResNet",), ("stem.0",), inputs=_VIDEO_CLIP),
    Rule("torchvision.mvit", (f"{_TV}.video.mvit.MViT",), ("conv_proj",), inputs=_VIDEO_CLIP),
    Rule("torchvision.s3d", (f"{_TV}.video.s3d.S3D",), ("features.0.0.0",), inputs=_VIDEO_CLIP),
    Rule(
        "torchvision.swin3d",
        (f"{_TV}.video.swin_transformer.SwinTransformer3d",),
        ("patch_embed.proj",),
        inputs=_VIDEO_CLIP,
    ),
    # torchvision optical flow: the feature encoder sees both frames, the context encoder the first
    Rule(
        "torchvision.raft",
        (f"{_TV}.optical_flow.raft.RAFT",),
        ("feature_encoder.convnormrelu.0", "context_encoder.convnormrelu.0"),
        inputs=((1, 3, 128, 128), (1, 3, 128, 128)),
        forward_kwargs={"num_flow_updates": 1},
        description="two encoders: features of both frames, context of the first",
    ),
    # tract_hub's detector (tract_hub.models.faster_rcnn_vgg): the first convolution of the VGG features
    Rule(
        "tract_hub.faster_rcnn_vgg",
        ("tract_hub.models.faster_rcnn_vgg.VggFasterRCNN",),
        ("backbone.0",),
        description="Faster R-CNN on VGG features (the paper's VOC2007 detector)",
    ),
    # torchvision detection and segmentation: the backbone's stem (the model normalizes and resizes first)
    Rule(
        "torchvision.detection.resnet",
        _DETECTION,
        ("backbone.body.conv1",),
        description="ResNet-FPN backbone (frozen with pretrained weights; the patch unfreezes it)",
    ),
    Rule("torchvision.detection.mobilenet", _DETECTION, ("backbone.body.0.0",), description="MobileNetV3-FPN"),
    Rule("torchvision.ssd.vgg", (f"{_TV}.detection.ssd.SSD",), ("backbone.features.0",), description="SSD300 VGG"),
    Rule("torchvision.ssdlite", (f"{_TV}.detection.ssd.SSD",), ("backbone.features.0.0.0",)),
    Rule("torchvision.segmentation.resnet", _SEGMENTATION, ("backbone.conv1",), description="DeepLabV3/FCN ResNet"),
    Rule("torchvision.segmentation.mobilenet", _SEGMENTATION, ("backbone.0.0",), description="MobileNetV3 backbone"),
    # timm models that feed padding patches through their Linear patch embedding: the mask leaves them out of N
    Rule(
        "timm.naflexvit",
        ("timm.models.naflexvit.NaFlexVit",),
        ("embeds.proj",),
        row_mask=("embeds", "patch_valid"),
        description="NaFlex ViT: Linear patch embedding; padding patches (patch_valid=False) do not count",
    ),
    Rule(
        "timm.gemma4_vit",
        ("timm.models.gemma4_vit.Gemma4VitEncoder",),
        ("patch_embed.input_proj",),
        row_mask=("patch_embed", "patch_valid"),
        description="Gemma 4 vision encoder: padding patches (patch_valid=False) do not count",
    ),
    Rule(
        "timm.gemma4_vit_classifier",
        ("timm.models.gemma4_vit.Gemma4VitClassifier",),
        ("encoder.patch_embed.input_proj",),
        row_mask=("encoder.patch_embed", "patch_valid"),
        description="Gemma 4 vision classifier: padding patches (patch_valid=False) do not count",
    ),
    # timm models whose pretrained_cfg["first_conv"] is empty
    Rule(
        "timm.csatv2",
        ("timm.models.csatv2.CSATv2",),
        ("stem_dct.conv_y", "stem_dct.conv_cb", "stem_dct.conv_cr"),
        description="three 1x1 convs on the Y/Cb/Cr DCT coefficients (the DCT is a fixed buffer)",
    ),
)

#: The built-in rules, as registered (``builtin=True``), in the order they are tried.
BUILTIN_RULES: tuple[Rule, ...] = tuple(register_builtin(rule) for rule in _RULES)
